"""Designers deploy definitions; every version is kept, with who deployed it and when."""

from __future__ import annotations

from pathlib import Path

import pytest

from crmflow.aggregates.application import CrmApplication
from crmflow.processes.loader import load_files, parse_documents
from crmflow.processes.registry import DefinitionRegistry, DefinitionVersionConflictError
from tests.conftest import Clock

DEFINITIONS = Path(__file__).parents[2] / "processes" / "definitions"
WEB_LEAD = (DEFINITIONS / "web-lead-follow-up.yaml").read_text()


def test_deploying_stores_each_version_with_who_and_when(app: CrmApplication, clock: Clock) -> None:
    registry = DefinitionRegistry(app)
    outcomes = registry.deploy(load_files(sorted(DEFINITIONS.glob("*.yaml"))), "ada")

    assert {(o.name, o.version) for o in outcomes if o.kind == "Process"} >= {("web-lead-follow-up", 3), ("case-sla", 2)}
    versions = {v.name: v for v in registry.versions()}
    assert versions["case-sla"].deployed_by == "ada"
    assert versions["case-sla"].deployed_at == clock.now
    assert "kind: ProcessTest" not in versions["case-sla"].content, "tests are not deployed"
    assert registry.revision() == len(versions)


def test_the_same_content_again_changes_nothing(app: CrmApplication) -> None:
    registry = DefinitionRegistry(app)
    documents = parse_documents(WEB_LEAD, "web.yaml")
    registry.deploy(documents, "ada")
    revision = registry.revision()
    (again,) = registry.deploy(documents, "ben")
    assert (again.deployed, registry.revision()) == (False, revision)


def test_a_deployed_version_never_changes(app: CrmApplication) -> None:
    registry = DefinitionRegistry(app)
    registry.deploy(parse_documents(WEB_LEAD, "web.yaml"), "ada")
    edited = WEB_LEAD.replace("nobody contacts within two days", "nobody calls within two days")
    with pytest.raises(DefinitionVersionConflictError, match="version 3 is already deployed with other content"):
        registry.deploy(parse_documents(edited, "web.yaml"), "ben")
    assert [v.deployed_by for v in registry.versions()] == ["ada"]


def test_a_new_version_is_added_and_old_ones_stay_for_running_instances(app: CrmApplication, clock: Clock) -> None:
    registry = DefinitionRegistry(app)
    registry.deploy(parse_documents(WEB_LEAD, "web.yaml"), "ada")
    clock.advance(days=1)
    v4 = WEB_LEAD.replace("version: 3", "version: 4").replace('"chen"]', '"chen", "dana"]')
    registry.deploy(parse_documents(v4, "web.yaml"), "ben")

    assert [(v.version, v.deployed_by) for v in registry.versions()] == [(3, "ada"), (4, "ben")]
    assert sorted(d.model.version for d in registry.documents()) == [3, 4]  # type: ignore[attr-defined]
    assert [d.model.version for d in registry.documents(latest_only=True)] == [4]  # type: ignore[attr-defined]


def test_a_definition_that_gains_an_editor_modeline_deploys_as_the_version_already_there(app: CrmApplication) -> None:
    # The shipped files got `# yaml-language-server: $schema=...` as their first line; a comment before the
    # document is not part of what the registry hashes, so redeploying them is a no-op, not a version conflict.
    registry = DefinitionRegistry(app)
    modeline, bare = WEB_LEAD.split("\n", 1)
    assert modeline.startswith("# yaml-language-server:")
    registry.deploy(parse_documents(bare, "web.yaml"), "ada")
    revision = registry.revision()
    (again,) = registry.deploy(parse_documents("# yaml-language-server: $schema=elsewhere.json\n" + bare, "web.yaml"), "ben")
    assert (again.deployed, registry.revision()) == (False, revision)
