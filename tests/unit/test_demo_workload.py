"""The demo's workload generator on its own: a seed fixes every command it sends and every id it chooses."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from crmflow.aggregates.ids import scoped_id
from crmflow.workers.demo.identities import Identities
from crmflow.workers.demo.workload import SIZES, Workload

WEDNESDAY_2PM = datetime(2026, 3, 4, 14, tzinfo=timezone.utc)  # the weekly webinar's hour


@dataclass
class Result:
    aggregate_id: uuid.UUID
    events: list[dict[str, Any]] = field(default_factory=list)


class RecordingApp:
    """Takes every command; creates get the stored id of their chosen id, as the service gives it."""

    def __init__(self) -> None:
        self.commands: list[tuple[str, dict[str, Any]]] = []
        self.made = 0

    def execute(self, request: Any, conflict_retries: int = 0) -> Result:
        self.commands.append((request.name, dict(request.data)))
        id_field = f"{request.name.split('.')[0]}_id"  # lead.create: lead_id (product.create has none: a code)
        if request.name.endswith((".create", ".open")) and id_field in request.data:
            chosen = request.data[id_field]
            return Result(scoped_id(request.tenant, uuid.UUID(chosen)))
        if request.name == "lead.convert":
            self.made += 1
            made = {
                "account_id": request.data["account_id"] or f"account-{self.made}",
                "opportunity_id": f"deal-{self.made}",
            }
            return Result(uuid.uuid4(), [{"type": "LeadConverted", "data": made}])
        return Result(uuid.uuid4())


class ReadModels:
    """What the users see in one tenant's queues; the same rows every hour."""

    LEADS = [
        {
            "lead_id": "2f000000-0000-4000-8000-000000000001",
            "status": "new",
            "owner": "dana",
            "source": "event",
            "name": "Ada Lovelace",
            "company": "Lovelace Labs",
            "score": 0,
            "created_at": "2026-03-02T07:00:00+00:00",
            "worked_at": None,
        },
        {
            "lead_id": "3f000000-0000-4000-8000-000000000002",
            "status": "qualified",
            "owner": "eli",
            "source": "search",
            "name": "Grace Hopper",
            "company": "Hopper Systems",
            "score": 0,
            "created_at": "2026-03-02T08:00:00+00:00",
            "worked_at": "2026-03-02T09:00:00+00:00",
        },
        {
            "lead_id": "4f000000-0000-4000-8000-000000000003",
            "status": "new",
            "owner": "ana",
            "source": "webinar",
            "name": "Alan Turing",
            "company": "Turing Works",
            "score": 35,
            "created_at": "2026-03-02T09:00:00+00:00",
            "worked_at": None,
        },
    ]
    DEALS = [
        {
            "opportunity_id": f"5f00000{n}-0000-4000-8000-000000000000",
            "account_id": "a",
            "stage": stage,
            "owner": "fay",
            "amount": "12000.00",
        }
        for n, stage in enumerate(("prospecting", "negotiation"))
    ]
    CASES = [
        {
            "case_id": f"6f00000{n}-0000-4000-8000-000000000000",
            "account_id": "a",
            "status": status,
            "priority": "high",
            "category": "billing",
            "owner": "kim",
            "first_responded_at": None,
        }
        for n, status in enumerate(("new", "working", "resolved"))
    ]

    def query(self, statement: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        if "FROM rm_leads" in statement:
            return [dict(row) for row in self.LEADS]
        if "FROM rm_opportunities" in statement:
            return [] if "= 'closed_won'" in statement else [dict(row) for row in self.DEALS]
        if "FROM rm_cases" in statement:
            return [dict(row) for row in self.CASES]
        return []


def commands_of(seed: int) -> list[tuple[str, dict[str, Any]]]:
    app = RecordingApp()
    workload = Workload(
        app,
        ReadModels(),
        lambda _document: None,
        lambda: WEDNESDAY_2PM,  # type: ignore[arg-type]
        random.Random(seed),
        SIZES["small"],
    )
    workload.set_up("acme")
    for _ in range(9):  # a working day
        workload.hour("acme", 9, first_hour_of_week=False)
        workload.send_inbound()
    return app.commands


def test_the_generator_with_the_same_seed_sends_the_same_commands_with_the_same_chosen_ids() -> None:
    first, again = commands_of(7), commands_of(7)
    assert (
        len(first) > 28 + 10
    )  # the set-up's campaigns, articles, accounts and contacts, then the day's work
    assert first == again
    names = {name for name, _ in first}
    assert {
        "campaign.create",
        "lead.create",
        "lead.work",
        "lead.convert",
        "case.open",
        "case.resolve",
        # The price list, a deal's lines, the follow-up call of a lead being worked.
        "product.create",
        "opportunity.add_line",
        "activity.schedule",
    } <= names


def test_the_generator_with_another_seed_sends_other_commands() -> None:
    assert commands_of(7) != commands_of(8)


def test_the_generator_holds_other_services_events_back_until_the_hours_commands_are_done() -> None:
    sent: list[dict[str, Any]] = []
    workload = Workload(
        RecordingApp(),
        ReadModels(),
        sent.append,
        lambda: WEDNESDAY_2PM,  # type: ignore[arg-type]
        random.Random(3),
        SIZES["small"],
    )
    workload.set_up("acme")
    workload.hour("acme", 9, first_hour_of_week=False)
    assert sent == [] and workload.outbox, "forms and webinar attendance wait for the users' hour to end"
    held = list(workload.outbox)
    workload.send_inbound()
    assert sent == held and workload.outbox == []
    assert {document["type"] for document in sent} >= {"WebinarAttended"}


def test_records_the_service_made_at_random_are_taken_up_by_what_users_see_not_by_their_ids() -> None:
    def form_leads(rng: random.Random) -> list[dict[str, Any]]:
        rows = [
            {
                "lead_id": str(uuid.uuid4()),
                "name": name,
                "created_at": "2026-03-02T09:00:00+00:00",
                "owner": owner,
            }
            for name, owner in (("Ada", "ana"), ("Grace", "ben"), ("Emmy", "chen"))
        ]
        rng.shuffle(rows)
        return rows

    seen = []
    for shuffle in (1, 2):
        ids = Identities(random.Random(11))
        ordered = ids.ordered(
            form_leads(random.Random(shuffle)), "lead_id", first_seen_by=("created_at", "owner")
        )
        seen.append([(row["name"], ids.of(row["lead_id"])) for row in ordered])
    # Other random ids, another order from the store: the same stand-in ids, the same order of work.
    assert seen[0] == seen[1]
    assert len({stand_in for _, stand_in in seen[0]}) == 3


def test_ids_the_generator_chose_are_their_own_stable_ids() -> None:
    ids = Identities(random.Random(1))
    stored = str(scoped_id("acme", uuid.UUID(ids.new())))
    ids.choose(stored)
    assert ids.ordered([{"case_id": stored}], "case_id", first_seen_by=("case_id",)) == [{"case_id": stored}]
    assert ids.of(stored) == stored and ids.stand_ins == {}
