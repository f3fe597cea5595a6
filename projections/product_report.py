"""The ``products`` report: per product of the price list, what is being sold, what is owned, what is used.

Registered with the other reports (projections.reports imports this module).
Quantities are exact decimals as they were given (a quantity of 2.5 stays 2.5);
amounts are money, summed exactly in the database and shown in cents, in the
product's currency (a line is always in its product's currency: aggregates/opportunity.py).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from crmflow.projections.db import Database
from crmflow.projections.figures import money
from crmflow.projections.reports import OPEN, _between, report


def quantity(value: object) -> Decimal:
    """A quantity, price or sum of them as the database returns it (NUMERIC, decimal text) → the exact Decimal.

    Both databases add decimals exactly and keep the larger scale (2.50 + 3 = 5.50), so they agree."""
    return Decimal(0 if value is None else str(value))


@report(
    "products",
    "per product: active, list price, open pipeline (lines, quantity, amount), assets owned, usage of the last period",
    ("code", "name", "family", "active", "currency", "list_price", "open_lines", "open_quantity", "open_amount",
     "assets", "asset_quantity", "last_usage_period", "last_usage_quantity"),
)  # fmt: skip
def products(
    db: Database, tenant: str, since: str | None = None, until: str | None = None
) -> list[dict[str, Any]]:
    """The open pipeline counts lines on open opportunities; the last usage period is the latest period a usage
    report of the product named (by its end, then its start), with the usage of every account in it added up.
    ``since``/``until`` choose the usage reports considered, by their period's end."""
    open_lines = ("FROM rm_opportunity_lines l JOIN rm_opportunities o ON o.opportunity_id = l.opportunity_id "
                  f"AND o.tenant = l.tenant WHERE l.tenant = p.tenant AND l.product_code = p.code AND o.{OPEN}")  # fmt: skip
    assets = "FROM rm_assets a WHERE a.tenant = p.tenant AND a.product_code = p.code"
    rows = db.query(
        "SELECT p.code, p.name, p.family, p.active, p.currency, p.list_price, "
        f"(SELECT COUNT(*) {open_lines}) AS open_lines, "
        f"(SELECT {db.money_sum('l.quantity')} {open_lines}) AS open_quantity, "
        f"(SELECT {db.money_sum('l.amount')} {open_lines}) AS open_amount, "
        f"(SELECT COUNT(*) {assets}) AS assets, (SELECT {db.money_sum('a.quantity')} {assets}) AS asset_quantity "
        "FROM rm_products p WHERE p.tenant = %(tenant)s ORDER BY p.code",
        {"tenant": tenant},
    )
    usage = db.query(
        "SELECT product_code, period_start, period_end, quantity FROM rm_usage "
        f"WHERE tenant = %(tenant)s{_between('period_end', since, until)}",
        {"tenant": tenant, "since": since, "until": until},
    )
    last: dict[str, tuple[str, str]] = {}
    for u in usage:
        period = (str(u["period_end"]), str(u["period_start"]))
        last[u["product_code"]] = max(last.get(u["product_code"], period), period)
    used: dict[str, Decimal] = {}
    for u in usage:
        if (str(u["period_end"]), str(u["period_start"])) == last[u["product_code"]]:
            used[u["product_code"]] = used.get(u["product_code"], Decimal(0)) + quantity(u["quantity"])
    for r in rows:
        period = last.get(r["code"])
        r.update(
            active=bool(r["active"]), list_price=quantity(r["list_price"]), open_quantity=quantity(r["open_quantity"]),
            open_amount=money(r["open_amount"]), asset_quantity=quantity(r["asset_quantity"]),
            last_usage_period=f"{period[1]}..{period[0]}" if period else None,
            last_usage_quantity=used.get(r["code"]),
        )  # fmt: skip
    return rows
