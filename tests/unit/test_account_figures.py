"""The arithmetic of profitability: renewals in the next 12 months, campaigns' costs shared by customers."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

from crmflow.projections.account_figures import Conversion, acquisition_costs, lifetime_value, renewals

TODAY = date(2026, 3, 2)


def test_renewals_are_counted_in_the_twelve_months_from_today_the_last_day_excluded() -> None:
    assert renewals(date(2026, 4, 2), 1, TODAY) == 11  # 2 Apr 2026 … 2 Feb 2027; 2 Mar 2027 is outside
    assert renewals(date(2026, 3, 2), 1, TODAY) == 12  # today itself counts
    assert renewals(date(2027, 3, 2), 12, TODAY) == 0  # exactly 12 months away: outside
    assert renewals(date(2027, 3, 1), 12, TODAY) == 1
    # A renewal date already past: the subscription runs on, its later renewals count: 2 Mar (today), 2 Jun,
    # 2 Sep, 2 Dec; 2 Mar 2027 is outside.
    assert renewals(date(2025, 12, 2), 3, TODAY) == 4
    assert renewals(None, None, TODAY) == 0 and renewals(date(2026, 5, 1), None, TODAY) == 0  # one-off


def test_a_month_end_renewal_keeps_its_day_where_the_month_has_it() -> None:
    # 31 Jan + 1, 2, 3 months from the first date: 28 Feb, 31 Mar, 30 Apr (never drifting to the 28th).
    assert renewals(date(2026, 1, 31), 1, date(2026, 3, 31)) == 12
    assert renewals(date(2026, 1, 31), 1, date(2026, 4, 1)) == 12  # 30 Apr 2026 … 31 Mar 2027


def test_a_campaigns_cost_is_shared_by_the_accounts_it_produced_and_a_campaign_without_one_by_none() -> None:
    conversions = [
        Conversion("web", "a"),
        Conversion("web", "a"),
        Conversion("web", "b"),
        Conversion("web", "c"),
        Conversion("fair", "a"),
        Conversion("usd", "b"),
    ]
    costs = {
        "web": (D("100.00"), "EUR"),
        "fair": (D("0.01"), "EUR"),
        "usd": (D("50.00"), "USD"),
        "empty": (D("999.00"), "EUR"),
    }
    shares, other = acquisition_costs(conversions, costs, {"a": "EUR", "b": "EUR", "c": "EUR"})
    # a: 100.00 / 3 + 0.01 = 33.343… → 33.34 (added, then rounded once); b, c: 33.333… → 33.33.
    assert shares == {"a": D("33.34"), "b": D("33.33"), "c": D("33.33")}
    assert other == {"b": 1}, "the USD campaign is not added to b's euros, but counted"
    # "empty" converted nobody: its 999.00 is nobody's.


def test_the_lifetime_value_is_revenue_plus_the_expected_years_of_expected_revenue() -> None:
    assert lifetime_value(D("1234.56"), D("1266.73"), D("2")) == D("3768.02")
    assert lifetime_value(D("0"), D("0.005"), D("1")) == D("0.01")  # rounded half up, once
