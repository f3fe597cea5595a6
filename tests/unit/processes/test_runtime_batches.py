"""The live runtime stores a batch's commands and instances in one transaction, and copes when it cannot."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from crmflow.aggregates.application import CommandRequest, CrmApplication
from crmflow.aggregates.commanding import COMMANDS, CommandContext, CommandSpec
from crmflow.aggregates.commands.lead import AssignLead
from crmflow.aggregates.errors import IllegalTransitionError
from crmflow.aggregates.lead import Lead
from crmflow.aggregates.publication import published_documents
from crmflow.processes.instance import instance_id
from crmflow.processes.loader import parse_documents
from crmflow.processes.registry import DefinitionRegistry
from crmflow.processes.runtime import ProcessRuntime

AT = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

ASSIGN_TWICE = """
apiVersion: crmflow/v1
kind: Process
name: assign-twice
version: 1
tenant: acme
trigger:
  on: [LeadCreated]
steps:
  - id: to-bob
    do: lead.assign
    args: {lead_id: event.subject, owner: "'bob'"}
  - id: to-eve
    do: {command}
    args: {lead_id: event.subject, owner: "'eve'"}
"""


def assign_then_refuse(ctx: CommandContext, p: AssignLead) -> Lead:
    """A careless handler: it changes the lead, then refuses (the shipped ones check first)."""
    lead = ctx.load(Lead, p.lead_id)
    lead.assign(p.owner)
    raise IllegalTransitionError("eve may not have it after all", aggregate_id=str(lead.id))


def deployed(command: str) -> CrmApplication:
    app = CrmApplication("memory://", clock=lambda: AT)
    DefinitionRegistry(app).deploy(parse_documents(ASSIGN_TWICE.replace("{command}", command), "t.yaml"), "ada")
    return app


def created_leads(app: CrmApplication, names: list[str]) -> list[dict[str, Any]]:
    before = app.recorder.max_notification_id() or 0
    for name in names:
        app.execute(CommandRequest("lead.create", "acme", {"name": name, "source": "web"}))
    return [document for _, document in published_documents(app, app.recorder.select_notifications(start=before + 1, limit=100))]


def test_a_batch_of_leads_is_assigned_in_one_transaction(monkeypatch: pytest.MonkeyPatch) -> None:
    app = deployed("lead.assign")
    events = created_leads(app, ["Ada", "Grace", "Hedy"])
    saves = []
    monkeypatch.setattr(app, "save", lambda *records, _save=app.save: saves.append(len(records)) or _save(*records))

    ProcessRuntime(app).handle(events)

    assert [app.state(e["subject"], "acme")["owner"] for e in events] == ["eve"] * 3
    assert len(saves) == 1, "commands and instances of the batch are saved together"


def test_when_a_refusal_spoils_the_batch_it_is_run_again_command_by_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(COMMANDS, "lead.assign_carelessly",
                        CommandSpec("lead.assign_carelessly", AssignLead, assign_then_refuse, "test", ()))  # fmt: skip
    app = deployed("lead.assign_carelessly")
    events = created_leads(app, ["Ada", "Grace"])

    runtime = ProcessRuntime(app)
    runtime.handle(events)

    for event in events:
        lead = event["subject"]
        assert [h.type for h in app.history(lead, "acme")] == ["LeadCreated", "LeadAssigned"]
        assert app.state(lead, "acme")["owner"] == "bob", "the refused command left nothing behind"
        instance = runtime.instances.get(instance_id("acme", "assign-twice", lead))
        assert instance is not None and instance.status == "failed"
