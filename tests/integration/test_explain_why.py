"""explain says why each event happened: the command and its caller, or the process step, its trigger and how
a value was chosen."""

from __future__ import annotations

import uuid
from pathlib import Path

from crmflow.aggregates.application import CommandRequest, CrmApplication
from crmflow.processes.loader import load_files
from crmflow.processes.registry import DefinitionRegistry
from crmflow.processes.runtime import ProcessRuntime
from crmflow.workers.explanation import explain
from crmflow.workers.history import stored_history
from tests.conftest import Clock

DEFINITIONS = Path(__file__).parents[2] / "processes" / "definitions"


def test_a_web_lead_routed_by_the_process_is_explained_with_its_step_trigger_and_round_robin(
    app: CrmApplication, clock: Clock
) -> None:
    DefinitionRegistry(app).deploy(load_files(sorted(DEFINITIONS.glob("*.yaml"))), "ada")
    lead = app.execute(CommandRequest("lead.create", "acme", {"name": "Ada", "source": "web"}, caller="web-form"))
    created = [e for e in stored_history(app) if e["type"] == "LeadCreated"]
    ProcessRuntime(app, clock).handle(created)

    first, assigned = explain(app, lead.aggregate_id, "acme")
    assert first["why"] == "command lead.create by web-form"
    assert first["caused_by"] == {"kind": "command", "command": "lead.create",
                                  "command_id": first["meta"]["command_id"], "caller": "web-form"}  # fmt: skip
    assert assigned["event"] == "LeadAssigned" and assigned["data"]["owner"] == "ana"
    cause = assigned["caused_by"]
    assert (cause["kind"], cause["process"], cause["version"], cause["step"], cause["command"]) == (
        "process", "web-lead-follow-up", 3, "assign", "lead.assign")  # fmt: skip
    assert cause["caller"] == "process:web-lead-follow-up@3"
    assert cause["trigger"] == {"id": first["id"], "type": "LeadCreated", "subject": str(lead.aggregate_id)}
    assert cause["chosen"] == {"owner": 'round_robin in step pick-owner: round_robin(["ana", "ben", "chen"])'}
    assert assigned["why"] == (
        f"process web-lead-follow-up v3 step assign ran lead.assign, on LeadCreated of {lead.aggregate_id}; "
        'owner chosen by round_robin in step pick-owner: round_robin(["ana", "ben", "chen"]) '
        f"(correlation {first['meta']['command_id']})"  # the story's: the web form's command
    )


def test_an_unknown_aggregate_has_nothing_to_explain(app: CrmApplication) -> None:
    assert explain(app, uuid.uuid4(), "acme") == []
