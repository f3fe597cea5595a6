"""The reports: each a query over the read-model tables, per tenant, as plain rows.

`crmflow query NAME` and `GET /v1/reports/NAME` print these. Medians and
percentiles are computed here, not in SQL, so SQLite and PostgreSQL agree.
Every query filters by tenant, and every join and sub-query matches the tenant as well as the id:
no report ever returns or counts another tenant's rows, even one that names this tenant's ids.

Figures are exact (projections.figures): money is summed in the database as
NUMERIC (PostgreSQL) or with ``decimal_sum`` (SQLite) and comes out a Decimal
in cents. Amounts of different currencies are never added: every money report
groups by currency.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from crmflow.projections.db import Database
from crmflow.projections.figures import (
    CENT,
    TENTH,
    hours,
    instant,
    iso,
    mean,
    money,
    percentile,
    ratio,
    weighted,
)
from crmflow.projections.sla import sla_figures

STAGE_ORDER = (
    "CASE stage WHEN 'prospecting' THEN 1 WHEN 'qualification' THEN 2 WHEN 'proposal' THEN 3 "
    "WHEN 'negotiation' THEN 4 ELSE 5 END"
)
OPEN = "stage NOT IN ('closed_won', 'closed_lost')"
# A lead merged into another is the same person as that one: the lead reports count the survivor only.
NOT_MERGED = "l.status <> 'merged'"


@dataclass(frozen=True)
class Report:
    name: str
    summary: str
    columns: tuple[str, ...]
    run: Callable[..., list[dict[str, Any]]]
    tables: tuple[str, ...] = ()  # the read-model tables it reads (what `projections rebuild NAME` rebuilds)


REPORTS: dict[str, Report] = {}
READS = {
    "pipeline": ("opportunities",),
    "forecast": ("opportunities",),
    "win-rate": ("opportunities",),
    "funnel": ("leads", "campaigns", "opportunities"),
    "campaigns": ("campaigns", "leads", "opportunities"),
    "sla": ("cases",),
    "faq": ("cases", "articles"),
    "accounts": ("accounts", "cases"),
    "instances": ("instances",),
    # Duplicates.
    "duplicates": ("duplicates", "leads"),
    # Activities.
    "activities": ("activities", "lead_qualifications"),
    "products": ("products", "opportunity_lines", "opportunities", "assets", "usage"),
    # The customer view (projections.account_reports).
    "profile": ("accounts", "assets", "usage", "cases", "contacts", "activities", "opportunities"),
    "profitability": ("accounts", "assets", "products", "opportunities", "campaigns", "leads", "cases", "usage"),
    "segments": ("accounts", "assets", "products", "opportunities", "campaigns", "leads", "cases", "usage"),
    "cross-sell": ("accounts", "assets"),
}


def report(
    name: str, summary: str, columns: tuple[str, ...]
) -> Callable[[Callable[..., list[dict[str, Any]]]], Any]:
    def register(run: Callable[..., list[dict[str, Any]]]) -> Any:
        REPORTS[name] = Report(name, summary, columns, run, READS[name])
        return run

    return register


def _between(column: str, since: str | None, until: str | None) -> str:
    clause = ""
    if since:
        clause += f" AND {column} >= %(since)s"
    if until:
        clause += f" AND {column} < %(until)s"
    return clause


@report(
    "pipeline",
    "open opportunities by stage, owner and currency: count, amount, weighted amount",
    ("stage", "owner", "currency", "opportunities", "amount", "weighted_amount"),
)
def pipeline(
    db: Database, tenant: str, since: str | None = None, until: str | None = None
) -> list[dict[str, Any]]:
    rows = db.query(
        f"SELECT stage, COALESCE(owner, '(none)') AS owner, currency, COUNT(*) AS opportunities, "
        f"{db.money_sum('amount')} AS amount, {db.money_sum('amount', 'probability')} AS weighted_amount "
        f"FROM rm_opportunities WHERE tenant = %(tenant)s AND {OPEN}{_between('close_date', since, until)} "
        f"GROUP BY stage, COALESCE(owner, '(none)'), currency ORDER BY MIN({STAGE_ORDER}), owner, currency",
        {"tenant": tenant, "since": since, "until": until},
    )
    for r in rows:
        r.update(amount=money(r["amount"]), weighted_amount=weighted(r["weighted_amount"]))
    return rows


@report(
    "forecast",
    "by expected close month and currency: weighted (open), best case (open + won) and won amount",
    ("month", "currency", "open_opportunities", "weighted_amount", "best_case_amount", "won_amount"),
)
def forecast(
    db: Database, tenant: str, since: str | None = None, until: str | None = None
) -> list[dict[str, Any]]:
    month = db.month("close_date")
    open_amount = f"CASE WHEN {OPEN} THEN amount END"
    best_case = "CASE WHEN stage <> 'closed_lost' THEN amount END"
    won = "CASE WHEN stage = 'closed_won' THEN amount END"
    rows = db.query(
        f"SELECT {month} AS month, currency, "
        f"SUM(CASE WHEN {OPEN} THEN 1 ELSE 0 END) AS open_opportunities, "
        f"{db.money_sum(open_amount, 'probability')} AS weighted_amount, "
        f"{db.money_sum(best_case)} AS best_case_amount, {db.money_sum(won)} AS won_amount "
        f"FROM rm_opportunities WHERE tenant = %(tenant)s{_between('close_date', since, until)} "
        f"GROUP BY {month}, currency ORDER BY month, currency",
        {"tenant": tenant, "since": since, "until": until},
    )
    for r in rows:
        r.update(weighted_amount=weighted(r["weighted_amount"]), best_case_amount=money(r["best_case_amount"]),
                 won_amount=money(r["won_amount"]))  # fmt: skip
    return rows


@report(
    "win-rate",
    "per owner, month closed and currency: won / closed, average deal size, average sales cycle (days)",
    ("owner", "month", "currency", "won", "lost", "win_rate", "average_deal_size", "average_sales_cycle_days"),
)
def win_rate(
    db: Database, tenant: str, since: str | None = None, until: str | None = None
) -> list[dict[str, Any]]:
    rows = db.query(
        f"SELECT COALESCE(owner, '(none)') AS owner, {db.month('closed_at')} AS month, currency, stage, amount, "
        "created_at, closed_at FROM rm_opportunities "
        f"WHERE tenant = %(tenant)s AND closed_at IS NOT NULL{_between('closed_at', since, until)}",
        {"tenant": tenant, "since": since, "until": until},
    )
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["owner"], row["month"], row["currency"]), []).append(row)
    out = []
    for (owner, month, currency), deals in sorted(groups.items()):
        won = [d for d in deals if d["stage"] == "closed_won"]
        cycles = [hours(d["created_at"], d["closed_at"]) / 24 for d in won]  # type: ignore[operator]
        out.append(
            {
                "owner": owner,
                "month": month,
                "currency": currency,
                "won": len(won),
                "lost": len(deals) - len(won),
                "win_rate": ratio(len(won), len(deals)),
                "average_deal_size": mean([money(d["amount"]) for d in won]),
                "average_sales_cycle_days": mean(cycles, TENTH),
            }
        )
    return out


@report(
    "funnel",
    "leads → working → qualified → converted → won, per campaign and source, with rates",
    (
        "campaign",
        "source",
        "leads",
        "working",
        "qualified",
        "converted",
        "won",
        "working_rate",
        "qualified_rate",
        "converted_rate",
        "won_rate",
    ),
)
def funnel(
    db: Database, tenant: str, since: str | None = None, until: str | None = None
) -> list[dict[str, Any]]:
    rows = db.query(
        "SELECT COALESCE(c.name, '(none)') AS campaign, l.source AS source, COUNT(*) AS leads, "
        "SUM(CASE WHEN l.worked_at IS NOT NULL THEN 1 ELSE 0 END) AS working, "
        "SUM(CASE WHEN l.status IN ('qualified', 'converted') THEN 1 ELSE 0 END) AS qualified, "
        "SUM(CASE WHEN l.status = 'converted' THEN 1 ELSE 0 END) AS converted, "
        "SUM(CASE WHEN o.stage = 'closed_won' THEN 1 ELSE 0 END) AS won "
        "FROM rm_leads l LEFT JOIN rm_campaigns c ON c.campaign_id = l.campaign_id AND c.tenant = l.tenant "
        "LEFT JOIN rm_opportunities o ON o.opportunity_id = l.opportunity_id AND o.tenant = l.tenant "
        f"WHERE l.tenant = %(tenant)s AND {NOT_MERGED}{_between('l.created_at', since, until)} "
        "GROUP BY COALESCE(c.name, '(none)'), l.source ORDER BY campaign, source",
        {"tenant": tenant, "since": since, "until": until},
    )
    for r in rows:
        r.update(
            working_rate=ratio(r["working"], r["leads"]),
            qualified_rate=ratio(r["qualified"], r["working"]),
            converted_rate=ratio(r["converted"], r["qualified"]),
            won_rate=ratio(r["won"], r["converted"]),
        )
    return rows


@report(
    "campaigns",
    "per campaign: leads, converted, won revenue, cost, cost per lead, ROI (in the campaign's currency)",
    ("campaign", "channel", "status", "currency", "leads", "converted", "won_revenue", "cost", "cost_per_lead",
     "roi", "won_in_other_currencies"),
)  # fmt: skip
def campaigns(
    db: Database, tenant: str, since: str | None = None, until: str | None = None
) -> list[dict[str, Any]]:
    """Won revenue counts the deals in the campaign's own currency, the one its cost is in.

    Deals won in another currency cannot be added to it (nor set against the
    cost): ``won_in_other_currencies`` counts them, so none is dropped unseen.
    """
    won = "o.campaign_id = c.campaign_id AND o.tenant = c.tenant AND o.stage = 'closed_won'"
    rows = db.query(
        "SELECT c.name AS campaign, c.channel, c.status, c.currency, c.actual_cost AS cost, "
        "(SELECT COUNT(*) FROM rm_leads l WHERE l.campaign_id = c.campaign_id AND l.tenant = c.tenant "
        f" AND {NOT_MERGED}) AS leads, "
        "(SELECT COUNT(*) FROM rm_leads l WHERE l.campaign_id = c.campaign_id AND l.tenant = c.tenant "
        " AND l.status = 'converted') AS converted, "
        f"(SELECT {db.money_sum('o.amount')} FROM rm_opportunities o WHERE {won} AND o.currency = c.currency) "
        "AS won_revenue, "
        f"(SELECT COUNT(*) FROM rm_opportunities o WHERE {won} AND o.currency <> c.currency) "
        "AS won_in_other_currencies "
        f"FROM rm_campaigns c WHERE c.tenant = %(tenant)s{_between('c.created_at', since, until)} "
        "ORDER BY c.name, c.campaign_id",
        {"tenant": tenant, "since": since, "until": until},
    )
    for r in rows:
        cost, revenue = money(r["cost"]), money(r["won_revenue"])
        r.update(
            cost=cost,
            won_revenue=revenue,
            cost_per_lead=money(cost / r["leads"]) if r["leads"] else None,
            roi=ratio(revenue - cost, cost),
        )
    return rows


@report(
    "sla",
    "cases by priority: open, first-response and resolution hours (median, p90), share within SLA "
    "(the SLA process's verdicts, else calendar-hour defaults), breaches, escalations, oldest open case",
    (
        "priority",
        "cases",
        "open",
        "first_response_median_h",
        "first_response_p90_h",
        "first_response_within_sla",
        "resolution_median_h",
        "resolution_p90_h",
        "resolution_within_sla",
        "breaches",
        "escalations",
        "backlog_max_age_h",
    ),
)
def sla(
    db: Database, tenant: str, since: str | None = None, until: str | None = None, now: datetime | None = None
) -> list[dict[str, Any]]:
    rows = db.query(
        f"SELECT * FROM rm_cases WHERE tenant = %(tenant)s{_between('opened_at', since, until)}",
        {"tenant": tenant, "since": since, "until": until},
    )
    return sla_figures(rows, now or datetime.now(timezone.utc))


@report(
    "faq",
    "most frequent case categories (or subjects) and the articles that resolved them; how often a suggested "
    "article answered, and the median first-response hours with and without one",
    ("topic", "cases", "resolved", "resolved_with_article", "top_article",
     # Quick replies (docs/reports.md): added at the end, the columns above kept as they were.
     "suggested", "answered_with_suggestion", "first_response_median_h_with_suggestion",
     "first_response_median_h_without_suggestion"),
)  # fmt: skip
def faq(
    db: Database, tenant: str, since: str | None = None, until: str | None = None
) -> list[dict[str, Any]]:
    rows = db.query(
        "SELECT COALESCE(c.category, c.subject) AS topic, c.status, c.article_id, a.title, c.opened_at, "
        "c.first_responded_at, c.suggested_articles, c.first_response_suggested, c.suggestion_used "
        "FROM rm_cases c LEFT JOIN rm_articles a ON a.article_id = c.article_id AND a.tenant = c.tenant "
        f"WHERE c.tenant = %(tenant)s{_between('c.opened_at', since, until)}",
        {"tenant": tenant, "since": since, "until": until},
    )
    topics: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        topics.setdefault(row["topic"], []).append(row)
    out = []
    for topic, cases in topics.items():
        titles = [c["title"] for c in cases if c["title"]]
        top = max(sorted(set(titles)), key=titles.count) if titles else None
        answered = [c for c in cases if c["first_responded_at"]]
        with_one = [hours(c["opened_at"], c["first_responded_at"]) for c in answered if c["first_response_suggested"]]
        without = [hours(c["opened_at"], c["first_responded_at"]) for c in answered if not c["first_response_suggested"]]
        out.append(
            {
                "topic": topic,
                "cases": len(cases),
                "resolved": sum(c["status"] in ("resolved", "closed") for c in cases),
                "resolved_with_article": len(titles),
                "top_article": top,
                "suggested": sum(bool(c["suggested_articles"]) for c in cases),
                "answered_with_suggestion": sum(bool(c["suggestion_used"]) for c in cases),
                "first_response_median_h_with_suggestion": percentile(with_one, "0.5"),  # type: ignore[arg-type]
                "first_response_median_h_without_suggestion": percentile(without, "0.5"),  # type: ignore[arg-type]
            }
        )
    return sorted(out, key=lambda r: (-r["cases"], r["topic"]))


SEGMENTS = ((Decimal(100_000), "strategic"), (Decimal(20_000), "key"), (CENT, "standard"))


def segment(revenue: Decimal) -> str:
    """The documented value tiers, in the account's currency: ≥ 100,000 strategic, ≥ 20,000 key, > 0 standard,
    else prospect."""
    return next((name for floor, name in SEGMENTS if revenue >= floor), "prospect")


@report(
    "accounts",
    "per account: revenue, cost to serve, profit (in the account's currency), segment, open cases, last activity",
    ("account", "currency", "revenue", "cost_to_serve", "profit", "segment", "open_cases", "last_activity_at"),
)
def accounts(
    db: Database, tenant: str, since: str | None = None, until: str | None = None
) -> list[dict[str, Any]]:
    rows = db.query(
        "SELECT a.name AS account, a.account_id, a.currency, a.revenue, a.cost_to_serve, a.last_activity_at, "
        "(SELECT COUNT(*) FROM rm_cases c WHERE c.account_id = a.account_id AND c.tenant = a.tenant "
        " AND c.status NOT IN ('resolved', 'closed')) AS open_cases "
        f"FROM rm_accounts a WHERE a.tenant = %(tenant)s{_between('a.last_activity_at', since, until)} "
        "ORDER BY a.name",
        {"tenant": tenant, "since": since, "until": until},
    )
    for r in rows:
        revenue, cost = money(r["revenue"]), money(r["cost_to_serve"])
        r.update(revenue=revenue, cost_to_serve=cost, profit=revenue - cost, segment=segment(revenue),
                 last_activity_at=iso(r["last_activity_at"]))  # fmt: skip
    # The id breaks ties, so that the order is the same on every database and every rebuild.
    rows.sort(key=lambda r: (-r["profit"], r["account"], r["account_id"]))
    for row in rows:
        del row["account_id"]
    return rows


@report(
    "instances",
    "process instances by definition, version, state and step; stuck: waiting with nothing to wake them",
    ("definition", "version", "status", "step", "instances", "stuck"),
)
def instances(
    db: Database, tenant: str, since: str | None = None, until: str | None = None
) -> list[dict[str, Any]]:
    return db.query(
        "SELECT definition, version, status, COALESCE(step, '') AS step, COUNT(*) AS instances, "
        "SUM(CASE WHEN status = 'waiting' AND due_at IS NULL AND waiting_on IS NULL THEN 1 ELSE 0 END) "
        "AS stuck "
        f"FROM rm_instances WHERE tenant = %(tenant)s{_between('started_at', since, until)} "
        "GROUP BY definition, version, status, COALESCE(step, '') ORDER BY definition, version, status, step",
        {"tenant": tenant, "since": since, "until": until},
    )


@report(
    "duplicates",
    "per record kind and duplicate rule: flagged, merged, open flags (neither lead merged, the flagged one open)",
    ("record", "rule", "flagged", "merged", "open_flags"),
)
def duplicates(
    db: Database, tenant: str, since: str | None = None, until: str | None = None
) -> list[dict[str, Any]]:
    """A lead's flag is open until one of its two leads is merged (into the other, or elsewhere), or the flagged
    lead is converted or disqualified: what is left for a person to look at. Contacts are never closed or
    merged, so each contact flag stays open."""
    closed = "COALESCE(l.status, '') IN ('merged', 'converted', 'disqualified') OR COALESCE(x.status, '') = 'merged'"
    return db.query(
        "SELECT d.record, d.rule, SUM(CASE WHEN d.action = 'flagged' THEN 1 ELSE 0 END) AS flagged, "
        "SUM(CASE WHEN d.action = 'merged' THEN 1 ELSE 0 END) AS merged, "
        f"SUM(CASE WHEN d.action = 'flagged' AND NOT ({closed}) THEN 1 ELSE 0 END) AS open_flags "
        "FROM rm_duplicates d "
        "LEFT JOIN rm_leads l ON d.record = 'lead' AND l.lead_id = d.record_id AND l.tenant = d.tenant "
        "LEFT JOIN rm_leads x ON d.record = 'lead' AND x.lead_id = d.existing_id AND x.tenant = d.tenant "
        f"WHERE d.tenant = %(tenant)s{_between('d.at', since, until)} "
        "GROUP BY d.record, d.rule ORDER BY d.record DESC, d.rule",
        {"tenant": tenant, "since": since, "until": until},
    )
# Activities.

@report(
    "activities",
    "per owner and kind of activity: open, overdue (open and due before now), completed, cancelled, "
    "and the leads whose qualification an activity justified",
    ("owner", "kind", "open", "overdue", "completed", "cancelled", "qualified_leads"),
)
def activities(
    db: Database, tenant: str, since: str | None = None, until: str | None = None, now: datetime | None = None
) -> list[dict[str, Any]]:
    """Overdue is worked out here against ``now`` (default the wall clock), not in SQL, so both databases
    compare the same instants; an overdue activity is counted in open too."""
    moment = now or datetime.now(timezone.utc)
    rows = db.query(
        "SELECT a.owner, a.kind, a.status, a.due_at, "
        "(SELECT COUNT(*) FROM rm_lead_qualifications q WHERE q.activity_id = a.activity_id "
        " AND q.tenant = a.tenant) AS qualified_leads "
        f"FROM rm_activities a WHERE a.tenant = %(tenant)s{_between('a.created_at', since, until)}",
        {"tenant": tenant, "since": since, "until": until},
    )
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        group = groups.setdefault((row["owner"], row["kind"]), {
            "owner": row["owner"], "kind": row["kind"], "open": 0, "overdue": 0, "completed": 0, "cancelled": 0,
            "qualified_leads": 0,
        })  # fmt: skip
        group[row["status"]] += 1
        due = instant(row["due_at"])
        if row["status"] == "open" and due is not None and due < moment:
            group["overdue"] += 1
        group["qualified_leads"] += row["qualified_leads"]
    return [groups[key] for key in sorted(groups)]


# The products report: its own module, registered here (after REPORTS and report() exist).
# The customer view (profile, profitability, segments, cross-sell): its own module, registered here too.
from crmflow.projections import (
    account_reports,  # noqa: E402, F401
    product_report,  # noqa: E402, F401
)
