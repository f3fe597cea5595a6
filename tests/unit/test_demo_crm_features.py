"""The demo's users and services on their own: the price list, deal lines, usage, calls, merges, quick replies."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from crmflow.aggregates.ids import scoped_id
from crmflow.workers.demo.price_list import OFFERS, PRICE_LIST
from crmflow.workers.demo.workload import SIZES, Workload

MONDAY_9AM = datetime(2026, 3, 9, 9, tzinfo=timezone.utc)


@dataclass
class Result:
    aggregate_id: uuid.UUID
    events: list[dict[str, Any]] = field(default_factory=list)


class App:
    """Takes every command. case.open suggests ``suggest`` (CaseRepliesSuggested, as quick replies do)."""

    def __init__(self, suggest: list[str] | None = None) -> None:
        self.commands: list[tuple[str, dict[str, Any]]] = []
        self.suggest = suggest or []

    def execute(self, request: Any, conflict_retries: int = 0) -> Result:
        self.commands.append((request.name, dict(request.data)))
        id_field = f"{request.name.split('.')[0]}_id"
        if request.name == "lead.convert":
            made = {"account_id": str(uuid.uuid4()), "opportunity_id": f"deal-{len(self.commands)}"}
            return Result(uuid.uuid4(), [{"type": "LeadConverted", "data": made}])
        if id_field in request.data and request.name.endswith((".open", ".create", ".schedule")):
            stored = scoped_id(request.tenant, uuid.UUID(request.data[id_field]))
            events = [{"type": "CaseRepliesSuggested", "data": {"article_ids": self.suggest}}] \
                if request.name == "case.open" and self.suggest else []  # fmt: skip
            return Result(stored, events)
        return Result(uuid.uuid4())

    def sent(self, name: str) -> list[dict[str, Any]]:
        return [data for command, data in self.commands if command == name]


class ReadModels:
    """The rows of each rm_ table the users read, the same every hour."""

    def __init__(self, **tables: list[dict[str, Any]]) -> None:
        self.tables = tables

    def query(self, statement: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        for name, rows in self.tables.items():
            if f"FROM rm_{name} " in statement:
                if name == "opportunities" and "= 'closed_won'" in statement:
                    return []
                return [dict(row) for row in rows]
        return []


def workload(app: App, reports: ReadModels, now: datetime = MONDAY_9AM, seed: int = 5) -> Workload:
    return Workload(app, reports, lambda _document: None, lambda: now, random.Random(seed), SIZES["small"])  # type: ignore[arg-type]


def lead(lead_id: str, status: str, **values: Any) -> dict[str, Any]:
    return {"lead_id": lead_id, "status": status, "owner": "dana", "source": "event", "name": "Ada Lovelace",
            "company": "Lovelace Labs", "score": 0, "created_at": "2026-03-02T07:00:00+00:00",
            "worked_at": "2026-03-04T07:00:00+00:00", **values}  # fmt: skip


def test_each_tenant_gets_the_price_list_with_three_subscriptions_at_prices_of_its_own() -> None:
    app = App()
    demo = workload(app, ReadModels())
    demo.set_up("acme")
    demo.set_up("globex")
    created = app.sent("product.create")
    assert [p["code"] for p in created] == [o.code for o in PRICE_LIST] * 2
    assert [p["code"] for p in created if p["recurring"]] == ["PLAT-SEAT", "ANALYTICS", "SUPPORT-PLUS"] * 2
    assert all(p["term_months"] == 12 for p in created if p["recurring"])
    for product in created:
        # Within 10 % of the list price, in whole tens: PLAT-SEAT's 480.00 becomes one of 430.00 ... 530.00.
        base = OFFERS[product["code"]].list_price
        assert base * Decimal("0.9") - 10 <= Decimal(product["list_price"]) <= base * Decimal("1.1") + 10
        assert Decimal(product["list_price"]) % 10 == 0
    assert demo.prices["acme"] != demo.prices["globex"]


def test_a_converted_deal_is_worth_the_sum_of_the_product_lines_put_on_it() -> None:
    app = App()
    demo = workload(app, ReadModels(leads=[lead(str(uuid.uuid4()), "qualified")]))
    demo.set_up("acme")
    for _ in range(40):
        demo.hour("acme", 9, first_hour_of_week=False)
    conversions = app.sent("lead.convert")
    assert conversions, "a qualified lead is converted in forty hours"
    prices = demo.prices["acme"]
    lines_by_deal: dict[str, list[dict[str, Any]]] = {}
    for line in app.sent("opportunity.add_line"):
        lines_by_deal.setdefault(line["opportunity_id"], []).append(line)
    assert len(lines_by_deal) == len(conversions)
    for conversion, lines in zip(conversions, lines_by_deal.values()):
        # Each line: quantity × the tenant's list price × (100 − discount) / 100, to the cent; the deal: their sum.
        expected = sum((
            (Decimal(line["quantity"]) * prices[line["product_code"]] * (100 - Decimal(line["discount"])) / 100)
            .quantize(Decimal("0.01"), rounding=ROUND_HALF_UP) for line in lines), Decimal(0))  # fmt: skip
        assert Decimal(conversion["opportunity"]["amount"]) == expected
        assert lines[0]["product_code"] == "PLAT-SEAT" and 1 <= len(lines) <= 3
        assert conversion["opportunity"]["name"].endswith(OFFERS["PLAT-SEAT"].name)


def test_billing_reports_each_accounts_use_of_the_subscriptions_it_owns() -> None:
    assets = [
        {
            "account_id": "b-account",
            "product_code": "PLAT-SEAT",
            "quantity": "10",
            "start_date": "2026-03-03",
        },
        {"account_id": "b-account", "product_code": "PLAT-SEAT", "quantity": "5", "start_date": "2026-03-04"},
        {"account_id": "a-account", "product_code": "ANALYTICS", "quantity": "2", "start_date": "2026-03-02"},
        # Won after the week being reported: nothing to report of it yet.
        {
            "account_id": "a-account",
            "product_code": "SUPPORT-PLUS",
            "quantity": "1",
            "start_date": "2026-03-10",
        },
    ]
    demo = workload(App(), ReadModels(assets=assets))
    demo.report_usage("acme", date(2026, 3, 2), date(2026, 3, 8))
    usage = [(e["data"]["account_id"], e["data"]["product_code"], int(e["data"]["quantity"]))
             for e in demo.outbox if e["type"] == "UsageReported"]  # fmt: skip
    assert [(account, code) for account, code, _ in usage] == [
        ("a-account", "ANALYTICS"),
        ("b-account", "PLAT-SEAT"),
    ]
    by_product = {code: quantity for _, code, quantity in usage}
    assert 40 <= by_product["ANALYTICS"] <= 400  # 2 add-ons × 20 to 200 reports each
    assert 9 <= by_product["PLAT-SEAT"] <= 15  # 10 + 5 seats, 0.6 to 1 of them used
    assert {(e["data"]["period_start"], e["data"]["period_end"]) for e in demo.outbox} == {
        ("2026-03-02", "2026-03-08")
    }


def test_a_rep_who_starts_working_a_lead_books_a_follow_up_call_due_the_next_working_day() -> None:
    app = App()
    friday = datetime(2026, 3, 13, 9, tzinfo=timezone.utc)
    demo = workload(app, ReadModels(leads=[lead(str(uuid.uuid4()), "new", created_at="2026-03-06T07:00:00+00:00")]),
                    now=friday)  # fmt: skip
    demo.hour("acme", 9, first_hour_of_week=False)  # created a week ago: worked now, forgotten or not
    assert len(app.sent("lead.work")) == 1
    [call] = app.sent("activity.schedule")
    assert (call["kind"], call["related_kind"], call["owner"]) == ("call", "lead", "dana")
    assert datetime.fromisoformat(call["due_at"]) == friday + timedelta(days=3)  # Monday, same hour


def test_a_lead_is_qualified_naming_the_call_that_was_made_about_it() -> None:
    leads = [lead(f"{n:x}0000000-0000-4000-8000-000000000000", "working") for n in range(1, 9)]
    calls = [{"activity_id": f"c{n}", "related_id": row["lead_id"], "owner": "dana", "status": "completed"}
             for n, row in enumerate(leads[:4])]  # fmt: skip
    app = App()
    demo = workload(app, ReadModels(leads=leads, activities=calls))
    for _ in range(40):
        demo.hour("acme", 9, first_hour_of_week=False)
    called = {call["related_id"]: call["activity_id"] for call in calls}
    qualified = app.sent("lead.qualify")
    assert {q["lead_id"] for q in qualified} & called.keys() and {
        q["lead_id"] for q in qualified
    } - called.keys()
    for q in qualified:
        assert q["activity_id"] == called.get(q["lead_id"])  # no call made about it: qualified on its own


def test_reps_make_most_open_calls_and_forget_one_in_six() -> None:
    calls = [{"activity_id": str(uuid.UUID(int=n << 120 | n, version=4)), "related_id": "x", "owner": "eli",
              "status": "open"} for n in range(48)]  # fmt: skip
    app = App()
    demo = workload(app, ReadModels(activities=calls))
    for _ in range(30):
        demo.hour("acme", 9, first_hour_of_week=False)
    made = {c["activity_id"] for c in app.sent("activity.complete")}
    # The first two hex digits of the id decide: n << 120 puts n there, and n % 6 == 0 for 8 of the 48.
    forgotten = {c["activity_id"] for n, c in enumerate(calls) if n % 6 == 0}
    assert made.isdisjoint(forgotten) and len(made) > 30


def test_a_flagged_lead_is_merged_into_the_lead_it_repeats_and_a_third_are_left_alone() -> None:
    pairs = [(str(uuid.UUID(int=(2 * n) << 120, version=4)), str(uuid.UUID(int=(2 * n + 1) << 120, version=4)))
             for n in range(12)]  # fmt: skip
    leads = [lead(lead_id, "new", owner=None) for pair in pairs for lead_id in pair]
    flags = [{"record_id": flagged, "existing_id": existing} for flagged, existing in pairs]
    app = App()
    demo = workload(app, ReadModels(leads=leads, duplicates=flags))
    for row in leads:  # ids the generator knows as they are (a web form's lead would get a stand-in)
        demo.ids.choose(row["lead_id"])
    for _ in range(30):
        demo.hour("acme", 9, first_hour_of_week=False)
    # The fake read models never show a merge: each hour the users see every pair still open.
    merged = {(m["lead_id"], m["into_lead_id"]) for m in app.sent("lead.merge")}
    assert merged and merged <= set(pairs)
    # Left alone: the flagged leads whose first two hex digits are a multiple of 3 (2n for n = 0, 3, 6, 9);
    # the other 8 are merged within thirty hours (at 0.3 an hour).
    assert {flagged for flagged, _ in merged} == {pairs[n][0] for n in range(12) if n not in (0, 3, 6, 9)}


def test_an_agent_answers_a_new_case_with_the_article_it_was_suggested() -> None:
    article = str(uuid.uuid4())
    app = App(suggest=[article])
    demo = workload(app, ReadModels())
    demo.set_up("acme")
    demo.open_cases("acme", 1)  # a whole day's cases in one hour
    opened = [str(scoped_id("acme", uuid.UUID(c["case_id"]))) for c in app.sent("case.open")]
    assert opened and set(demo.suggested) == set(opened)
    cases = [{"case_id": case_id, "account_id": None, "status": "new", "priority": "urgent", "category": "billing",
              "owner": "kim", "first_responded_at": None} for case_id in opened]  # fmt: skip
    demo.reports = ReadModels(cases=cases)  # type: ignore[assignment]
    for _ in range(10):
        demo.work_cases("acme", demo.queues("acme").cases)
    answers = app.sent("case.respond")
    assert {a.get("article_id") for a in answers} == {article, None}  # some with the suggestion, some without
