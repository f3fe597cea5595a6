"""Each report's rows as an ECharts option: which columns go on which axis, nothing computed.

Figures stay the decimal strings the API returns ("1500.10"; ECharts reads numeric strings), so the chart
shows exactly the report's values. Amounts of different currencies are never added: a money series is
one currency's. Only counts are summed (the funnel's stages over campaigns and sources).
"""

from __future__ import annotations

from typing import Any

Rows = list[dict[str, Any]]

CHARTED = ("pipeline", "forecast", "win-rate", "funnel", "campaigns", "sla", "accounts", "activities", "duplicates",
           "products", "profitability", "segments")  # fmt: skip
TITLES = {
    "pipeline": "Pipeline: open amount by stage and owner",
    "forecast": "Forecast by close month: weighted and best case",
    "win-rate": "Win rate per owner and month",
    "funnel": "Funnel: leads to won",
    "campaigns": "Campaigns: ROI",
    "sla": "SLA per priority: median hours",
    "accounts": "Accounts: profit",
    "activities": "Activities per owner: open, overdue, completed, cancelled",
    "duplicates": "Duplicates per rule: flagged, merged, open flags",
    "products": "Products: open pipeline amount",
    "profitability": "Profitability per account: profit and expected revenue",
    "segments": "Segments: accounts per usage tier",
}


def _categories(rows: Rows, column: str) -> list[str]:
    return list(dict.fromkeys(str(r[column]) for r in rows))


def _bars(
    categories: list[str], series: dict[str, dict[str, Any]], *, stack: bool = False, kind: str = "bar"
) -> dict[str, Any]:
    return {
        "tooltip": {"trigger": "axis"},
        "legend": {"type": "scroll", "bottom": 0},
        "grid": {"left": 60, "right": 20, "top": 20, "bottom": 60},
        "xAxis": {"type": "category", "data": categories},
        "yAxis": {"type": "value"},
        "series": [
            {
                "name": name,
                "type": kind,
                **({"stack": "total"} if stack else {}),
                "data": [values.get(c) for c in categories],
            }
            for name, values in series.items()
        ],
    }


def _by(rows: Rows, x: str, name: Any, value: str) -> dict[str, dict[str, Any]]:
    series: dict[str, dict[str, Any]] = {}
    for r in rows:
        series.setdefault(name(r), {})[str(r[x])] = r[value]
    return series


def option(report: str, rows: Rows) -> dict[str, Any] | None:
    """The chart of a report's rows; None for a report drawn as a table only."""
    if report == "pipeline":
        return _bars(
            _categories(rows, "stage"),
            _by(rows, "stage", lambda r: f"{r['owner']} ({r['currency']})", "amount"),
            stack=True,
        )
    if report == "forecast":
        months = _categories(rows, "month")
        series = {
            **_by(rows, "month", lambda r: f"weighted ({r['currency']})", "weighted_amount"),
            **_by(rows, "month", lambda r: f"best case ({r['currency']})", "best_case_amount"),
        }
        return _bars(months, series)
    if report == "win-rate":
        return _bars(
            sorted(_categories(rows, "month")),
            _by(rows, "month", lambda r: f"{r['owner']} ({r['currency']})", "win_rate"),
            kind="line",
        )
    if report == "funnel":
        stages = ("leads", "working", "qualified", "converted", "won")
        totals = [{"name": s, "value": sum(int(r[s] or 0) for r in rows)} for s in stages]
        return {
            "tooltip": {"trigger": "item"},
            "series": [
                {
                    "name": "funnel",
                    "type": "funnel",
                    "sort": "none",
                    "data": totals,
                    "label": {"formatter": "{b}: {c}"},
                }
            ],
        }
    if report == "campaigns":
        return _bars(_categories(rows, "campaign"), _by(rows, "campaign", lambda r: "ROI", "roi"))
    if report == "sla":
        priorities = _categories(rows, "priority")
        return _bars(
            priorities,
            {
                **_by(rows, "priority", lambda r: "first response median h", "first_response_median_h"),
                **_by(rows, "priority", lambda r: "resolution median h", "resolution_median_h"),
            },
        )
    if report == "accounts":
        series = _by(rows, "account", lambda r: f"profit ({r['currency'] or 'no currency'})", "profit")
        return _bars(_categories(rows, "account"), series)
    if report == "activities":
        # Counts of every kind of activity (call, e-mail, ...) added per owner: counts may be summed.
        owners = _categories(rows, "owner")
        counts = ("open", "overdue", "completed", "cancelled")
        return _bars(owners, {c: _counts_by(rows, "owner", c) for c in counts})
    if report == "duplicates":
        rules = [f"{r['record']} {r['rule']}" for r in rows]
        return _bars(rules, {c: {f"{r['record']} {r['rule']}": r[c] for r in rows}
                             for c in ("flagged", "merged", "open_flags")})  # fmt: skip
    if report == "products":
        return _bars(_categories(rows, "code"), _by(rows, "code", lambda r: f"open amount ({r['currency']})", "open_amount"))
    if report == "profitability":
        accounts = _categories(rows, "account")
        return _bars(accounts, {
            **_by(rows, "account", lambda r: f"profit ({r['currency']})", "profit"),
            **_by(rows, "account", lambda r: f"expected revenue ({r['currency']})", "expected_revenue"),
        })  # fmt: skip
    if report == "segments":
        # Accounts are counts: a segment's accounts of every currency are added up, per usage tier.
        segments = _categories(rows, "segment")
        tiers = _categories(rows, "usage_tier")
        return _bars(segments, {t: _counts_by([r for r in rows if str(r["usage_tier"]) == t], "segment", "accounts")
                                for t in tiers}, stack=True)  # fmt: skip
    return None


def _counts_by(rows: Rows, x: str, count: str) -> dict[str, int]:
    totals: dict[str, int] = {}
    for r in rows:
        totals[str(r[x])] = totals.get(str(r[x]), 0) + int(r[count] or 0)
    return totals
