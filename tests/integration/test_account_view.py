"""Stories of the customer view: profile, profitability, segments and cross-sell, on SQLite and PostgreSQL
(every figure worked out by hand in the comments)."""

from __future__ import annotations

import json
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from crmflow.aggregates.application import CrmApplication
from crmflow.processes.loader import load_files, parse_documents
from crmflow.processes.registry import DefinitionRegistry
from crmflow.processes.runtime import ProcessRuntime
from crmflow.projections.db import Database
from crmflow.projections.projector import apply_all, create_tables
from crmflow.projections.reports import REPORTS
from crmflow.workers.history import stored_history
from crmflow.workers.report_inputs import report_inputs
from crmflow.workers.segments_apply import apply_segments
from tests.conftest import Clock, Run
from tests.integration.api_harness import start_api


def project(app: CrmApplication, reports: Database) -> Database:
    apply_all(reports, stored_history(app))
    return reports


def won(run: Run, account: Any, lines: dict[str, str], tenant: str = "acme") -> None:
    """A deal of the account won with these lines (product code → quantity): they become its assets."""
    deal = run(
        "opportunity.create",
        tenant=tenant,
        account_id=account,
        name="Deal",
        amount="1",
        close_date="2026-04-30",
    ).aggregate_id
    for code, quantity in lines.items():
        run("opportunity.add_line", tenant=tenant, opportunity_id=deal, product_code=code, quantity=quantity)
    run("opportunity.win", tenant=tenant, opportunity_id=deal)


def converted(run: Run, campaign: Any, account: Any, name: str) -> None:
    """A lead of the campaign, qualified and converted into the (existing) account."""
    lead = run(
        "lead.create", name=name, email=f"{name.lower()}@example.com", campaign_id=campaign
    ).aggregate_id
    run("lead.work", lead_id=lead)
    run("lead.qualify", lead_id=lead)
    run("lead.convert", lead_id=lead, account_id=account)


def usage(
    app: CrmApplication, account: Any, event_id: str, code: str, quantity: str, start: str, end: str
) -> None:
    document = {
        "specversion": "1.0",
        "id": event_id,
        "source": "/billing/metering",
        "type": "UsageReported",
        "tenantid": "acme",
        "time": "2026-12-01T06:00:00Z",
        "data": {
            "account_id": str(account),
            "product_code": code,
            "quantity": quantity,
            "period_start": start,
            "period_end": end,
        },
    }
    assert app.accept_inbound([("acme", json.loads(json.dumps(document)))]) == [True]


def test_an_accounts_profitability_adds_revenue_expected_renewals_and_weighted_pipeline_less_acquisition_and_service_costs(
    app: CrmApplication, run: Run, clock: Clock, reports: Database
) -> None:
    run(
        "product.create",
        code="SUP-1",
        name="Monthly support",
        list_price="33.335",
        recurring=True,
        term_months=1,
    )
    run(
        "product.create",
        code="SUB-12",
        name="Yearly licence",
        list_price="100.00",
        recurring=True,
        term_months=12,
    )
    initech, umbrella, hooli = (
        run("account.create", name=n).aggregate_id for n in ("Initech", "Umbrella", "Hooli")
    )
    # The webinar cost 100.00 and produced three customers (Initech twice: one customer): 33.333… each.
    webinar = run("campaign.create", name="Webinar", channel="webinar", budget="150").aggregate_id
    run("campaign.record_cost", campaign_id=webinar, amount="100.00")
    for account, name in ((initech, "Ada"), (initech, "Bob"), (umbrella, "Cyd"), (hooli, "Dee")):
        converted(run, webinar, account, name)
    # The trade fair cost 500.00 and produced nobody's account: it spends on no account here.
    fair = run("campaign.create", name="Trade fair", channel="event", budget="500").aggregate_id
    run("campaign.record_cost", campaign_id=fair, amount="500.00")
    run("lead.create", name="Eve", email="eve@example.com", campaign_id=fair)

    run(
        "account.record_payment", account_id=initech, invoice_id="i-1", amount="1000.00", paid_on="2026-02-01"
    )
    run("account.record_payment", account_id=initech, invoice_id="i-2", amount="234.56", paid_on="2026-02-15")
    run("account.record_cost", account_id=initech, amount="100.10", category="onboarding")
    for subject in ("Login fails", "Invoice wrong"):
        run("case.open", account_id=initech, subject=subject)
    # Won today, Monday 2 March 2026: 3 × SUP-1 renews monthly from 2 April, 1 × SUB-12 on 2 March 2027.
    won(run, initech, {"SUP-1": "3", "SUB-12": "1"})
    # Open: 1,000.00 in prospecting (10%) and 333.33 in qualification (20%).
    run("opportunity.create", account_id=initech, name="Expansion", amount="1000.00", close_date="2026-06-30")
    upsell = run(
        "opportunity.create", account_id=initech, name="Upsell", amount="333.33", close_date="2026-06-30"
    ).aggregate_id
    run("opportunity.advance", opportunity_id=upsell, stage="qualification")

    rows = REPORTS["profitability"].run(
        project(app, reports), "acme", now=clock(), cost_per_case=D("12.50"), lifetime_years=D("2")
    )
    by_name = {r["account"]: r for r in rows}
    assert by_name["Initech"] == {
        "account": "Initech",
        "currency": "EUR",
        "revenue": D("1234.56"),  # 1,000.00 + 234.56 paid
        # SUP-1 renews 2 Apr 2026 … 2 Feb 2027: 11 times in [2 Mar 2026, 2 Mar 2027); SUB-12's 2 Mar 2027 is
        # just outside. 11 × 3 × 33.335 = 1,100.055 → 1,100.06.
        "expected_renewals": D("1100.06"),
        # (1,000.00 × 10 + 333.33 × 20) / 100 = 166.666 → 166.67, rounded once.
        "weighted_pipeline": D("166.67"),
        "expected_revenue": D("1266.73"),  # 1,100.06 + 166.67
        "acquisition_cost": D("33.33"),  # 100.00 / 3 accounts = 33.333… → 33.33
        "recorded_costs": D("100.10"),
        "cases": 2,
        "case_cost": D("25.00"),  # 2 cases × 12.50
        "cost_to_serve": D("125.10"),  # 100.10 + 25.00
        "profit": D("1076.13"),  # 1,234.56 − 33.33 − 125.10
        "margin": D("0.8717"),  # 1,076.13 / 1,234.56 = 0.87167… → 0.8717
        "lifetime_value": D("3768.02"),  # 1,234.56 + 2 years × 1,266.73
        "usage": None,
        "segment": "long-tail",
        "usage_tier": "light",
        "why": "no other segment fits",
        "not_in_currency": 0,
    }
    # Umbrella has paid nothing yet: its profit is its share of the webinar, negative; no margin of nothing.
    umbrella_row = by_name["Umbrella"]
    assert (umbrella_row["revenue"], umbrella_row["acquisition_cost"], umbrella_row["profit"]) == (
        D("0.00"),
        D("33.33"),
        D("-33.33"),
    )
    assert umbrella_row["margin"] is None
    assert (umbrella_row["segment"], umbrella_row["why"]) == ("at-risk", "profit -33.33 < 0.00")
    # The most profitable first; the webinar's 100.00 is shared out whole but for the rounding: 3 × 33.33.
    assert [r["account"] for r in rows] == ["Initech", "Hooli", "Umbrella"]
    assert sum(r["acquisition_cost"] for r in rows) == D("99.99")


SEGMENTATION = """\
apiVersion: crmflow/v1
kind: Segmentation
name: acme-value
version: 1
tenant: acme
segments:
  - name: big
    when:
      revenue: {at_least: "1000.00"}
  - name: rest
usage_tiers:
  - {name: power, at_least: "500"}
  - {name: casual, at_least: "0"}
"""


def test_accounts_are_segmented_by_the_tenants_own_segmentation(
    app: CrmApplication, run: Run, reports: Database
) -> None:
    run(
        "product.create",
        code="SUB-12",
        name="Yearly licence",
        list_price="100.00",
        recurring=True,
        term_months=12,
    )
    DefinitionRegistry(app).deploy(parse_documents(SEGMENTATION, "acme-value.yaml"), "ana")
    initechs = {}
    for tenant in ("acme", "globex"):
        initech = initechs[tenant] = run("account.create", tenant=tenant, name="Initech").aggregate_id
        umbrella = run("account.create", tenant=tenant, name="Umbrella").aggregate_id
        run(
            "account.record_payment",
            tenant=tenant,
            account_id=initech,
            invoice_id="i-1",
            amount="1000.00",
            paid_on="2026-02-01",
        )
        run(
            "account.record_payment",
            tenant=tenant,
            account_id=umbrella,
            invoice_id="u-1",
            amount="999.99",
            paid_on="2026-02-01",
        )
    # Initech's latest period: 600 (October's 20 is older); Umbrella reported none.
    usage(app, initechs["acme"], "u-1", "SUB-12", "20", "2026-10-01", "2026-10-31")
    usage(app, initechs["acme"], "u-2", "SUB-12", "600", "2026-11-01", "2026-11-30")
    db = project(app, reports)
    registry = DefinitionRegistry(app)

    def segments(tenant: str) -> list[dict[str, Any]]:
        report = REPORTS["segments"]
        return report.run(db, tenant, **report_inputs(report, tenant, None, registry.documents))

    # acme's own document: revenue 1,000.00 ≥ 1,000.00 is big, 999.99 is not; 600 ≥ 500 is power, none is 0.
    assert segments("acme") == [
        {
            "segment": "big",
            "usage_tier": "power",
            "currency": "EUR",
            "accounts": 1,
            "revenue": D("1000.00"),
            "profit": D("1000.00"),
        },
        {
            "segment": "rest",
            "usage_tier": "casual",
            "currency": "EUR",
            "accounts": 1,
            "revenue": D("999.99"),
            "profit": D("999.99"),
        },
    ]
    report = REPORTS["profitability"]
    placed = {
        r["account"]: (r["segment"], r["why"], r["usage"])
        for r in report.run(db, "acme", **report_inputs(report, "acme", None, registry.documents))
    }
    assert placed == {
        "Initech": ("big", "revenue 1000.00 ≥ 1000.00", D("600")),
        "Umbrella": ("rest", "no other segment fits", None),
    }
    # globex deployed none: the shipped value-and-usage places both in its catch-all, light users.
    assert segments("globex") == [
        {
            "segment": "long-tail",
            "usage_tier": "light",
            "currency": "EUR",
            "accounts": 2,
            "revenue": D("1999.99"),
            "profit": D("1999.99"),
        },
    ]


def test_cross_sell_names_the_accounts_that_own_one_product_and_not_the_other(
    app: CrmApplication, run: Run, reports: Database
) -> None:
    for code in ("WIDGET", "SUB-12", "TRAINING"):
        run("product.create", code=code, name=code.title(), list_price="10")
    owners = {
        "Initech": {"WIDGET": "1", "SUB-12": "1"},
        "Umbrella": {"WIDGET": "2", "SUB-12": "1"},
        "Hooli": {"WIDGET": "1"},
        "Globo": {"SUB-12": "1", "TRAINING": "1"},
        "Stark": {},
    }
    for name, lines in owners.items():
        account = run("account.create", name=name).aggregate_id
        if lines:
            won(run, account, lines)
    # globex's Initech owns WIDGET and TRAINING: none of acme's figures.
    run("product.create", tenant="globex", code="WIDGET", name="Theirs", list_price="1")
    run("product.create", tenant="globex", code="TRAINING", name="Theirs", list_price="1")
    won(
        run,
        run("account.create", tenant="globex", name="Initech").aggregate_id,
        {"WIDGET": "1", "TRAINING": "1"},
        tenant="globex",
    )

    rows = REPORTS["cross-sell"].run(project(app, reports), "acme")
    assert rows == [
        # SUB-12 is owned by Initech, Umbrella, Globo; 2 of them own WIDGET too: confidence 2/3, support 2/5.
        {
            "product": "SUB-12",
            "also_product": "WIDGET",
            "owners": 3,
            "both": 2,
            "support": D("0.4000"),
            "confidence": D("0.6667"),
            "candidates": 1,
            "accounts": "Globo",
        },
        # WIDGET: Initech, Umbrella, Hooli; 2 own SUB-12: 2/3 and 2/5 again; the tie goes by product code.
        {
            "product": "WIDGET",
            "also_product": "SUB-12",
            "owners": 3,
            "both": 2,
            "support": D("0.4000"),
            "confidence": D("0.6667"),
            "candidates": 1,
            "accounts": "Hooli",
        },
        # SUB-12 → TRAINING: only Globo owns both, 1/3; support 1/5.
        {
            "product": "SUB-12",
            "also_product": "TRAINING",
            "owners": 3,
            "both": 1,
            "support": D("0.2000"),
            "confidence": D("0.3333"),
            "candidates": 2,
            "accounts": "Initech, Umbrella",
        },
    ]
    # Left out: TRAINING → SUB-12 (its one owner has SUB-12: nobody to sell to), WIDGET ↔ TRAINING (never
    # together).


def test_the_profile_shows_usage_per_period_and_its_trend(
    app: CrmApplication, run: Run, clock: Clock, reports: Database
) -> None:
    run(
        "product.create",
        code="SUB-12",
        name="Yearly licence",
        list_price="100.00",
        recurring=True,
        term_months=12,
    )
    run("product.create", code="WIDGET", name="Widget", list_price="10")
    initech = run("account.create", name="Initech", owner="maria").aggregate_id
    run("account.create", name="Umbrella")
    for name in ("Ada", "Bob"):
        run("contact.create", account_id=initech, name=name)
    cases = [run("case.open", account_id=initech, subject=s).aggregate_id for s in ("Login fails", "Slow")]
    run("case.respond", case_id=cases[0], message="Try a new password")  # new → working
    run("case.resolve", case_id=cases[0], solution="reset the password")
    won(run, initech, {"SUB-12": "2"})  # won Monday 2 March 2026: renews 2 March 2027
    # Usage of SUB-12: October 300, November 1,000 + 250.5 (two reports of one period) = 1,250.5.
    usage(app, initech, "u-1", "SUB-12", "300", "2026-10-01", "2026-10-31")
    usage(app, initech, "u-2", "SUB-12", "1000", "2026-11-01", "2026-11-30")
    usage(app, initech, "u-3", "SUB-12", "250.5", "2026-11-01", "2026-11-30")
    usage(app, initech, "u-4", "WIDGET", "10", "2026-11-01", "2026-11-30")  # used, not owned
    # Three days later a call about the open case is scheduled: the latest thing that happened to Initech.
    called = clock.advance(days=3)
    run(
        "activity.schedule",
        kind="call",
        related_kind="case",
        related_id=cases[1],
        owner="maria",
        subject="Check it is faster",
        due_at="2026-03-06T10:00:00+00:00",
    )

    rows = REPORTS["profile"].run(project(app, reports), "acme")
    common = {
        "account": "Initech",
        "owner": "maria",
        "last_activity_at": called.isoformat(),
        "open_cases": 1,
        "contacts": 2,
    }
    assert rows == [
        {
            **common,
            "product": "SUB-12",
            "quantity": D("2"),
            "renewal_date": "2027-03-02",
            "usage_by_period": "2026-10-01..2026-10-31 300; 2026-11-01..2026-11-30 1250.5",
            "latest_period": "2026-11-01..2026-11-30",
            "latest_usage": D("1250.5"),
            "previous_usage": D("300"),
            "usage_trend": D("4.1683"),
        },  # 1,250.5 / 300 = 4.168333… → 4.1683
        {
            **common,
            "product": "WIDGET",
            "quantity": None,
            "renewal_date": None,
            "usage_by_period": "2026-11-01..2026-11-30 10",
            "latest_period": "2026-11-01..2026-11-30",
            "latest_usage": D("10"),
            "previous_usage": None,
            "usage_trend": None,
        },  # one period: no trend
        {
            "account": "Umbrella",
            "owner": None,
            "last_activity_at": "2026-03-02T09:00:00+00:00",
            "open_cases": 0,
            "contacts": 0,
            "product": None,
            "quantity": None,
            "renewal_date": None,
            "usage_by_period": None,
            "latest_period": None,
            "latest_usage": None,
            "previous_usage": None,
            "usage_trend": None,
        },
    ]
    # --since/--until choose the periods by their end: November's alone leaves no trend.
    (sub,) = [
        r for r in REPORTS["profile"].run(reports, "acme", since="2026-11-01") if r["product"] == "SUB-12"
    ]
    assert (sub["usage_by_period"], sub["usage_trend"]) == ("2026-11-01..2026-11-30 1250.5", None)


def test_over_http_the_profitability_counts_the_configured_cost_per_case_and_the_deployed_segmentation(
    tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRMFLOW_COST_PER_CASE", "40.00")
    app = CrmApplication(str(tmp_path / "events.db"), clock=clock)
    reports = Database(str(tmp_path / "reports.db"))
    create_tables(reports)
    try:
        api = start_api(app, reports)
        DefinitionRegistry(app).deploy(parse_documents(SEGMENTATION, "acme-value.yaml"), "ana")
        sales = api.user("acme", "sales")
        account = sales.created("account.create", name="Initech")
        sales.created(
            "account.record_payment",
            account_id=account,
            invoice_id="i-1",
            amount="1000.00",
            paid_on="2026-02-01",
        )
        api.user("acme", "admin").created("case.open", account_id=account, subject="Login fails")
        api.project()
        answer = sales.get("/v1/reports/profitability")
        assert answer.status_code == 200, answer.text
        (row,) = answer.json()["rows"]
        # 1 case × 40.00 (CRMFLOW_COST_PER_CASE); profit 1,000.00 − 40.00 = 960.00; acme's own document: big.
        assert (row["case_cost"], row["profit"], row["segment"], row["why"]) == (
            "40.00",
            "960.00",
            "big",
            "revenue 1000.00 ≥ 1000.00",
        )
        assert sales.get("/v1/reports/segments").status_code == 403, "segments is the analysts'"
        segments = api.user("acme", "analyst").get("/v1/reports/segments").json()["rows"]
        assert segments == [
            {
                "segment": "big",
                "usage_tier": "casual",
                "currency": "EUR",
                "accounts": 1,
                "revenue": "1000.00",
                "profit": "960.00",
            }
        ]
    finally:
        reports.close()
        app.close()


EXAMPLES = Path(__file__).parents[2] / "examples"


def test_an_account_that_turns_at_risk_is_segmented_once_and_its_owner_gets_a_call(
    app: CrmApplication, run: Run, clock: Clock, reports: Database
) -> None:
    DefinitionRegistry(app).deploy(load_files([EXAMPLES / "at-risk-call.yaml"]), "ada")
    runtime, handed = ProcessRuntime(app, clock), set[str]()

    def catch_up() -> None:
        new = [
            e for e in stored_history(app) if e["id"] not in handed and not e["type"].startswith("Process")
        ]
        handed.update(e["id"] for e in new)
        runtime.handle(new)

    initech = run("account.create", name="Initech", owner="maria").aggregate_id
    run("account.record_payment", account_id=initech, invoice_id="i-1", amount="100.00", paid_on="2026-02-01")
    # Profit 100.00, margin 1: long-tail (core wants a profit of 5,000.00). Applying twice records it once.
    assert apply_segments(app, project(app, reports), "acme", now=clock()) == [
        {"account": "Initech", "segment": "long-tail", "usage_tier": "light", "why": "no other segment fits"}
    ]
    assert apply_segments(app, project(app, reports), "acme", now=clock()) == []
    catch_up()
    # Onboarding cost 100.01: profit 100.00 − 100.01 = −0.01 < 0.00, at-risk.
    run("account.record_cost", account_id=initech, amount="100.01", category="onboarding")
    assert apply_segments(app, project(app, reports), "acme", now=clock()) == [
        {"account": "Initech", "segment": "at-risk", "usage_tier": "light", "why": "profit -0.01 < 0.00"}
    ]
    catch_up()

    segmented = [e["data"] for e in stored_history(app) if e["type"] == "AccountSegmented"]
    assert [(d["segment"], d["previous_segment"], d["owner"]) for d in segmented] == [
        ("long-tail", None, "maria"),
        ("at-risk", "long-tail", "maria"),
    ]
    # The example process: a call for maria about Initech, due 48 hours after the placement.
    (call,) = [e["data"] for e in stored_history(app) if e["type"] == "ActivityCreated"]
    assert (
        call["activity_kind"],
        call["related_kind"],
        call["related_id"],
        call["owner"],
        call["subject"],
        call["due_at"],
    ) == (
        "call",
        "account",
        str(initech),
        "maria",
        "At risk: profit -0.01 < 0.00",
        "2026-03-04T09:00:00+00:00",
    )
