"""Activities (tasks, calls, e-mails, meetings about one record): the stories sales and service tell with them.

Each story runs commands with the test clock (Monday 2026-03-02 09:00 UTC), on SQLite and PostgreSQL,
projects the stored history and compares the activities report with figures worked out by hand;
the stories that report end by rebuilding the read models and checking the rows did not change.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from crmflow.aggregates.application import CrmApplication
from crmflow.aggregates.errors import (
    AggregateNotFoundError,
    DomainError,
    IllegalTransitionError,
    InvalidValueError,
)
from crmflow.processes.loader import load_files
from crmflow.processes.registry import DefinitionRegistry
from crmflow.processes.runtime import ProcessRuntime
from crmflow.projections.db import Database
from crmflow.projections.figures import iso
from crmflow.projections.projector import apply_all, rebuild
from crmflow.projections.reports import activities
from crmflow.workers.history import history_source, stored_history
from tests.conftest import Clock, Run

DEFINITIONS = Path(__file__).parents[2] / "processes" / "definitions"


def project(db: Database, app: CrmApplication) -> None:
    apply_all(db, stored_history(app))
    assert apply_all(db, stored_history(app)) == 0, "a second pass over the same history changes nothing"


def check_rebuild_gives_the_same_rows(db: Database, app: CrmApplication, rows: Any) -> None:
    incremental = rows()
    for _ in range(2):  # twice: the second rebuild starts from tables the first one renamed into place
        rebuild(db, history_source(app))
        assert rows() == incremental


def refused(app: CrmApplication, run: Run, command: str, tenant: str = "acme", **data: Any) -> DomainError:
    """The command is refused, and nothing at all is stored."""
    before = app.recorder.max_notification_id()
    with pytest.raises(DomainError) as refusal:
        run(command, tenant=tenant, **data)
    assert app.recorder.max_notification_id() == before, f"{command} stored something"
    assert "\n" not in refusal.value.message, "one clear line"
    return refusal.value


def row(owner: str, kind: str, open: int = 0, overdue: int = 0, completed: int = 0, cancelled: int = 0,
        qualified_leads: int = 0) -> dict[str, Any]:  # fmt: skip
    return {"owner": owner, "kind": kind, "open": open, "overdue": overdue, "completed": completed,
            "cancelled": cancelled, "qualified_leads": qualified_leads}  # fmt: skip


def test_a_call_logged_against_a_lead_justifies_its_qualification(
    app: CrmApplication, run: Run, clock: Clock, reports: Database
) -> None:
    lead = run("lead.create", name="Ada Lovelace", company="Analytical Engines", owner="ana").aggregate_id
    run("lead.work", lead_id=lead)
    clock.advance(hours=2)  # Mon 11:00: ana calls Ada; it went well
    call = run("activity.log", kind="call", related_kind="lead", related_id=lead, owner="ana",
               subject="Discovery call", outcome="budget confirmed, wants a demo next week",
               occurred_at=(clock.now - timedelta(minutes=30)).isoformat())  # fmt: skip
    logged = call.events[0]
    assert (logged["type"], logged["data"]["status"], logged["data"]["completed_at"]) == (
        "ActivityCreated", "completed", (clock.now - timedelta(minutes=30)).isoformat())

    qualified = run("lead.qualify", lead_id=lead, activity_id=call.aggregate_id)

    assert [(e["type"], e["data"]["activity_id"]) for e in qualified.events] == [
        ("LeadQualified", str(call.aggregate_id))]
    assert app.state(lead, "acme")["qualifying_activity_id"] == str(call.aggregate_id)
    # A qualification that names no activity is as it always was.
    other = run("lead.create", name="Grace Hopper", owner="ana").aggregate_id
    run("lead.work", lead_id=other)
    assert run("lead.qualify", lead_id=other).events[0]["data"]["activity_id"] is None

    project(reports, app)
    # ana's one call, logged completed, justified one of the two qualifications.
    assert activities(reports, "acme", now=clock.now) == [row("ana", "call", completed=1, qualified_leads=1)]
    linked = reports.query("SELECT lead_id, activity_id FROM rm_lead_qualifications WHERE tenant = 'acme'")
    assert {r["lead_id"]: r["activity_id"] for r in linked} == {str(lead): str(call.aggregate_id), str(other): None}
    check_rebuild_gives_the_same_rows(reports, app, lambda: activities(reports, "acme", now=clock.now))


def test_a_lead_is_not_qualified_by_an_open_call_nor_by_a_call_about_another_record(
    app: CrmApplication, run: Run, clock: Clock
) -> None:
    lead = run("lead.create", name="Ada", owner="ana").aggregate_id
    other = run("lead.create", name="Bob", owner="ana").aggregate_id
    run("lead.work", lead_id=lead)
    planned = run("activity.schedule", kind="call", related_kind="lead", related_id=lead, owner="ana",
                  subject="Intro", due_at=(clock.now + timedelta(days=1)).isoformat()).aggregate_id  # fmt: skip
    about_bob = run("activity.log", kind="call", related_kind="lead", related_id=other, owner="ana",
                    subject="Intro", outcome="keen").aggregate_id  # fmt: skip
    globex_lead = run("lead.create", name="Eve", tenant="globex").aggregate_id
    globex_call = run("activity.log", kind="call", related_kind="lead", related_id=globex_lead, owner="eve",
                      subject="Intro", outcome="keen", tenant="globex").aggregate_id  # fmt: skip

    still_open = refused(app, run, "lead.qualify", lead_id=lead, activity_id=planned)
    assert isinstance(still_open, IllegalTransitionError)
    assert still_open.message == (f"cannot qualify lead {str(lead)[:8]} with activity {str(planned)[:8]}: it is "
                                  "open, and only a completed activity (with its outcome) can justify it")  # fmt: skip
    elsewhere = refused(app, run, "lead.qualify", lead_id=lead, activity_id=about_bob)
    assert isinstance(elsewhere, InvalidValueError)
    assert elsewhere.message == (f"cannot qualify lead {str(lead)[:8]} with activity {str(about_bob)[:8]}: it is "
                                 f"about lead {str(other)[:8]}, not lead {str(lead)[:8]}")  # fmt: skip
    foreign = refused(app, run, "lead.qualify", lead_id=lead, activity_id=globex_call)
    assert foreign.message == f"activity {globex_call} not found in tenant acme"
    assert app.state(lead, "acme")["status"] == "working"

    # Completing the planned call with its outcome is what lets it justify the qualification.
    run("activity.complete", activity_id=planned, outcome="decision maker, budget in Q2")
    assert run("lead.qualify", lead_id=lead, activity_id=planned).events[0]["data"]["activity_id"] == str(planned)


def test_an_overdue_follow_up_is_counted_against_its_owner(
    app: CrmApplication, run: Run, clock: Clock, reports: Database
) -> None:
    start = clock.now  # Mon 09:00

    def at(**delta: float) -> str:
        return (start + timedelta(**delta)).isoformat()

    def schedule(kind: str, related_kind: str, related_id: Any, owner: str, due: str, tenant: str = "acme") -> Any:
        return run("activity.schedule", kind=kind, related_kind=related_kind, related_id=related_id, owner=owner,
                   subject=f"{kind} about the {related_kind}", due_at=due, tenant=tenant).aggregate_id  # fmt: skip

    account = run("account.create", name="Analytical Engines").aggregate_id
    contact = run("contact.create", account_id=account, name="Ada").aggregate_id
    deal = run("opportunity.create", account_id=account, name="Pilot", amount="9000", close_date="2026-06-30").aggregate_id
    case = run("case.open", subject="Cannot log in", account_id=account).aggregate_id
    lead = run("lead.create", name="Charles", owner="ana").aggregate_id

    a1 = schedule("call", "lead", lead, "ana", at(hours=3))  # due Mon 12:00: left open, overdue by 15:00
    schedule("call", "opportunity", deal, "ana", at(days=2))  # due Wed 09:00: open, not yet due
    a3 = schedule("email", "contact", contact, "ana", at(hours=1))  # due Mon 10:00
    a4 = schedule("meeting", "account", account, "ana", at(days=1))  # due Tue 09:00
    b1 = schedule("call", "case", case, "ben", at(hours=2))  # due Mon 11:00
    globex_lead = run("lead.create", name="Eve", tenant="globex").aggregate_id
    schedule("call", "lead", globex_lead, "ana", at(hours=1), tenant="globex")  # another tenant's ana

    clock.advance(minutes=30)  # Mon 09:30
    run("activity.complete", activity_id=a3, outcome="sent the price list")  # before its due time
    run("activity.cancel", activity_id=a4, reason="the customer moved it to next month")
    clock.advance(hours=4, minutes=30)  # Mon 14:00
    run("activity.complete", activity_id=b1, outcome="walked them through the reset")  # late, but done
    run("activity.log", kind="call", related_kind="case", related_id=case, owner="ben", subject="Check back",
        outcome="all fine now")  # fmt: skip
    clock.advance(hours=1)  # Mon 15:00

    project(reports, app)
    # At Mon 15:00, acme: ana's calls a1 (due 12:00) and a2 (due Wed) are open, a1 of them overdue; her e-mail
    # was completed and her meeting cancelled. ben's call b1 was completed late (completed is not overdue) and
    # his logged call is completed: 2. globex's ana and her overdue call are not counted.
    assert activities(reports, "acme", now=clock.now) == [
        row("ana", "call", open=2, overdue=1),
        row("ana", "email", completed=1),
        row("ana", "meeting", cancelled=1),
        row("ben", "call", completed=2),
    ]
    # Wed 10:00: a2 is past its due time too, so both open calls are overdue.
    assert activities(reports, "acme", now=start + timedelta(days=2, hours=1))[0] == row("ana", "call", open=2,
                                                                                         overdue=2)  # fmt: skip
    assert activities(reports, "globex", now=clock.now) == [row("ana", "call", open=1, overdue=1)]
    # Completing a1 takes it off both counts.
    run("activity.complete", activity_id=a1, outcome="left a voicemail, then reached him")
    project(reports, app)
    assert activities(reports, "acme", now=clock.now)[0] == row("ana", "call", open=1, completed=1)
    # --since/--until filter on when the activity was created: the log at Mon 14:00 alone is from 13:00 on.
    assert activities(reports, "acme", since=at(hours=4), now=clock.now) == [row("ben", "call", completed=1)]
    due = reports.query("SELECT due_at FROM rm_activities WHERE activity_id = %(id)s", {"id": str(a1)})
    assert iso(due[0]["due_at"]) == at(hours=3), "the due time is kept as the instant it is, in UTC"
    check_rebuild_gives_the_same_rows(reports, app, lambda: activities(reports, "acme", now=clock.now))


def test_an_activity_linked_to_another_tenants_lead_is_refused_and_nothing_is_stored(
    app: CrmApplication, run: Run, clock: Clock, reports: Database
) -> None:
    theirs = run("lead.create", name="Ada", owner="ana", tenant="globex").aggregate_id
    ours = run("lead.create", name="Ada", owner="ana").aggregate_id
    due = (clock.now + timedelta(days=1)).isoformat()
    nobodys = uuid.uuid4()

    for command, extra in (("activity.schedule", {"due_at": due}), ("activity.log", {"outcome": "spoke to her"})):
        answers = []
        for target in (theirs, nobodys):
            refusal = refused(app, run, command, kind="call", related_kind="lead", related_id=target, owner="mallory",
                              subject="Snoop", **extra)  # fmt: skip
            assert isinstance(refusal, AggregateNotFoundError)
            answers.append(refusal.message.replace(str(target), "ID"))
        # Another tenant's lead is answered exactly like a lead nobody has: nothing tells that it exists.
        assert answers == ["lead ID not found in tenant acme"] * 2
    # A record of the tenant named as the wrong kind is not found either: the kind is part of the link.
    wrong_kind = refused(app, run, "activity.schedule", kind="task", related_kind="contact", related_id=ours,
                         owner="ana", subject="Send the deck", due_at=due)  # fmt: skip
    assert wrong_kind.message == f"contact {ours} not found in tenant acme"
    # globex cannot complete or cancel acme's activities either.
    call = run("activity.schedule", kind="call", related_kind="lead", related_id=ours, owner="ana", subject="Intro",
               due_at=due).aggregate_id  # fmt: skip
    for command, extra in (("activity.complete", {"outcome": "done"}), ("activity.cancel", {"reason": "no"})):
        assert refused(app, run, command, tenant="globex", activity_id=call, **extra).message == (
            f"activity {call} not found in tenant globex")

    project(reports, app)
    assert activities(reports, "globex", now=clock.now) == []
    assert activities(reports, "acme", now=clock.now) == [row("ana", "call", open=1)]


def test_an_activity_moves_only_from_open_and_says_how(app: CrmApplication, run: Run, clock: Clock) -> None:
    lead = run("lead.create", name="Ada", owner="ana").aggregate_id
    call = run("activity.schedule", kind="call", related_kind="lead", related_id=lead, owner="ana", subject="Intro",
               due_at=(clock.now + timedelta(hours=4)).isoformat()).aggregate_id  # fmt: skip
    done = run("activity.complete", activity_id=call, outcome="interested", notes="call again in May").events[0]
    assert (done["type"], done["data"]["related_id"], done["data"]["activity_kind"]) == (
        "ActivityCompleted", str(lead), "call")

    again = refused(app, run, "activity.cancel", activity_id=call, reason="oops")
    assert again.message == (f"cannot cancel activity {str(call)[:8]} from completed: allowed from open "
                             "(open → completed | cancelled)")  # fmt: skip
    assert refused(app, run, "activity.complete", activity_id=call, outcome="twice").code == "illegal_transition"
    # Logging something that has not happened yet is refused: that is what scheduling is for.
    future = refused(app, run, "activity.log", kind="meeting", related_kind="lead", related_id=lead, owner="ana",
                     subject="Demo", outcome="great", occurred_at=(clock.now + timedelta(hours=1)).isoformat())
    assert "schedule it instead (activity.schedule)" in future.message
    # The outcome is required to complete, a due time to schedule: the payload says which field.
    missing = refused(app, run, "activity.schedule", kind="call", related_kind="lead", related_id=lead, owner="ana",
                      subject="Intro")  # fmt: skip
    assert "due_at" in missing.message


def test_a_new_lead_gets_a_follow_up_call_and_one_left_open_past_its_due_time_is_escalated(
    app: CrmApplication, run: Run, clock: Clock, reports: Database
) -> None:
    DefinitionRegistry(app).deploy(load_files([DEFINITIONS / "optional" / "lead-follow-up-activity.yaml"]), "ada")
    runtime, handed = ProcessRuntime(app, clock), set[str]()

    def catch_up() -> None:
        # Domain events as the relay publishes them; the instances' own run records are not for the engine.
        new = [e for e in stored_history(app) if e["id"] not in handed and not e["type"].startswith("Process")]
        handed.update(e["id"] for e in new)
        runtime.handle(new)

    ana_lead = run("lead.create", name="Ada", owner="ana").aggregate_id  # Mon 09:00Z = 10:00 in Berlin
    ben_lead = run("lead.create", name="Bob").aggregate_id  # no owner yet: no call yet
    catch_up()
    calls = {e["data"]["related_id"]: e for e in stored_history(app) if e["type"] == "ActivityCreated"}
    # One business day on sales-emea (09-17 Berlin): 7 hours on Monday and 1 on Tuesday, due Tue 10:00 Berlin.
    assert {k: (c["data"]["owner"], c["data"]["activity_kind"], c["data"]["due_at"]) for k, c in calls.items()} == {
        str(ana_lead): ("ana", "call", "2026-03-03T09:00:00+00:00")}

    clock.advance(hours=2)  # Mon 11:00Z: ben gets his lead; his call is due a business day from now
    run("lead.assign", lead_id=ben_lead, owner="ben")
    catch_up()
    clock.advance(hours=1)  # Mon 12:00Z: ben makes his call
    ben_call = next(e["subject"] for e in stored_history(app) if e["type"] == "ActivityCreated"
                    and e["data"]["related_id"] == str(ben_lead))  # fmt: skip
    run("activity.complete", activity_id=ben_call, outcome="interested, send the deck")
    catch_up()

    clock.advance(hours=20, minutes=59)  # Tue 08:59Z: ana's call is not due yet
    runtime.fire_due()
    catch_up()
    assert not [e for e in stored_history(app) if e["type"] == "LeadFollowUpCallOverdue"]
    clock.advance(minutes=1)  # Tue 09:00Z: due, and still open
    runtime.fire_due()
    catch_up()

    overdue = [e for e in stored_history(app) if e["type"] == "LeadFollowUpCallOverdue"]
    assert [(e["data"]["lead_id"], e["data"]["owner"]) for e in overdue] == [(str(ana_lead), "ana")]
    project(reports, app)
    # Tue 09:30Z: ana's call open and overdue; ben's completed; no qualification names either.
    assert activities(reports, "acme", now=clock.now + timedelta(minutes=30)) == [
        row("ana", "call", open=1, overdue=1), row("ben", "call", completed=1)]
    states = reports.query("SELECT key, status FROM rm_instances WHERE definition = 'lead-follow-up-activity' "
                           "ORDER BY key")  # fmt: skip
    assert {r["key"]: r["status"] for r in states} == {str(ana_lead): "completed", str(ben_lead): "completed"}
