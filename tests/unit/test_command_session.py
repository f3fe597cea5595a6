"""A command session: a poll's commands, each accepted or refused on its own, stored together."""

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
from crmflow.aggregates.session import CommandSession, SessionSpoiledError

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


def test_commands_of_a_session_are_stored_only_when_it_commits_and_then_all_at_once(app: CrmApplication) -> None:
    first, second = create_lead(app, "Ada"), create_lead(app, "Grace")
    before = app.recorder.max_notification_id()
    session = CommandSession(app, AT)
    session.execute(assign(first, "bob"))
    session.execute(assign(second, "carol"))
    session.execute(CommandRequest("lead.work", "acme", {"lead_id": str(first)}))

    assert stored_types(app, first) == ["LeadCreated"], "nothing is stored before commit"
    session.commit()

    assert stored_types(app, first) == ["LeadCreated", "LeadAssigned", "LeadStatusChanged"]
    assert app.state(second, "acme")["owner"] == "carol"
    assert app.recorder.max_notification_id() == before + 3


def test_a_refused_command_refuses_only_itself(app: CrmApplication) -> None:
    lead, disqualified = create_lead(app, "Ada"), create_lead(app, "Grace")
    app.execute(CommandRequest("lead.work", "acme", {"lead_id": str(disqualified)}))
    app.execute(CommandRequest("lead.disqualify", "acme", {"lead_id": str(disqualified), "reason": "spam"}))
    session = CommandSession(app, AT)
    session.execute(assign(lead, "bob"))
    with pytest.raises(DomainError):
        session.execute(assign(disqualified, "bob"))
    session.commit()

    assert app.state(lead, "acme")["owner"] == "bob"
    assert stored_types(app, disqualified) == ["LeadCreated", "LeadStatusChanged", "LeadDisqualified"]


def test_a_later_command_sees_what_an_earlier_one_did_in_the_same_session(app: CrmApplication) -> None:
    lead = create_lead(app)
    session = CommandSession(app, AT)
    session.execute(CommandRequest("lead.work", "acme", {"lead_id": str(lead)}))
    session.execute(CommandRequest("lead.qualify", "acme", {"lead_id": str(lead)}))  # needs working first
    session.commit()
    assert app.state(lead, "acme")["status"] == "qualified"


def test_an_idempotency_key_replays_within_the_session_and_after_its_commit(app: CrmApplication) -> None:
    lead = create_lead(app)
    session = CommandSession(app, AT)
    first = session.execute(assign(lead, "bob", key="process/x/assign/1"))
    again = session.execute(assign(lead, "bob", key="process/x/assign/1"))
    session.commit()
    after = CommandSession(app, AT).execute(assign(lead, "bob", key="process/x/assign/1"))

    assert not first.replayed and again.replayed and after.replayed
    assert stored_types(app, lead).count("LeadAssigned") == 1


def test_a_commit_fails_whole_when_another_writer_changed_an_aggregate_first(app: CrmApplication) -> None:
    lead, other = create_lead(app, "Ada"), create_lead(app, "Grace")
    session = CommandSession(app, AT)
    session.execute(assign(other, "carol"))
    session.execute(assign(lead, "bob"))
    app.execute(assign(lead, "dave"))  # someone else, meanwhile

    with pytest.raises(IntegrityError):
        session.commit()
    assert app.state(lead, "acme")["owner"] == "dave"
    assert app.state(other, "acme")["owner"] is None, "nothing of the session was stored"


def test_a_refusal_after_changing_what_the_session_already_changed_spoils_the_session(
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
    session = CommandSession(app, AT)
    session.execute(assign(lead, "bob"))

    careless = CommandRequest("lead.assign_carelessly", "acme", {"lead_id": str(fresh), "owner": "eve"})
    with pytest.raises(DomainError):  # a lead the session had not changed: dropped with the command
        session.execute(careless)
    session.execute(assign(fresh, "carol"))
    with pytest.raises(SessionSpoiledError):
        session.execute(CommandRequest("lead.assign_carelessly", "acme", {"lead_id": str(lead), "owner": "eve"}))
