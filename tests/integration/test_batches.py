"""Many commands in one transaction: all stored, or none."""

from __future__ import annotations

import uuid

import pytest

from crmflow.aggregates.application import CommandRequest, CrmApplication
from crmflow.aggregates.errors import AggregateExistsError, IllegalTransitionError


def test_a_batch_creates_and_works_leads_with_each_commands_own_metadata(app: CrmApplication) -> None:
    lead = uuid.uuid4()
    results = app.execute_batch([
        CommandRequest("lead.create", "acme", {"lead_id": str(lead), "name": "Ada"}, caller="import"),
        CommandRequest("lead.assign", "acme", {"lead_id": str(lead), "owner": "maria"}, caller="router"),
        CommandRequest("lead.create", "globex", {"name": "Hank"}, caller="import"),
        CommandRequest("lead.work", "acme", {"lead_id": str(lead)}, caller="maria"),
    ])  # fmt: skip

    assert [r.events[0]["type"] for r in results] == ["LeadCreated", "LeadAssigned", "LeadCreated", "LeadStatusChanged"]
    history = app.history(lead, "acme")
    assert [(h.type, h.meta["caller"], h.meta["command"]) for h in history] == [
        ("LeadCreated", "import", "lead.create"),
        ("LeadAssigned", "router", "lead.assign"),
        ("LeadStatusChanged", "maria", "lead.work"),
    ]
    assert app.state(results[2].aggregate_id, "globex")["tenant_id"] == "globex"


def test_one_refused_command_stores_nothing_of_the_batch(app: CrmApplication) -> None:
    lead = uuid.uuid4()
    before = app.recorder.max_notification_id()
    with pytest.raises(IllegalTransitionError):
        app.execute_batch([
            CommandRequest("lead.create", "acme", {"lead_id": str(lead), "name": "Ada"}),
            CommandRequest("lead.qualify", "acme", {"lead_id": str(lead)}),  # new → qualified: refused
        ])  # fmt: skip
    assert app.recorder.max_notification_id() == before


def test_a_batch_naming_a_taken_id_is_refused_whole(app: CrmApplication) -> None:
    taken = app.execute(CommandRequest("lead.create", "acme", {"name": "Ada"})).aggregate_id
    before = app.recorder.max_notification_id()
    with pytest.raises(AggregateExistsError, match=f"cannot create lead {taken}: that id is already taken"):
        app.execute_batch([
            CommandRequest("lead.create", "acme", {"name": "Bob"}),
            CommandRequest("lead.create", "acme", {"lead_id": str(taken), "name": "Eve"}),
        ])  # fmt: skip
    assert app.recorder.max_notification_id() == before
