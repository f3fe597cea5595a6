"""The definitions crmflow ships are valid and their own ProcessTests pass."""

from __future__ import annotations

from pathlib import Path

import pytest

from crmflow.processes.loader import load_files
from crmflow.processes.testing import run_tests
from crmflow.processes.validation import validate

DEFINITIONS = Path(__file__).parents[3] / "processes" / "definitions"
DOCUMENTS = load_files(sorted(DEFINITIONS.glob("*.yaml")))
EXPECTED = {"web-lead-follow-up", "form-to-lead", "webinar-scoring", "stale-opportunity", "case-sla", "invoice-paid"}
# Shipped, deployed by whoever wants them (`crmflow process deploy processes/definitions/optional/FILE`).
OPTIONAL = {"lead-follow-up-activity"}


def test_every_capability_the_issue_names_ships_as_a_definition() -> None:
    assert {d.model.name for d in DOCUMENTS if d.kind == "Process"} == EXPECTED  # type: ignore[attr-defined]
    optional = load_files(sorted((DEFINITIONS / "optional").glob("*.yaml")))
    assert {d.model.name for d in optional if d.kind == "Process"} == OPTIONAL  # type: ignore[attr-defined]
    assert validate(optional + DOCUMENTS) == []
    assert validate(DOCUMENTS) == []


def test_every_shipped_process_has_a_test() -> None:
    tested = {d.model.process for d in DOCUMENTS if d.kind == "ProcessTest"}  # type: ignore[attr-defined]
    assert tested == EXPECTED


@pytest.mark.parametrize("result", run_tests(DOCUMENTS), ids=lambda r: r.name)
def test_shipped_process_test(result: object) -> None:
    assert result.passed, "\n".join(result.failures)  # type: ignore[attr-defined]
