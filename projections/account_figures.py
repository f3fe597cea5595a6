"""The arithmetic of an account's profitability, apart from SQL: renewals in the next 12 months, the share
of a campaign's cost each customer it produced carries, the lifetime value (docs/reports.md, "Profitability").

Every figure is a Decimal; money is rounded half up to the cent once, after adding (projections.figures).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from crmflow.aggregates.lines import add_months
from crmflow.projections.figures import money

# The defaults of CRMFLOW_COST_PER_CASE and CRMFLOW_EXPECTED_LIFETIME_YEARS (workers.config), used when a
# report runs without settings (a test, the demo).
COST_PER_CASE = Decimal("25.00")
LIFETIME_YEARS = Decimal("3")
HORIZON_MONTHS = 12


def renewals(renewal_date: date | None, term_months: int | None, today: date) -> int:
    """How many renewals fall in [today, today + 12 months): renewal_date + k × term_months, k = 0, 1, …

    A renewal date already past is a subscription that runs on: its next renewals after today still count.
    A one-off asset (no renewal date or term) renews never."""
    if renewal_date is None or not term_months or term_months <= 0:
        return 0
    end = add_months(today, HORIZON_MONTHS)
    count, k = 0, 0
    while True:
        due = add_months(
            renewal_date, k * term_months
        )  # from the first date: 31 Jan + 1 month is 28 Feb, + 2: 31 Mar
        if due >= end:
            return count
        if due >= today:
            count += 1
        k += 1


@dataclass(frozen=True)
class Conversion:
    """A lead of a campaign converted into an account."""

    campaign_id: str
    account_id: str


def acquisition_costs(
    conversions: Iterable[Conversion],
    costs: dict[str, tuple[Decimal, str]],
    currencies: dict[str, str | None],
) -> tuple[dict[str, Decimal], dict[str, int]]:
    """Each account's share of the campaigns that produced it, in its currency; and how many campaigns in
    another currency were left out of it.

    A campaign's actual cost is shared equally by the distinct accounts its converted leads became (two leads
    of one campaign converted into the same account make one customer). A campaign that produced no account
    spends on nobody here. The shares are added unrounded and the sum rounded once, to the cent.
    """
    produced: dict[str, set[str]] = {}
    for c in conversions:
        if c.campaign_id in costs:
            produced.setdefault(c.campaign_id, set()).add(c.account_id)
    shares: dict[str, Decimal] = {}
    other: dict[str, int] = {}
    for campaign, accounts in produced.items():
        cost, currency = costs[campaign]
        for account in accounts:
            if currencies.get(account) not in (None, currency):
                other[account] = other.get(account, 0) + 1
                continue
            shares[account] = shares.get(account, Decimal(0)) + cost / len(accounts)
    return {account: money(share) for account, share in shares.items()}, other


def lifetime_value(revenue: Decimal, expected_revenue: Decimal, years: Decimal) -> Decimal:
    """Revenue to date plus the next 12 months' expected revenue for each expected year of lifetime, in
    cents."""
    return money(revenue + expected_revenue * years)
