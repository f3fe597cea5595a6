"""The read-model tables (prefix ``rm_``; a rebuild fills ``rmb_`` tables and swaps them in).

Documented for analysts in docs/reports.md ("Column types"). Columns are
declared with three placeholders, each a type that differs by database:

- ``{money}``: ``NUMERIC(20,2)`` on PostgreSQL; on SQLite decimal text with two
  places (``'1500.10'``), because SQLite has no exact decimal type (REAL sums
  drift, 60,000 + 39,999.99 + 0.01 is 99,999.99999999999). The reports sum it
  exactly with ``decimal_sum`` (projections.db).
- ``{time}``: ``TIMESTAMPTZ`` on PostgreSQL, so that ``date_trunc`` and
  ``BETWEEN`` work; ISO 8601 UTC text on SQLite (it sorts and compares as time).
- ``{date}``: ``DATE`` on PostgreSQL, ``YYYY-MM-DD`` text on SQLite.
- ``{decimal}``: an exact decimal of any scale (quantities, unit prices, discounts, which may have more
  places than money: a unit price of 33.335): ``NUMERIC`` on PostgreSQL, decimal text on SQLite.

Durations are seconds. Every amount sits beside its ``currency``.
"""

from __future__ import annotations

# Raised whenever a column's type or meaning changes: read models of an older
# schema are rebuilt from the event store when a worker opens them (workers.bootstrap).
SCHEMA_VERSION = 5  # 3: rm_cases.first_response_verdict and resolution_verdict; 4: rm_cases quick-reply
# columns, rm_duplicates and merged leads, rm_activities and rm_lead_qualifications, products, lines, assets, usage;
# 5: rm_contacts (the account view: profile and profitability reports)

TABLES: dict[str, str] = {
    "positions": "consumer TEXT NOT NULL, topic TEXT NOT NULL, part INTEGER NOT NULL, next_offset BIGINT NOT NULL, "
                 "PRIMARY KEY (consumer, topic, part)",
    "seen": "event_id TEXT PRIMARY KEY",
    "leads": "tenant TEXT NOT NULL, lead_id TEXT PRIMARY KEY, name TEXT, company TEXT, source TEXT, campaign_id TEXT, "
             "owner TEXT, status TEXT, score INTEGER, created_at {time}, worked_at {time}, qualified_at {time}, "
             "disqualified_at {time}, converted_at {time}, account_id TEXT, opportunity_id TEXT",
    "opportunities": "tenant TEXT NOT NULL, opportunity_id TEXT PRIMARY KEY, account_id TEXT, name TEXT, amount {money}, "
                     "currency TEXT, close_date {date}, owner TEXT, stage TEXT, probability INTEGER, campaign_id TEXT, "
                     "lead_id TEXT, created_at {time}, closed_at {time}",
    "campaigns": "tenant TEXT NOT NULL, campaign_id TEXT PRIMARY KEY, name TEXT, channel TEXT, budget {money}, "
                 "actual_cost {money}, currency TEXT, status TEXT, created_at {time}",
    "accounts": "tenant TEXT NOT NULL, account_id TEXT PRIMARY KEY, name TEXT, industry TEXT, owner TEXT, "
                "currency TEXT, revenue {money}, cost_to_serve {money}, created_at {time}, last_activity_at {time}",
    "cases": "tenant TEXT NOT NULL, case_id TEXT PRIMARY KEY, account_id TEXT, subject TEXT, category TEXT, "
             "priority TEXT, channel TEXT, owner TEXT, status TEXT, opened_at {time}, first_response_due {time}, "
             "resolution_due {time}, first_responded_at {time}, first_response_within_sla INTEGER, resolved_at {time}, "
             "resolution_within_sla INTEGER, escalations INTEGER, article_id TEXT, "
             # 'met' / 'breached' from the SLA process's CaseSlaMet / CaseSlaBreached; NULL without a verdict.
             "first_response_verdict TEXT, resolution_verdict TEXT, "
             # Quick replies: articles suggested at open (CaseRepliesSuggested), the first response's article
             # and whether it was a suggested one, whether any response answered with a suggested article.
             "suggested_articles INTEGER, first_response_article_id TEXT, first_response_suggested INTEGER, "
             "suggestion_used INTEGER",
    "articles": "tenant TEXT NOT NULL, article_id TEXT PRIMARY KEY, title TEXT, category TEXT, status TEXT",
    "instances": "tenant TEXT NOT NULL, instance_id TEXT PRIMARY KEY, definition TEXT, version INTEGER, key TEXT, "
                 "status TEXT, step TEXT, waiting_on TEXT, due_at {time}, error TEXT, started_at {time}, "
                 "updated_at {time}",
    # Duplicates: one row per lead or contact flagged by a rule ('flagged') and per lead merged away ('merged');
    # rule '(manual)' for a merge no rule explains. existing_id: the record it was flagged against, or merged into.
    "duplicates": "tenant TEXT NOT NULL, record TEXT NOT NULL, record_id TEXT NOT NULL, action TEXT NOT NULL, "
                  "rule TEXT NOT NULL, existing_id TEXT, keys TEXT, at {time}, PRIMARY KEY (record_id, action, rule)",
    # Activities (projections.activity_handlers) and which activity justified each lead's qualification.
    "activities": "tenant TEXT NOT NULL, activity_id TEXT PRIMARY KEY, kind TEXT, related_kind TEXT, related_id TEXT, "
                  "owner TEXT, subject TEXT, status TEXT, due_at {time}, created_at {time}, completed_at {time}, "
                  "cancelled_at {time}, outcome TEXT",
    "lead_qualifications": "tenant TEXT NOT NULL, lead_id TEXT PRIMARY KEY, activity_id TEXT, qualified_at {time}",
    # Products, line items, assets and usage (projections.product_handlers; docs/reports.md).
    "products": "tenant TEXT NOT NULL, product_id TEXT PRIMARY KEY, code TEXT, name TEXT, family TEXT, "
                "list_price {decimal}, currency TEXT, recurring INTEGER, term_months INTEGER, active INTEGER, "
                "created_at {time}, updated_at {time}",
    "opportunity_lines": "tenant TEXT NOT NULL, line_id TEXT PRIMARY KEY, opportunity_id TEXT, product_code TEXT, "
                         "product_name TEXT, quantity {decimal}, unit_price {decimal}, discount {decimal}, "
                         "amount {money}, currency TEXT, recurring INTEGER, term_months INTEGER, added_at {time}",
    "assets": "tenant TEXT NOT NULL, asset_id TEXT PRIMARY KEY, account_id TEXT, opportunity_id TEXT, line_id TEXT, "
              "product_code TEXT, quantity {decimal}, start_date {date}, recurring INTEGER, term_months INTEGER, "
              "renewal_date {date}, acquired_at {time}",
    "usage": "tenant TEXT NOT NULL, source TEXT NOT NULL, event_id TEXT NOT NULL, account_id TEXT, product_code TEXT, "
             "quantity {decimal}, period_start {date}, period_end {date}, reported_time TEXT, "
             "PRIMARY KEY (tenant, source, event_id)",
    # The account view (projections.account_handlers): each account's contacts, for the profile report.
    "contacts": "tenant TEXT NOT NULL, contact_id TEXT PRIMARY KEY, account_id TEXT, created_at {time}",
}
# Rebuilt from the event store; positions are the live projector's own and are not.
MODEL_TABLES = [name for name in TABLES if name != "positions"]

POSTGRES_TYPES = {"money": "NUMERIC(20,2)", "time": "TIMESTAMPTZ", "date": "DATE", "decimal": "NUMERIC"}
SQLITE_TYPES = {"money": "TEXT", "time": "TEXT", "date": "TEXT", "decimal": "TEXT"}


def create_statements(prefix: str, postgres: bool) -> list[str]:
    types = POSTGRES_TYPES if postgres else SQLITE_TYPES
    return [f"CREATE TABLE IF NOT EXISTS {prefix}{name} ({columns.format(**types)})" for name, columns in TABLES.items()
            if prefix == "rm_" or name != "positions"]  # fmt: skip
