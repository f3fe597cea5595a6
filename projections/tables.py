"""The read-model tables (prefix ``rm_``; a rebuild fills ``rmb_`` tables and swaps them in).

Documented for analysts in the README ("Read models"). Times are ISO 8601
UTC text, money a number in the record's currency, durations in seconds.
"""

from __future__ import annotations

TABLES: dict[str, str] = {
    "positions": "consumer TEXT NOT NULL, topic TEXT NOT NULL, part INTEGER NOT NULL, next_offset BIGINT NOT NULL, "
                 "PRIMARY KEY (consumer, topic, part)",
    "seen": "event_id TEXT PRIMARY KEY",
    "leads": "tenant TEXT NOT NULL, lead_id TEXT PRIMARY KEY, name TEXT, company TEXT, source TEXT, campaign_id TEXT, "
             "owner TEXT, status TEXT, score INTEGER, created_at TEXT, worked_at TEXT, qualified_at TEXT, "
             "disqualified_at TEXT, converted_at TEXT, account_id TEXT, opportunity_id TEXT",
    "opportunities": "tenant TEXT NOT NULL, opportunity_id TEXT PRIMARY KEY, account_id TEXT, name TEXT, amount {money}, "
                     "currency TEXT, close_date TEXT, owner TEXT, stage TEXT, probability INTEGER, campaign_id TEXT, "
                     "lead_id TEXT, created_at TEXT, closed_at TEXT",
    "campaigns": "tenant TEXT NOT NULL, campaign_id TEXT PRIMARY KEY, name TEXT, channel TEXT, budget {money}, "
                 "actual_cost {money}, currency TEXT, status TEXT, created_at TEXT",
    "accounts": "tenant TEXT NOT NULL, account_id TEXT PRIMARY KEY, name TEXT, industry TEXT, owner TEXT, "
                "revenue {money}, cost_to_serve {money}, created_at TEXT, last_activity_at TEXT",
    "cases": "tenant TEXT NOT NULL, case_id TEXT PRIMARY KEY, account_id TEXT, subject TEXT, category TEXT, "
             "priority TEXT, channel TEXT, owner TEXT, status TEXT, opened_at TEXT, first_response_due TEXT, "
             "resolution_due TEXT, first_responded_at TEXT, first_response_within_sla INTEGER, resolved_at TEXT, "
             "resolution_within_sla INTEGER, escalations INTEGER, article_id TEXT",
    "articles": "tenant TEXT NOT NULL, article_id TEXT PRIMARY KEY, title TEXT, category TEXT, status TEXT",
    "instances": "tenant TEXT NOT NULL, instance_id TEXT PRIMARY KEY, definition TEXT, version INTEGER, key TEXT, "
                 "status TEXT, step TEXT, waiting_on TEXT, due_at TEXT, error TEXT, started_at TEXT, updated_at TEXT",
}
# Rebuilt from the event store; positions are the live projector's own and are not.
MODEL_TABLES = [name for name in TABLES if name != "positions"]


def create_statements(prefix: str, postgres: bool) -> list[str]:
    money = "DOUBLE PRECISION" if postgres else "REAL"
    return [f"CREATE TABLE IF NOT EXISTS {prefix}{name} ({columns.format(money=money)})" for name, columns in TABLES.items()
            if prefix == "rm_" or name != "positions"]  # fmt: skip
