"""Duplicate leads on both stores: flagged on create (from the web form too), merged, refused, counted per rule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError

from crmflow.aggregates.application import CommandRequest, CrmApplication
from crmflow.aggregates.errors import AggregateNotFoundError, IllegalTransitionError, LeadMergedError
from crmflow.aggregates.unit_of_work import UnitOfWork
from crmflow.processes.loader import load_files
from crmflow.processes.registry import DefinitionRegistry
from crmflow.processes.runtime import ProcessRuntime
from crmflow.projections.db import Database
from crmflow.projections.projector import apply_all, rebuild
from crmflow.projections.reports import REPORTS, duplicates, funnel
from crmflow.workers.history import history_source, stored_history
from tests.conftest import Clock, Run

FORM_TO_LEAD = Path(__file__).parents[2] / "processes" / "definitions" / "form-to-lead.yaml"


def form(event_id: str, source: str, **data: Any) -> dict[str, Any]:
    return {"specversion": "1.0", "id": event_id, "source": source, "type": "FormSubmitted",
            "time": "2026-03-02T09:00:00Z", "tenantid": "acme", "data": data}  # fmt: skip


def events_of(app: CrmApplication, subject: object, *types: str) -> list[dict[str, Any]]:
    return [e for e in stored_history(app) if e.get("subject") == str(subject) and (not types or e["type"] in types)]


def stored_count(app: CrmApplication) -> int:
    return app.recorder.max_notification_id() or 0


def test_a_lead_from_two_forms_is_flagged_as_a_duplicate_and_merged(
    app: CrmApplication, run: Run, clock: Clock, reports: Database
) -> None:
    # The shipped form-to-lead process turns each accepted FormSubmitted into lead.create.
    documents = [d for d in load_files([FORM_TO_LEAD]) if d.kind == "Process"]
    DefinitionRegistry(app).deploy(documents, "admin:test")
    runtime = ProcessRuntime(app)
    # Ada fills in the contact form on Monday, and the newsletter form on Tuesday, her address in capitals.
    app.accept_inbound([("acme", form("c-1", "/web/forms/contact", email="ada@ae.example", name="Ada Lovelace",
                                      company="Analytical Engines"))])  # fmt: skip
    runtime.handle([e for e in stored_history(app) if e["type"] == "FormSubmitted"])
    clock.advance(days=1)
    before = stored_count(app)
    app.accept_inbound([("acme", form("n-9", "/web/forms/newsletter", email=" ADA@ae.example"))])
    runtime.handle([e for e in stored_history(app) if e["type"] == "FormSubmitted" and e["id"] == "n-9"])
    created = [e for e in stored_history(app) if e["type"] == "LeadCreated"]
    assert [e["data"]["name"] for e in created] == ["Ada Lovelace", "ADA@ae.example"]
    first, second = (e["subject"] for e in created)
    # The second lead is flagged on its own history, naming the first, the rule and the key that matched.
    [flag] = events_of(app, second, "LeadDuplicateFlagged")
    assert flag["data"] == {"existing_lead_id": first, "rule": "email", "keys": ["email"]}
    assert flag["data"]["existing_lead_id"] != second and not events_of(app, first, "LeadDuplicateFlagged")
    assert stored_count(app) > before

    # Sales merges the newsletter lead into the first one: both histories stay, the first takes nothing it has.
    merged = run("lead.merge", lead_id=second, into_lead_id=first)
    assert [(e["type"], e["subject"]) for e in merged.events] == [("LeadMerged", second), ("LeadMergeAbsorbed", first)]
    [gone] = events_of(app, second, "LeadMerged")
    assert gone["data"] == {"status": "merged", "previous_status": "new", "merged_into": first, "rule": "email",
                            "keys": ["email"]}  # fmt: skip
    [absorbed] = events_of(app, first, "LeadMergeAbsorbed")
    assert absorbed["data"] == {"merged_lead_id": second, "fields": {}, "rule": "email"}
    assert [e["type"] for e in events_of(app, second)] == ["LeadCreated", "LeadDuplicateFlagged", "LeadMerged"]
    assert app.state(second, "acme")["status"] == "merged"

    # Later commands for the merged lead are refused with one line naming the lead it went into; none is stored.
    before = stored_count(app)
    with pytest.raises(LeadMergedError) as refused:
        run("lead.assign", lead_id=second, owner="maria")
    assert str(refused.value) == (f"cannot assign lead {second[:8]}: it was merged into lead {first}; "
                                  "send commands to that lead")  # fmt: skip
    assert stored_count(app) == before
    run("lead.assign", lead_id=first, owner="maria")

    # The read models: the merged lead is status merged, counted once in the funnel, and the report has the pair.
    apply_all(reports, stored_history(app))
    statuses = {r["lead_id"]: r["status"] for r in reports.query("SELECT lead_id, status FROM rm_leads", {})}
    assert statuses == {first: "new", second: "merged"}
    assert [r["leads"] for r in funnel(reports, "acme")] == [1]  # 2 leads created − 1 merged away
    assert duplicates(reports, "acme") == [{"record": "lead", "rule": "email", "flagged": 1, "merged": 1, "open_flags": 0}]


def test_merging_a_lead_into_itself_or_into_a_converted_lead_is_refused_and_nothing_is_stored(
    app: CrmApplication, run: Run
) -> None:
    ada = str(run("lead.create", name="Ada", email="ada@ae.example").aggregate_id)
    won = str(run("lead.create", name="Ada again", company="AE").aggregate_id)
    for step in ("lead.work", "lead.qualify", "lead.convert"):
        run(step, lead_id=won)
    other_tenant = str(run("lead.create", tenant="globex", name="Hank").aggregate_id)
    gone = str(run("lead.create", name="Ada twice").aggregate_id)
    run("lead.merge", lead_id=gone, into_lead_id=ada)
    before = stored_count(app)
    refusals = [
        ({"lead_id": ada, "into_lead_id": ada}, IllegalTransitionError,
         f"cannot merge lead {ada[:8]} into itself: name another lead as the target"),
        ({"lead_id": ada, "into_lead_id": won}, IllegalTransitionError,
         f"cannot merge lead {ada[:8]} into lead {won[:8]}: it is converted; merge only into a new, working or "
         "qualified lead"),
        ({"lead_id": won, "into_lead_id": ada}, IllegalTransitionError,
         f"cannot merge lead {won[:8]}: it is converted (its account and contact exist); disqualify the other "
         "lead instead"),
        # Another tenant's lead is answered like an id nobody has (docs/domain.md, "Tenants").
        ({"lead_id": ada, "into_lead_id": other_tenant}, AggregateNotFoundError,
         f"lead {other_tenant} not found in tenant acme"),
        ({"lead_id": gone, "into_lead_id": ada}, LeadMergedError,
         f"cannot merge lead {gone[:8]}: it was merged into lead {ada}; send commands to that lead"),
        ({"lead_id": ada, "into_lead_id": gone}, LeadMergedError,
         f"cannot merge lead {ada[:8]} into lead {gone[:8]}: that lead was merged into lead {ada}; merge into that one"),
    ]  # fmt: skip
    for payload, error, message in refusals:
        with pytest.raises(error) as refused:
            app.execute(CommandRequest("lead.merge", "acme", payload, caller="test"))
        assert str(refused.value) == message
    assert stored_count(app) == before, "a refused merge stores nothing"
    assert app.state(ada, "acme")["status"] == "new" and app.state(won, "acme")["status"] == "converted"


def test_the_duplicates_report_counts_flags_and_merges_per_rule(
    app: CrmApplication, run: Run, clock: Clock, reports: Database
) -> None:
    # acme flags on e-mail and merges on company + phone, reading numbers without "+" as British.
    run("tenant.set_duplicate_rules", leads=[{"name": "email", "keys": ["email"], "action": "flag"},
                                             {"name": "company-phone", "keys": ["company", "phone"],
                                              "action": "merge"}], default_region="GB")  # fmt: skip
    lead = {}

    def create(name: str, **fields: str) -> str:
        lead[name] = str(run("lead.create", name=name, **fields).aggregate_id)
        return lead[name]

    create("L1", email="ada@ae.example", phone="+44 20 7946 0958", company="ACME, Inc.")
    create("L2", email="ada@ae.example")  # flagged by email against L1
    create("L3", email="grace@navy.example", phone="(020) 7946-0958", company="Acme Inc")  # merged into L1
    create("L4", email=" ADA@ae.example")  # flagged by email against L1
    create("L5", email="hank@globex.example")  # no match
    create("L6", email="carl@initech.example")
    create("L7", email="carl@initech.example")  # flagged by email against L6
    run("lead.create", tenant="globex", name="G1", email="ada@ae.example")  # another tenant: its own index
    clock.advance(days=1)
    run("lead.merge", lead_id=lead["L4"], into_lead_id=lead["L1"])  # a person merges a flagged pair: email's
    run("lead.work", lead_id=lead["L2"])
    run("lead.disqualify", lead_id=lead["L2"], reason="same person as L1")  # closes L2's flag
    run("lead.merge", lead_id=lead["L5"], into_lead_id=lead["L6"])  # never flagged: a manual merge
    assert app.state(lead["L3"], "acme")["merged_into"] == lead["L1"]
    assert app.state(lead["L1"], "acme")["phone"] == "+44 20 7946 0958"  # L1 had one: kept

    apply_all(reports, stored_history(app))
    assert duplicates(reports, "acme") == [
        # L5 into L6 by hand.
        {"record": "lead", "rule": "(manual)", "flagged": 0, "merged": 1, "open_flags": 0},
        # L3 merged into L1 on create: ACME, Inc. = Acme Inc and +44 20 7946 0958 = (020) 7946-0958 in GB.
        {"record": "lead", "rule": "company-phone", "flagged": 0, "merged": 1, "open_flags": 0},
        # Flagged: L2, L4, L7 = 3; merged: L4 = 1; open: 3 − L2 (disqualified) − L4 (merged) = 1 (L7).
        {"record": "lead", "rule": "email", "flagged": 3, "merged": 1, "open_flags": 1},
    ]
    assert duplicates(reports, "globex") == []
    # The funnel counts each person once: 7 leads created − 3 merged away (L3, L4, L5) = 4; L2 was worked.
    [row] = funnel(reports, "acme")
    assert (row["leads"], row["working"]) == (4, 1)
    # A rebuild from the store (all tables, then the report's own, twice over) gives the same figures.
    live = duplicates(reports, "acme")
    rebuild(reports, history_source(app))
    rebuild(reports, history_source(app), REPORTS["duplicates"].tables)
    rebuild(reports, history_source(app), REPORTS["duplicates"].tables)
    assert duplicates(reports, "acme") == live
    # The report's window is on the time of the flag or merge: the day after holds the two merges by hand only.
    assert duplicates(reports, "acme", since="2026-03-03") == [
        {"record": "lead", "rule": "(manual)", "flagged": 0, "merged": 1, "open_flags": 0},
        {"record": "lead", "rule": "email", "flagged": 0, "merged": 1, "open_flags": 0},
    ]


def test_two_leads_with_one_new_address_in_one_batch_are_flagged_by_the_index_the_first_created(
    app: CrmApplication,
) -> None:
    first, second = app.execute_batch([CommandRequest("lead.create", "acme", {"name": n, "email": "new@ae.example"})
                                       for n in ("One", "Two")])  # fmt: skip
    assert [e["type"] for e in second.events] == ["LeadCreated", "LeadDuplicateFlagged"]
    assert second.events[1]["data"]["existing_lead_id"] == str(first.aggregate_id)
    # The index record is stored with the leads, and is internal: in no answer, published nowhere.
    assert all(e["type"].startswith("Lead") for e in first.events + second.events)
    assert {e["type"] for e in stored_history(app)} == {"LeadCreated", "LeadDuplicateFlagged"}


def test_a_lead_like_a_converted_one_is_not_flagged_and_takes_the_key_over(app: CrmApplication, run: Run) -> None:
    old = str(run("lead.create", name="Ada", email="ada@ae.example").aggregate_id)
    for step in ("lead.work", "lead.qualify", "lead.convert"):
        run(step, lead_id=old)
    fresh = run("lead.create", name="Ada, a year on", email="ada@ae.example")
    assert [e["type"] for e in fresh.events] == ["LeadCreated"]
    again = run("lead.create", name="Ada, once more", email="ada@ae.example")
    assert again.events[1]["data"]["existing_lead_id"] == str(fresh.aggregate_id)


def test_duplicate_rules_that_make_no_sense_are_refused_with_one_line(run: Run) -> None:
    for payload, message in [
        ({"leads": [{"name": "a", "keys": ["email"]}, {"name": "a", "keys": ["phone"]}]},
         "leads rule name 'a' is used twice: give each rule its own name"),
        ({"contacts": [{"name": "b", "keys": ["email", "email"]}]},
         "contacts rule 'b' names a key twice (email, email): name each key once"),
        ({"contacts": [{"name": "c", "keys": ["email"], "action": "merge"}]},
         "contacts rule 'c' merges: contacts are only flagged (there is no contact.merge); use action flag"),
        ({"default_region": "XX"},
         "default_region 'XX' is not a region with phone numbering data: use an ISO 3166 alpha-2 code such as GB, "
         "DE, US"),
    ]:  # fmt: skip
        with pytest.raises(Exception) as refused:
            run("tenant.set_duplicate_rules", **payload)
        assert str(refused.value) == message


def test_two_leads_with_one_new_address_saved_at_once_collide_on_the_index_and_the_second_is_flagged_when_run_again(
    app: CrmApplication, clock: Clock
) -> None:
    # Two writers each read "nobody holds new@ae.example" and make the index record for their own lead.
    one, two = (CommandRequest("lead.create", "acme", {"name": n, "email": "new@ae.example"}) for n in ("One", "Two"))
    first, second = UnitOfWork(app, clock()), UnitOfWork(app, clock())
    first_lead = first.run(one).aggregate_id
    second.run(two)
    first.commit()
    before = stored_count(app)
    with pytest.raises(IntegrityError):
        second.commit()  # the same index record id, at version 1: the store refuses the whole transaction
    assert stored_count(app) == before
    # Run again on fresh state (what execute's conflict_retries and the process runtime do), it finds the key held.
    again = app.execute(two, conflict_retries=1)
    assert [e["type"] for e in again.events] == ["LeadCreated", "LeadDuplicateFlagged"]
    assert again.events[1]["data"]["existing_lead_id"] == str(first_lead)
    assert [e["data"]["name"] for e in stored_history(app) if e["type"] == "LeadCreated"] == ["One", "Two"]


def test_a_contact_like_another_of_the_tenant_is_flagged_and_counted_apart_from_leads(
    app: CrmApplication, run: Run, reports: Database
) -> None:
    # Contacts flag on e-mail, and on company (their account's name) + phone read in Germany.
    run("tenant.set_duplicate_rules", default_region="DE",
        contacts=[{"name": "email", "keys": ["email"]}, {"name": "company-phone", "keys": ["company", "phone"]}])  # fmt: skip
    siemens = str(run("account.create", name="Siemens AG").aggregate_id)
    again = str(run("account.create", name="SIEMENS").aggregate_id)  # another account, the same company
    first = str(run("contact.create", account_id=siemens, name="Werner", email="werner@siemens.example",
                    phone="030 1234567").aggregate_id)  # fmt: skip
    by_email = run("contact.create", account_id=siemens, name="W. von Siemens", email="Werner@Siemens.example")
    by_phone = run("contact.create", account_id=again, name="Werner S.", phone="+49 30 1234567")
    run("contact.create", account_id=siemens, name="Ernst", phone="+49 30 7654321")  # no match
    assert [e["data"] for e in by_email.events if e["type"] == "ContactDuplicateFlagged"] == [
        {"existing_contact_id": first, "rule": "email", "keys": ["email"]}]
    assert [e["data"] for e in by_phone.events if e["type"] == "ContactDuplicateFlagged"] == [
        {"existing_contact_id": first, "rule": "company-phone", "keys": ["company", "phone"]}]
    run("lead.create", name="Werner", email="werner@siemens.example")  # leads have an index of their own

    apply_all(reports, stored_history(app))
    # Contacts have no close and no merge: each flag stays open.
    assert duplicates(reports, "acme") == [
        {"record": "contact", "rule": "company-phone", "flagged": 1, "merged": 0, "open_flags": 1},
        {"record": "contact", "rule": "email", "flagged": 1, "merged": 0, "open_flags": 1},
    ]


def test_a_key_of_a_merged_lead_leads_to_the_lead_it_was_merged_into(app: CrmApplication, run: Run) -> None:
    old_address = str(run("lead.create", name="Ada", email="ada@old.example").aggregate_id)
    stays = str(run("lead.create", name="Ada Lovelace", email="ada@ae.example").aggregate_id)
    run("lead.merge", lead_id=old_address, into_lead_id=stays)  # a person saw they are one
    # The index still names the merged lead for ada@old.example: it is followed to the lead that stays.
    again = run("lead.create", name="Ada (old address)", email="ADA@old.example")
    assert [e["data"] for e in again.events if e["type"] == "LeadDuplicateFlagged"] == [
        {"existing_lead_id": stays, "rule": "email", "keys": ["email"]}]
