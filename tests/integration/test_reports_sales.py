"""Sales and marketing reports on a hand-built history, figures worked out by hand, on both databases."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

from crmflow.aggregates.application import CrmApplication
from crmflow.projections.db import Database
from crmflow.projections.projector import apply_all, rebuild
from crmflow.projections.reports import campaigns, forecast, funnel, pipeline, win_rate
from crmflow.workers.history import history_source, stored_history
from tests.conftest import Clock, Run


def id_of(result: Any, event_type: str) -> str:
    return next(e["subject"] for e in result.events if e["type"] == event_type)


def quarter_of_sales(run: Run, clock: Clock) -> None:
    """Two campaigns, six leads, four deals (see each test for the figures)."""
    # Mon 2 March 09:00: marketing plans two campaigns; six leads arrive.
    spring = run("campaign.create", name="Spring webinar", channel="webinar", budget="5000").aggregate_id
    show = run("campaign.create", name="Trade show", channel="event", budget="10000").aggregate_id
    run("campaign.record_cost", campaign_id=spring, amount="3000")
    run("campaign.record_cost", campaign_id=spring, amount="1000")
    run("campaign.record_cost", campaign_id=show, amount="8000")
    leads = {}
    for name, source, campaign in [("L1", "webinar", spring), ("L2", "webinar", spring), ("L3", "webinar", spring),
                                   ("L4", "event", show), ("L5", "event", show), ("L6", "web", None)]:  # fmt: skip
        leads[name] = run("lead.create", name=name, company=f"{name} Ltd", source=source, campaign_id=campaign).aggregate_id
    for name, rep in [("L1", "maria"), ("L2", "maria"), ("L4", "joe")]:
        run("lead.assign", lead_id=leads[name], owner=rep)
    # Tue: sales works five of them, qualifies three and disqualifies one.
    clock.advance(days=1)
    for name in ("L1", "L2", "L3", "L4", "L6"):
        run("lead.work", lead_id=leads[name])
    for name in ("L1", "L2", "L4"):
        run("lead.qualify", lead_id=leads[name])
    run("lead.disqualify", lead_id=leads["L3"], reason="student")
    # Wed 4 March: three conversions with deals, and one deal opened directly.
    clock.advance(days=1)
    o1 = id_of(run("lead.convert", lead_id=leads["L1"], opportunity={"name": "O1", "amount": "10000", "close_date": "2026-04-30"}), "OpportunityCreated")
    o2 = id_of(run("lead.convert", lead_id=leads["L2"], opportunity={"name": "O2", "amount": "5000", "close_date": "2026-05-31"}), "OpportunityCreated")
    o3 = id_of(run("lead.convert", lead_id=leads["L4"], opportunity={"name": "O3", "amount": "20000", "close_date": "2026-04-30"}), "OpportunityCreated")
    initech = run("account.create", name="Initech").aggregate_id
    run("opportunity.create", account_id=initech, name="O4", amount="8000", close_date="2026-05-15", owner="maria",
        stage="qualification")  # fmt: skip
    # Thu 12 March: O1 won for 12,000 after 8 days, O3 lost, O2 moves to proposal.
    clock.advance(days=8)
    run("opportunity.advance", opportunity_id=o1, stage="negotiation")
    run("opportunity.win", opportunity_id=o1, amount="12000")
    run("opportunity.lose", opportunity_id=o3, reason="price")
    run("opportunity.advance", opportunity_id=o2, stage="proposal")
    # Another tenant's deal must never show up in acme's reports.
    other = run("account.create", tenant="globex", name="Hooli").aggregate_id
    run("opportunity.create", tenant="globex", account_id=other, name="X", amount="999", close_date="2026-05-01", owner="maria")


@pytest.fixture
def projected(app: CrmApplication, run: Run, clock: Clock, reports: Database) -> Database:
    quarter_of_sales(run, clock)
    apply_all(reports, stored_history(app))
    return reports


def test_pipeline_shows_open_deals_by_stage_and_owner_with_weighted_amounts(projected: Database) -> None:
    # Open: O4 qualification 8,000 × 20% = 1,600; O2 proposal 5,000 × 50% = 2,500 (O1 won, O3 lost).
    assert pipeline(projected, "acme") == [
        {"stage": "qualification", "owner": "maria", "currency": "EUR", "opportunities": 1, "amount": D("8000.00"),
         "weighted_amount": D("1600.00")},
        {"stage": "proposal", "owner": "maria", "currency": "EUR", "opportunities": 1, "amount": D("5000.00"),
         "weighted_amount": D("2500.00")},
    ]  # fmt: skip


def test_forecast_by_close_month(projected: Database) -> None:
    # April: O1 won 12,000 and O3 lost (no open); May: O2 2,500 + O4 1,600 weighted, best case 5,000 + 8,000.
    assert forecast(projected, "acme") == [
        {"month": "2026-04", "currency": "EUR", "open_opportunities": 0, "weighted_amount": D("0.00"),
         "best_case_amount": D("12000.00"), "won_amount": D("12000.00")},
        {"month": "2026-05", "currency": "EUR", "open_opportunities": 2, "weighted_amount": D("4100.00"),
         "best_case_amount": D("13000.00"), "won_amount": D("0.00")},
    ]  # fmt: skip


def test_win_rate_per_owner_and_month(projected: Database) -> None:
    # March: maria won O1 (12,000, opened 4 March, won 12 March: 8 days); joe lost O3.
    assert win_rate(projected, "acme") == [
        {"owner": "joe", "month": "2026-03", "currency": "EUR", "won": 0, "lost": 1, "win_rate": D("0.0000"),
         "average_deal_size": None, "average_sales_cycle_days": None},
        {"owner": "maria", "month": "2026-03", "currency": "EUR", "won": 1, "lost": 0, "win_rate": D("1.0000"),
         "average_deal_size": D("12000.00"), "average_sales_cycle_days": D("8.0")},
    ]  # fmt: skip


def test_funnel_per_campaign_and_source(projected: Database) -> None:
    rows = {(r["campaign"], r["source"]): r for r in funnel(projected, "acme")}
    # Spring: L1, L2, L3 worked; L1, L2 qualified and converted; O1 (from L1) won.
    assert {k: rows[("Spring webinar", "webinar")][k] for k in ("leads", "working", "qualified", "converted", "won")} == \
        {"leads": 3, "working": 3, "qualified": 2, "converted": 2, "won": 1}  # fmt: skip
    assert (rows[("Spring webinar", "webinar")]["qualified_rate"], rows[("Spring webinar", "webinar")]["won_rate"]) == (D("0.6667"), D("0.5"))
    # Trade show: L4 worked, qualified, converted, its deal lost; L5 untouched.
    assert {k: rows[("Trade show", "event")][k] for k in ("leads", "working", "converted", "won", "working_rate")} == \
        {"leads": 2, "working": 1, "converted": 1, "won": 0, "working_rate": 0.5}  # fmt: skip
    # No campaign: L6 worked only; nothing qualified, so later rates have no base.
    assert (rows[("(none)", "web")]["working"], rows[("(none)", "web")]["converted_rate"]) == (1, None)
    assert list(rows) == [("(none)", "web"), ("Spring webinar", "webinar"), ("Trade show", "event")]


def test_campaigns_report_cost_per_lead_and_roi(projected: Database) -> None:
    # Spring: cost 3,000 + 1,000 = 4,000 over 3 leads = 1,333.33; won 12,000 → ROI (12,000 − 4,000) / 4,000 = 2.
    # Trade show: 8,000 over 2 leads = 4,000; nothing won → ROI −1.
    assert [(r["campaign"], r["leads"], r["converted"], r["won_revenue"], r["cost"], r["cost_per_lead"], r["roi"])
            for r in campaigns(projected, "acme")] == [
        ("Spring webinar", 3, 2, D("12000.00"), D("4000.00"), D("1333.33"), D("2.0000")),
        ("Trade show", 2, 1, D("0.00"), D("8000.00"), D("4000.00"), D("-1.0000")),
    ]  # fmt: skip


def test_reports_never_show_another_tenants_rows(projected: Database) -> None:
    assert [r["opportunities"] for r in pipeline(projected, "globex")] == [1]
    assert all(r["owner"] != "maria" or r["amount"] != D("999.00") for r in pipeline(projected, "acme"))
    assert campaigns(projected, "globex") == [] and funnel(projected, "globex") == []


def test_a_rebuild_gives_the_same_reports_as_the_incremental_projection(app: CrmApplication, projected: Database) -> None:
    before = [report(projected, "acme") for report in (pipeline, forecast, win_rate, funnel, campaigns)]
    rebuild(projected, history_source(app))
    assert [report(projected, "acme") for report in (pipeline, forecast, win_rate, funnel, campaigns)] == before


def test_rebuilding_one_report_replaces_only_its_tables(app: CrmApplication, projected: Database) -> None:
    from crmflow.projections.reports import REPORTS, accounts

    # Someone damaged a funnel table (leads) and an accounts table by hand.
    with projected.transaction() as cur:
        cur.execute("DELETE FROM rm_leads")
        cur.execute("UPDATE rm_accounts SET name = 'damaged'")

    rebuild(projected, history_source(app), REPORTS["funnel"].tables)  # leads, campaigns, opportunities

    assert sum(r["leads"] for r in funnel(projected, "acme")) == 6, "the funnel's tables are whole again"
    assert {r["account"] for r in accounts(projected, "acme")} == {"damaged"}, "rm_accounts was not rebuilt"
    assert projected.query("SELECT COUNT(*) AS n FROM rm_seen")[0]["n"] > 0, "the live dedupe table stays"
