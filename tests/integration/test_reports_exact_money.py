"""Every money figure is exact to the cent, never a sum of two currencies, on SQLite and PostgreSQL.

The amounts are chosen where floating point goes wrong: 60,000 + 39,999.99 + 0.01 is
99,999.99999999999 as floats, 0.10 + 0.20 + 1,500.10 is 1,500.3999999999999.
"""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

from crmflow.aggregates.application import CrmApplication
from crmflow.aggregates.errors import InvalidValueError
from crmflow.projections.db import Database
from crmflow.projections.projector import apply_all
from crmflow.projections.reports import accounts, campaigns, forecast, pipeline, win_rate
from crmflow.workers.history import stored_history
from tests.conftest import Clock, Run


def opened(run: Run, account: Any, name: str, amount: str, close: str = "2026-05-29", **more: Any) -> Any:
    return run("opportunity.create", account_id=account, name=name, amount=amount, close_date=close, owner="maria",
               **more).aggregate_id  # fmt: skip


@pytest.fixture
def books(app: CrmApplication, run: Run, clock: Clock, reports: Database) -> Database:
    """One account paid to the boundary, deals in cents, a campaign whose ROI is exactly 1."""
    werke = run("account.create", name="Werke").aggregate_id
    for amount in ("60000", "39999.99", "0.01"):
        run("account.record_payment", account_id=werke, invoice_id=f"INV-{amount}", amount=amount, paid_on="2026-03-02")
    for amount in ("0.10", "0.20"):
        run("account.record_cost", account_id=werke, amount=amount)
    # Three open deals in prospecting (10 %), one in USD.
    for name, amount in (("dime", "0.10"), ("two dimes", "0.20"), ("fleet", "1500.10")):
        opened(run, werke, name, amount)
    opened(run, werke, "export", "999.99", currency="USD")
    # Three won deals of 33.33 + 33.33 + 33.34 = 100.00 from the spring campaign (cost 0.10 + 0.20 = 0.30).
    spring = run("campaign.create", name="Spring", channel="webinar", budget="1").aggregate_id
    for amount in ("0.10", "0.20"):
        run("campaign.record_cost", campaign_id=spring, amount=amount)
    for i, amount in enumerate(("33.33", "33.33", "0.20")):
        lead = run("lead.create", name=f"L{i}", company="Werke", campaign_id=spring).aggregate_id
        run("lead.work", lead_id=lead)
        run("lead.qualify", lead_id=lead)
        deal = next(e["subject"] for e in run("lead.convert", lead_id=lead, account_id=werke, opportunity={
            "name": f"won {i}", "amount": amount, "close_date": "2026-04-30"}).events if e["type"] == "OpportunityCreated")
        run("opportunity.win", opportunity_id=deal, amount="33.34" if amount == "0.20" else amount)
    # A deal of the campaign won in another currency: not added to its euros.
    lead = run("lead.create", name="L9", company="Werke", campaign_id=spring).aggregate_id
    run("lead.work", lead_id=lead), run("lead.qualify", lead_id=lead)
    usd = next(e["subject"] for e in run("lead.convert", lead_id=lead, account_id=werke, opportunity={
        "name": "usd", "amount": "500", "currency": "USD", "close_date": "2026-04-30"}).events
        if e["type"] == "OpportunityCreated")  # fmt: skip
    run("opportunity.win", opportunity_id=usd)
    apply_all(reports, stored_history(app))
    return reports


def test_an_account_paid_exactly_one_hundred_thousand_is_strategic(books: Database) -> None:
    # 60,000 + 39,999.99 + 0.01 = 100,000.00 (≥ 100,000: strategic); cost 0.10 + 0.20 = 0.30;
    # profit 100,000.00 − 0.30 = 99,999.70.
    [werke] = accounts(books, "acme")
    assert (werke["currency"], werke["revenue"], werke["cost_to_serve"], werke["profit"], werke["segment"]) == (
        "EUR", D("100000.00"), D("0.30"), D("99999.70"), "strategic")
    assert str(werke["revenue"]) == "100000.00"


def test_the_pipeline_adds_cents_exactly_and_keeps_dollars_apart(books: Database) -> None:
    # EUR: 0.10 + 0.20 + 1,500.10 = 1,500.40; weighted 10 % of the sum = 150.04.
    # USD: 999.99, weighted 99.999 → 100.00 (rounded half-up once, after summing).
    assert [(r["currency"], r["opportunities"], r["amount"], r["weighted_amount"]) for r in pipeline(books, "acme")] == [
        ("EUR", 3, D("1500.40"), D("150.04")), ("USD", 1, D("999.99"), D("100.00"))]  # fmt: skip


def test_the_forecast_groups_each_month_by_currency(books: Database) -> None:
    rows = {(r["month"], r["currency"]): r for r in forecast(books, "acme")}
    # April EUR: won 33.33 + 33.33 + 33.34 = 100.00; April USD: the 500 deal; May: the open deals above.
    assert rows[("2026-04", "EUR")]["won_amount"] == D("100.00")
    assert rows[("2026-04", "USD")]["won_amount"] == D("500.00")
    assert (rows[("2026-05", "EUR")]["best_case_amount"], rows[("2026-05", "EUR")]["weighted_amount"]) == (
        D("1500.40"), D("150.04"))


def test_the_average_deal_size_is_an_exact_mean(books: Database) -> None:
    # maria won 33.33 + 33.33 + 33.34 = 100.00 in EUR over 3 deals: 33.33 (33.333… rounded half-up).
    [eur, usd] = win_rate(books, "acme")
    assert (eur["currency"], eur["won"], eur["average_deal_size"], eur["win_rate"]) == ("EUR", 3, D("33.33"), D("1"))
    assert (usd["currency"], usd["average_deal_size"]) == ("USD", D("500.00"))


def test_campaign_cost_per_lead_and_roi_are_exact(books: Database) -> None:
    # Cost 0.10 + 0.20 = 0.30 over 4 leads = 0.075 → 0.08; won in EUR 100.00; ROI (100.00 − 0.30) / 0.30 = 332.3333.
    # The USD deal is counted apart, not added to the euros.
    [spring] = campaigns(books, "acme")
    assert (spring["currency"], spring["cost"], spring["leads"], spring["cost_per_lead"], spring["won_revenue"],
            spring["roi"], spring["won_in_other_currencies"]) == (
        "EUR", D("0.30"), 4, D("0.08"), D("100.00"), D("332.3333"), 1)  # fmt: skip


def test_no_report_figure_is_a_float(books: Database) -> None:
    for report in (accounts, campaigns, forecast, pipeline, win_rate):
        for row in report(books, "acme"):
            assert not [column for column, value in row.items() if isinstance(value, float)], report.__name__


def test_a_payment_in_another_currency_than_the_accounts_is_refused(run: Run) -> None:
    account = run("account.create", name="Werke", currency="EUR").aggregate_id
    with pytest.raises(InvalidValueError, match="keeps its books in EUR: a payment in USD is not accepted"):
        run("account.record_payment", account_id=account, invoice_id="I", amount="10", currency="USD",
            paid_on="2026-03-02")  # fmt: skip
    with pytest.raises(InvalidValueError, match="a cost in GBP is not accepted"):
        run("account.record_cost", account_id=account, amount="10", currency="GBP")


def test_an_account_without_a_currency_takes_its_first_payments(app: CrmApplication, run: Run, reports: Database) -> None:
    account = run("account.create", name="Globex").aggregate_id
    run("account.record_payment", account_id=account, invoice_id="I", amount="10", currency="USD", paid_on="2026-03-02")
    run("account.record_cost", account_id=account, amount="2.50")  # no currency given: the account's
    with pytest.raises(InvalidValueError, match="keeps its books in USD"):
        run("account.record_payment", account_id=account, invoice_id="J", amount="10", currency="EUR",
            paid_on="2026-03-02")  # fmt: skip
    apply_all(reports, stored_history(app))
    [row] = accounts(reports, "acme")
    assert (row["currency"], row["revenue"], row["cost_to_serve"], row["profit"]) == (
        "USD", D("10.00"), D("2.50"), D("7.50"))
