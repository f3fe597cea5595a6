"""The customer view: ``profile``, ``profitability``, ``segments`` and ``cross-sell`` (docs/reports.md).

Registered with the other reports (projections.reports imports this module). Each account keeps its books
in one currency (aggregates/account.py): every amount here is in the account's currency, and an item in
another (a product, an opportunity, a campaign priced otherwise) is left out of its sums and counted in
``not_in_currency`` instead, never converted. The figures are in projections.account_figures.

Parameters besides ``since``/``until`` (workers.report_inputs passes them from the settings and the deployed
documents; a caller without them gets the documented defaults): ``segmentation``, ``cost_per_case``,
``lifetime_years``, ``now`` (today's date, UTC, starts the next 12 months).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timezone
from decimal import Decimal
from fractions import Fraction
from typing import Any

from crmflow.aggregates.account import DEFAULT_CURRENCY
from crmflow.processes.schema import Segmentation
from crmflow.processes.segmentation import place, shipped_segmentation
from crmflow.projections.account_figures import (
    COST_PER_CASE,
    LIFETIME_YEARS,
    Conversion,
    acquisition_costs,
    lifetime_value,
    renewals,
)
from crmflow.projections.db import Database
from crmflow.projections.figures import iso, money, ratio, weighted
from crmflow.projections.product_report import quantity
from crmflow.projections.reports import OPEN, _between, report

OPEN_CASE = "status NOT IN ('resolved', 'closed')"


def _day(value: object) -> date | None:
    """A date column (DATE or YYYY-MM-DD text) → a date."""
    if value is None or value == "":
        return None
    return (
        value
        if isinstance(value, date) and not isinstance(value, datetime)
        else date.fromisoformat(str(value)[:10])
    )


def _accounts(db: Database, tenant: str, since: str | None, until: str | None) -> list[dict[str, Any]]:
    rows = db.query(
        "SELECT account_id, name, owner, currency, revenue, cost_to_serve, created_at, last_activity_at "
        f"FROM rm_accounts WHERE tenant = %(tenant)s{_between('created_at', since, until)}",
        {"tenant": tenant, "since": since, "until": until},
    )
    # The id breaks ties between two accounts of one name, so that every database and rebuild agree.
    return sorted(rows, key=lambda r: (r["name"] or "", r["account_id"]))


def _usage_periods(db: Database, tenant: str, since: str | None, until: str | None) -> list[dict[str, Any]]:
    return db.query(
        "SELECT account_id, product_code, period_start, period_end, quantity FROM rm_usage "
        f"WHERE tenant = %(tenant)s{_between('period_end', since, until)}",
        {"tenant": tenant, "since": since, "until": until},
    )


def _period(row: dict[str, Any]) -> tuple[str, str]:
    """A usage period's sort key, latest last: by its end, then its start (as the products report orders
    them)."""
    return (str(_day(row["period_end"])), str(_day(row["period_start"])))


def _per_period(rows: Iterable[dict[str, Any]]) -> dict[tuple[str, str], Decimal]:
    """Usage added up per period, exactly."""
    out: dict[tuple[str, str], Decimal] = {}
    for u in rows:
        out[_period(u)] = out.get(_period(u), Decimal(0)) + quantity(u["quantity"])
    return out


def _label(period: tuple[str, str]) -> str:
    return f"{period[1]}..{period[0]}"


# The profile.


def _last_activity(db: Database, tenant: str) -> dict[str, str]:
    """Per account, the latest time an activity about it, its contacts, opportunities or cases was created,
    completed or cancelled (rm_accounts.last_activity_at already follows its own, its deals' and cases'
    events)."""
    owner_of = {}
    for table, key in (("opportunities", "opportunity_id"), ("cases", "case_id"), ("contacts", "contact_id")):
        for r in db.query(
            f"SELECT {key} AS id, account_id FROM rm_{table} WHERE tenant = %(tenant)s", {"tenant": tenant}
        ):
            owner_of[str(r["id"])] = r["account_id"]
    latest: dict[str, str] = {}
    rows = db.query(
        "SELECT related_kind, related_id, created_at, completed_at, cancelled_at FROM rm_activities "
        "WHERE tenant = %(tenant)s",
        {"tenant": tenant},
    )
    for r in rows:
        account = (
            str(r["related_id"]) if r["related_kind"] == "account" else owner_of.get(str(r["related_id"]))
        )
        if account is None:
            continue  # about a lead: no account yet
        for moment in (iso(r["created_at"]), iso(r["completed_at"]), iso(r["cancelled_at"])):
            if moment and moment > latest.get(account, ""):
                latest[account] = moment
    return latest


def _counts(db: Database, tenant: str, sql: str) -> dict[str, int]:
    return {r["account_id"]: int(r["n"]) for r in db.query(sql, {"tenant": tenant})}


@report(
    "profile",
    "per account and product it owns or uses: quantity owned, next renewal, usage per period and its trend, "
    "last activity, open cases, contacts",
    (
        "account",
        "owner",
        "product",
        "quantity",
        "renewal_date",
        "usage_by_period",
        "latest_period",
        "latest_usage",
        "previous_usage",
        "usage_trend",
        "last_activity_at",
        "open_cases",
        "contacts",
    ),
)
def profile(
    db: Database, tenant: str, since: str | None = None, until: str | None = None
) -> list[dict[str, Any]]:
    """One row per account and product code it owns (assets) or reported usage of; an account with neither has
    one row with product NULL. ``since``/``until`` choose the usage periods shown, by their end."""
    assets: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for a in db.query(
        "SELECT account_id, product_code, quantity, renewal_date FROM rm_assets WHERE tenant = %(tenant)s",
        {"tenant": tenant},
    ):
        assets.setdefault((a["account_id"], a["product_code"]), []).append(a)
    usage: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for u in _usage_periods(db, tenant, since, until):
        usage.setdefault((u["account_id"], u["product_code"]), []).append(u)
    open_cases = _counts(
        db,
        tenant,
        "SELECT account_id, COUNT(*) AS n FROM rm_cases WHERE tenant = %(tenant)s "
        f"AND {OPEN_CASE} GROUP BY account_id",
    )
    contacts = _counts(
        db,
        tenant,
        "SELECT account_id, COUNT(*) AS n FROM rm_contacts WHERE tenant = %(tenant)s GROUP BY account_id",
    )
    activity = _last_activity(db, tenant)
    codes_of: dict[str, set[str]] = {}  # indexed once: not a scan of every asset for every account
    for aid, code in [*assets, *usage]:
        codes_of.setdefault(aid, set()).add(code)
    out = []
    for account in _accounts(db, tenant, None, None):
        aid = account["account_id"]
        codes = sorted(codes_of.get(aid, ()))
        last = max(filter(None, (iso(account["last_activity_at"]), activity.get(aid))), default=None)
        common = {
            "account": account["name"],
            "owner": account["owner"],
            "last_activity_at": last,
            "open_cases": open_cases.get(aid, 0),
            "contacts": contacts.get(aid, 0),
        }
        if not codes:
            out.append(
                {
                    **common,
                    "product": None,
                    "quantity": None,
                    "renewal_date": None,
                    "usage_by_period": None,
                    "latest_period": None,
                    "latest_usage": None,
                    "previous_usage": None,
                    "usage_trend": None,
                }
            )
        for code in codes:
            owned = assets.get((aid, code), [])
            renewing = sorted(d for d in (_day(a["renewal_date"]) for a in owned) if d)
            periods = sorted(_per_period(usage.get((aid, code), [])).items())
            latest = periods[-1] if periods else None
            previous = periods[-2] if len(periods) > 1 else None
            out.append(
                {
                    **common,
                    "product": code,
                    "quantity": sum((quantity(a["quantity"]) for a in owned), Decimal(0)) if owned else None,
                    "renewal_date": renewing[0].isoformat() if renewing else None,
                    "usage_by_period": "; ".join(f"{_label(p)} {q}" for p, q in periods) or None,
                    "latest_period": _label(latest[0]) if latest else None,
                    "latest_usage": latest[1] if latest else None,
                    "previous_usage": previous[1] if previous else None,
                    "usage_trend": ratio(latest[1], previous[1]) if latest and previous else None,
                }
            )
    return out


# Profitability.


def profitability_rows(
    db: Database,
    tenant: str,
    since: str | None = None,
    until: str | None = None,
    *,
    segmentation: Segmentation | None = None,
    cost_per_case: Decimal | None = None,
    lifetime_years: Decimal | None = None,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """Every account's figures, with its account_id (the segments report and `segments apply` need it)."""
    segments = segmentation or shipped_segmentation()
    per_case = COST_PER_CASE if cost_per_case is None else cost_per_case
    years = LIFETIME_YEARS if lifetime_years is None else lifetime_years
    today = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).date()
    accounts = _accounts(db, tenant, since, until)
    currency_of = {a["account_id"]: a["currency"] or DEFAULT_CURRENCY for a in accounts}
    products = {
        p["code"]: p
        for p in db.query(
            "SELECT code, list_price, currency FROM rm_products WHERE tenant = %(tenant)s", {"tenant": tenant}
        )
    }
    expected: dict[str, Decimal] = {}
    left_out: dict[str, int] = {}
    for a in db.query(
        "SELECT account_id, product_code, quantity, term_months, renewal_date FROM rm_assets "
        "WHERE tenant = %(tenant)s AND recurring = 1",
        {"tenant": tenant},
    ):
        aid, product = a["account_id"], products.get(a["product_code"])
        times = renewals(_day(a["renewal_date"]), a["term_months"], today)
        if aid not in currency_of or product is None or not times:
            continue
        if product["currency"] != currency_of[aid]:
            left_out[aid] = left_out.get(aid, 0) + 1
            continue
        price = quantity(product["list_price"]) * quantity(a["quantity"]) * times
        expected[aid] = expected.get(aid, Decimal(0)) + price
    pipeline: dict[str, Decimal] = {}
    for o in db.query(
        f"SELECT account_id, amount, currency, probability FROM rm_opportunities "
        f"WHERE tenant = %(tenant)s AND {OPEN}",
        {"tenant": tenant},
    ):
        aid = o["account_id"]
        if aid not in currency_of:
            continue
        if o["currency"] != currency_of[aid]:
            left_out[aid] = left_out.get(aid, 0) + 1
            continue
        pipeline[aid] = pipeline.get(aid, Decimal(0)) + quantity(o["amount"]) * int(o["probability"] or 0)
    campaigns = {
        c["campaign_id"]: (money(c["actual_cost"]), c["currency"])
        for c in db.query(
            "SELECT campaign_id, actual_cost, currency FROM rm_campaigns WHERE tenant = %(tenant)s",
            {"tenant": tenant},
        )
    }
    conversions = [
        Conversion(r["campaign_id"], r["account_id"])
        for r in db.query(
            "SELECT campaign_id, account_id FROM rm_leads WHERE tenant = %(tenant)s AND status = 'converted' "
            "AND campaign_id IS NOT NULL AND account_id IS NOT NULL",
            {"tenant": tenant},
        )
    ]
    # Every account of the tenant shares a campaign's cost, also one outside since/until.
    all_currencies = {
        r["account_id"]: r["currency"] or DEFAULT_CURRENCY for r in _accounts(db, tenant, None, None)
    }
    acquisition, other_campaigns = acquisition_costs(conversions, campaigns, all_currencies)
    cases = _counts(
        db,
        tenant,
        "SELECT account_id, COUNT(*) AS n FROM rm_cases WHERE tenant = %(tenant)s GROUP BY account_id",
    )
    usage: dict[str, list[dict[str, Any]]] = {}
    for u in _usage_periods(db, tenant, None, None):
        usage.setdefault(u["account_id"], []).append(u)
    out = []
    for account in accounts:
        aid = account["account_id"]
        revenue, costs = money(account["revenue"]), money(account["cost_to_serve"])
        renewal = money(expected.get(aid))
        weighted_pipeline = weighted(pipeline.get(aid))
        expected_revenue = renewal + weighted_pipeline
        case_cost = money(per_case * cases.get(aid, 0))
        cost_to_serve = costs + case_cost
        acquired = acquisition.get(aid, money(0))
        profit = revenue - acquired - cost_to_serve
        periods = _per_period(usage.get(aid, []))
        latest_usage = periods[max(periods)] if periods else None
        ltv = lifetime_value(revenue, expected_revenue, years)
        placed = place(
            segments,
            {
                "revenue": revenue,
                "expected_revenue": expected_revenue,
                "profit": profit,
                "margin": ratio(profit, revenue),
                "lifetime_value": ltv,
                "usage": latest_usage,
            },
        )
        out.append(
            {
                "account": account["name"],
                "account_id": aid,
                "currency": currency_of[aid],
                "revenue": revenue,
                "expected_renewals": renewal,
                "weighted_pipeline": weighted_pipeline,
                "expected_revenue": expected_revenue,
                "acquisition_cost": acquired,
                "recorded_costs": costs,
                "cases": cases.get(aid, 0),
                "case_cost": case_cost,
                "cost_to_serve": cost_to_serve,
                "profit": profit,
                "margin": ratio(profit, revenue),
                "lifetime_value": ltv,
                "usage": latest_usage,
                "segment": placed.segment,
                "usage_tier": placed.usage_tier,
                "why": placed.why,
                "not_in_currency": left_out.get(aid, 0) + other_campaigns.get(aid, 0),
            }
        )
    return out


@report(
    "profitability",
    "per account, in its currency: revenue to date, expected revenue (renewals in the next 12 months "
    "+ weighted pipeline), acquisition cost, cost to serve, profit, margin, lifetime value, segment and "
    "usage tier, and why",
    (
        "account",
        "currency",
        "revenue",
        "expected_renewals",
        "weighted_pipeline",
        "expected_revenue",
        "acquisition_cost",
        "recorded_costs",
        "cases",
        "case_cost",
        "cost_to_serve",
        "profit",
        "margin",
        "lifetime_value",
        "usage",
        "segment",
        "usage_tier",
        "why",
        "not_in_currency",
    ),
)
def profitability(
    db: Database,
    tenant: str,
    since: str | None = None,
    until: str | None = None,
    *,
    segmentation: Segmentation | None = None,
    cost_per_case: Decimal | None = None,
    lifetime_years: Decimal | None = None,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """``since``/``until`` choose the accounts by when they were created (a cohort)."""
    rows = profitability_rows(
        db,
        tenant,
        since,
        until,
        segmentation=segmentation,
        cost_per_case=cost_per_case,
        lifetime_years=lifetime_years,
        now=now,
    )
    rows.sort(key=lambda r: (-r["profit"], r["account"] or "", r["account_id"]))
    for row in rows:
        del row["account_id"]
    return rows


@report(
    "segments",
    "per segment, usage tier and currency: accounts, revenue, profit (the tenant's segmentation)",
    ("segment", "usage_tier", "currency", "accounts", "revenue", "profit"),
)
def segments(
    db: Database,
    tenant: str,
    since: str | None = None,
    until: str | None = None,
    *,
    segmentation: Segmentation | None = None,
    cost_per_case: Decimal | None = None,
    lifetime_years: Decimal | None = None,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """The profitability rows added up; segments in the document's order, then tiers in theirs."""
    chosen = segmentation or shipped_segmentation()
    rows = profitability_rows(
        db,
        tenant,
        since,
        until,
        segmentation=chosen,
        cost_per_case=cost_per_case,
        lifetime_years=lifetime_years,
        now=now,
    )
    groups: dict[tuple[str, str | None, str], dict[str, Any]] = {}
    for r in rows:
        group = groups.setdefault(
            (r["segment"], r["usage_tier"], r["currency"]),
            {
                "segment": r["segment"],
                "usage_tier": r["usage_tier"],
                "currency": r["currency"],
                "accounts": 0,
                "revenue": money(0),
                "profit": money(0),
            },
        )
        group["accounts"] += 1
        group["revenue"] += r["revenue"]
        group["profit"] += r["profit"]
    segment_order = [s.name for s in chosen.segments]
    tier_order = [t.name for t in chosen.usage_tiers]

    def order(key: tuple[str, str | None, str]) -> tuple[int, int, str]:
        tier = tier_order.index(key[1]) if key[1] in tier_order else len(tier_order)
        return (segment_order.index(key[0]), tier, key[2])

    return [groups[key] for key in sorted(groups, key=order)]


@report(
    "cross-sell",
    "per ordered product pair (A, B): accounts owning A, owning both, support, confidence, and the accounts "
    "that own A and not B, highest confidence first",
    ("product", "also_product", "owners", "both", "support", "confidence", "candidates", "accounts"),
)
def cross_sell(
    db: Database, tenant: str, since: str | None = None, until: str | None = None
) -> list[dict[str, Any]]:
    """Owning a product is holding an asset of it. support = accounts owning both ÷ accounts of the tenant;
    confidence = accounts owning both ÷ accounts owning A. Pairs that no account owns together, or whose every
    owner of A owns B already, are left out: nothing to suggest. ``since``/``until`` choose the assets by when
    they were acquired."""
    names = {a["account_id"]: a["name"] for a in _accounts(db, tenant, None, None)}
    owned: dict[str, set[str]] = {}
    for a in db.query(
        f"SELECT account_id, product_code FROM rm_assets WHERE tenant = %(tenant)s"
        f"{_between('acquired_at', since, until)}",
        {"tenant": tenant, "since": since, "until": until},
    ):
        if a["account_id"] in names:
            owned.setdefault(a["product_code"], set()).add(a["account_id"])
    out = []
    for first, owners in owned.items():
        for second, others in owned.items():
            both = owners & others
            candidates = owners - others
            if first == second or not both or not candidates:
                continue
            out.append(
                {
                    "product": first,
                    "also_product": second,
                    "owners": len(owners),
                    "both": len(both),
                    "support": ratio(len(both), len(names)),
                    "confidence": ratio(len(both), len(owners)),
                    "candidates": len(candidates),
                    "accounts": ", ".join(sorted(names[a] or a for a in candidates)),
                }
            )
    # Ranked by the exact fractions, not the shown four places: 2/3 before 6667/10001.
    return sorted(
        out, key=lambda r: (-Fraction(r["both"], r["owners"]), -r["both"], r["product"], r["also_product"])
    )
