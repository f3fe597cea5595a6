"""A unit of work with per-command rollback: a poll's commands, each accepted or refused on its own, stored together."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import pytest
from eventsourcing.persistence import IntegrityError

from crmflow.aggregates.application import CommandRequest, CrmApplication
from crmflow.aggregates.commanding import COMMANDS, CommandContext, CommandSpec
from crmflow.aggregates.commands.lead import AssignLead
from crmflow.aggregates.errors import DomainError, IllegalTransitionError
from crmflow.aggregates.lead import Lead
from crmflow.aggregates.unit_of_work import UnitOfWork, UnitSpoiledError

AT = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@pytest.fixture
def app() -> CrmApplication:
    return CrmApplication("memory://", clock=lambda: AT)


def create_lead(app: CrmApplication, name: str = "Ada") -> UUID:
    return app.execute(CommandRequest("lead.create", "acme", {"name": name, "source": "web"})).aggregate_id


def assign(lead: UUID, owner: str, key: str | None = None) -> CommandRequest:
    return CommandRequest("lead.assign", "acme", {"lead_id": str(lead), "owner": owner}, idempotency_key=key)


def stored_types(app: CrmApplication, lead: UUID) -> list[str]:
    return [entry.type for entry in app.history(lead, "acme")]


def test_commands_of_a_unit_are_stored_only_when_it_commits_and_then_all_at_once(app: CrmApplication) -> None:
    first, second = create_lead(app, "Ada"), create_lead(app, "Grace")
    before = app.recorder.max_notification_id()
    unit = UnitOfWork(app, AT, rollback_refused=True)
    unit.run(assign(first, "bob"))
    unit.run(assign(second, "carol"))
    unit.run(CommandRequest("lead.work", "acme", {"lead_id": str(first)}))

    assert stored_types(app, first) == ["LeadCreated"], "nothing is stored before commit"
    unit.commit()

    assert stored_types(app, first) == ["LeadCreated", "LeadAssigned", "LeadStatusChanged"]
    assert app.state(second, "acme")["owner"] == "carol"
    assert app.recorder.max_notification_id() == before + 3


def test_a_refused_command_refuses_only_itself(app: CrmApplication) -> None:
    lead, disqualified = create_lead(app, "Ada"), create_lead(app, "Grace")
    app.execute(CommandRequest("lead.work", "acme", {"lead_id": str(disqualified)}))
    app.execute(CommandRequest("lead.disqualify", "acme", {"lead_id": str(disqualified), "reason": "spam"}))
    unit = UnitOfWork(app, AT, rollback_refused=True)
    unit.run(assign(lead, "bob"))
    with pytest.raises(DomainError):
        unit.run(assign(disqualified, "bob"))
    unit.commit()

    assert app.state(lead, "acme")["owner"] == "bob"
    assert stored_types(app, disqualified) == ["LeadCreated", "LeadStatusChanged", "LeadDisqualified"]


def test_a_later_command_sees_what_an_earlier_one_did_in_the_same_unit(app: CrmApplication) -> None:
    lead = create_lead(app)
    unit = UnitOfWork(app, AT, rollback_refused=True)
    unit.run(CommandRequest("lead.work", "acme", {"lead_id": str(lead)}))
    unit.run(CommandRequest("lead.qualify", "acme", {"lead_id": str(lead)}))  # needs working first
    unit.commit()
    assert app.state(lead, "acme")["status"] == "qualified"


def test_an_idempotency_key_replays_within_the_unit_and_after_its_commit(app: CrmApplication) -> None:
    lead = create_lead(app)
    unit = UnitOfWork(app, AT, rollback_refused=True)
    first = unit.run(assign(lead, "bob", key="process/x/assign/1"))
    again = unit.run(assign(lead, "bob", key="process/x/assign/1"))
    unit.commit()
    after = UnitOfWork(app, AT, rollback_refused=True).run(assign(lead, "bob", key="process/x/assign/1"))

    assert not first.replayed and again.replayed and after.replayed
    assert stored_types(app, lead).count("LeadAssigned") == 1


def test_a_commit_fails_whole_when_another_writer_changed_an_aggregate_first(app: CrmApplication) -> None:
    lead, other = create_lead(app, "Ada"), create_lead(app, "Grace")
    unit = UnitOfWork(app, AT, rollback_refused=True)
    unit.run(assign(other, "carol"))
    unit.run(assign(lead, "bob"))
    app.execute(assign(lead, "dave"))  # someone else, meanwhile

    with pytest.raises(IntegrityError):
        unit.commit()
    assert app.state(lead, "acme")["owner"] == "dave"
    assert app.state(other, "acme")["owner"] is None, "nothing of the unit was stored"


def test_a_refusal_after_changing_what_the_unit_already_changed_spoils_the_unit(
    app: CrmApplication, monkeypatch: pytest.MonkeyPatch
) -> None:
    def assign_then_refuse(ctx: CommandContext, p: AssignLead) -> Lead:
        lead = ctx.load(Lead, p.lead_id)
        lead.assign(p.owner)
        raise IllegalTransitionError("refused after the change", aggregate_id=str(lead.id))

    # A deliberately careless handler: the shipped ones check before they change anything.
    monkeypatch.setitem(COMMANDS, "lead.assign_carelessly",
                        CommandSpec("lead.assign_carelessly", AssignLead, assign_then_refuse, "test", ()))  # fmt: skip
    lead, fresh = create_lead(app, "Ada"), create_lead(app, "Grace")
    unit = UnitOfWork(app, AT, rollback_refused=True)
    unit.run(assign(lead, "bob"))

    careless = CommandRequest("lead.assign_carelessly", "acme", {"lead_id": str(fresh), "owner": "eve"})
    with pytest.raises(DomainError):  # a lead the unit had not changed: dropped with the command
        unit.run(careless)
    unit.run(assign(fresh, "carol"))
    with pytest.raises(UnitSpoiledError):
        unit.run(CommandRequest("lead.assign_carelessly", "acme", {"lead_id": str(lead), "owner": "eve"}))
