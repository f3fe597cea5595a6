"""The dashboard's charts draw a report's own figures; only counts are ever added up."""

from __future__ import annotations

from crmflow.workers.console.charts import option


def series_of(chart: dict) -> dict[str, dict[str, object]]:
    x = chart["xAxis"]["data"]
    return {s["name"]: dict(zip(x, s["data"])) for s in chart["series"]}


def test_the_activities_chart_adds_each_owners_counts_over_the_kinds_of_activity() -> None:
    rows = [
        {"owner": "ana", "kind": "call", "open": 2, "overdue": 1, "completed": 3, "cancelled": 0, "qualified_leads": 1},
        {"owner": "ana", "kind": "email", "open": 1, "overdue": 1, "completed": 0, "cancelled": 1, "qualified_leads": 0},
        {"owner": "ben", "kind": "call", "open": 0, "overdue": 0, "completed": 4, "cancelled": 0, "qualified_leads": 2},
    ]
    drawn = series_of(option("activities", rows))
    # ana: open 2 + 1 = 3, overdue 1 + 1 = 2, completed 3 + 0 = 3, cancelled 0 + 1 = 1; ben as reported.
    assert drawn == {"open": {"ana": 3, "ben": 0}, "overdue": {"ana": 2, "ben": 0},
                     "completed": {"ana": 3, "ben": 4}, "cancelled": {"ana": 1, "ben": 0}}  # fmt: skip


def test_the_duplicates_chart_shows_each_rules_figures_as_reported() -> None:
    rows = [{"record": "lead", "rule": "email", "flagged": 3, "merged": 1, "open_flags": 2},
            {"record": "contact", "rule": "phone", "flagged": 1, "merged": 0, "open_flags": 1}]  # fmt: skip
    drawn = series_of(option("duplicates", rows))
    assert drawn["flagged"] == {"lead email": 3, "contact phone": 1}
    assert drawn["open_flags"] == {"lead email": 2, "contact phone": 1}


def test_the_segments_chart_adds_accounts_of_every_currency_per_segment_and_usage_tier() -> None:
    rows = [{"segment": "core", "usage_tier": "heavy", "currency": "EUR", "accounts": 2, "revenue": "10.00", "profit": "1.00"},
            {"segment": "core", "usage_tier": "heavy", "currency": "USD", "accounts": 1, "revenue": "5.00", "profit": "1.00"},
            {"segment": "at-risk", "usage_tier": "light", "currency": "EUR", "accounts": 4, "revenue": "0.00", "profit": "-9.00"}]  # fmt: skip
    drawn = series_of(option("segments", rows))
    # core/heavy: 2 EUR accounts + 1 USD account = 3 accounts; no money is added across currencies.
    assert drawn == {"heavy": {"core": 3, "at-risk": None}, "light": {"core": None, "at-risk": 4}}


def test_the_profitability_chart_keeps_each_currencys_figures_apart() -> None:
    rows = [{"account": "Acme", "currency": "EUR", "profit": "100.50", "expected_revenue": "900.00"},
            {"account": "Initech", "currency": "USD", "profit": "-20.00", "expected_revenue": "0.00"}]
    drawn = series_of(option("profitability", rows))
    assert drawn["profit (EUR)"] == {"Acme": "100.50", "Initech": None}
    assert drawn["expected revenue (USD)"] == {"Acme": None, "Initech": "0.00"}
