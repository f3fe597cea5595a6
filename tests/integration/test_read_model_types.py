"""What an analyst's own SQL sees: NUMERIC money and TIMESTAMPTZ times on PostgreSQL, exact text on SQLite."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from decimal import Decimal as D
from pathlib import Path

import psycopg
import pytest

from crmflow.aggregates.application import CrmApplication
from crmflow.projections.db import Database
from crmflow.projections.projector import apply_all, schema_version
from crmflow.projections.reports import accounts
from crmflow.projections.tables import SCHEMA_VERSION
from crmflow.workers.bootstrap import build_reports_db
from crmflow.workers.config import Settings
from crmflow.workers.history import stored_history
from tests.conftest import Clock, Run


def three_deals(run: Run) -> None:
    """4,000.10 + 4,000.10 + 4,000.20 = 12,000.40 (as floats: 12,000.400000000001)."""
    account = run("account.create", name="Werke").aggregate_id
    for amount in ("4000.10", "4000.10", "4000.20"):
        run("opportunity.create", account_id=account, name="deal", amount=amount, close_date="2026-05-29")


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_postgres_read_models_are_numeric_money_and_timestamptz_times(
    app: CrmApplication, run: Run, reports: Database
) -> None:
    three_deals(run)
    apply_all(reports, stored_history(app))
    with psycopg.connect(reports.url) as analyst:  # psql's view: a plain connection, no crmflow code
        types = dict(analyst.execute(
            "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns "
            "WHERE table_name IN ('rm_opportunities', 'rm_accounts', 'rm_cases', 'rm_campaigns')").fetchall())  # fmt: skip
        total, month, between = analyst.execute(
            "SELECT sum(amount)::text, date_trunc('month', min(created_at))::date::text, "
            "count(*) FILTER (WHERE created_at BETWEEN '2026-03-01' AND '2026-04-01') FROM rm_opportunities").fetchone()  # fmt: skip
    assert {types[c] for c in ("rm_opportunities.amount", "rm_accounts.revenue", "rm_accounts.cost_to_serve",
                               "rm_campaigns.budget", "rm_campaigns.actual_cost")} == {"numeric"}  # fmt: skip
    assert {types[c] for c in ("rm_opportunities.created_at", "rm_opportunities.closed_at", "rm_cases.opened_at",
                               "rm_cases.resolution_due", "rm_accounts.last_activity_at")} == {"timestamp with time zone"}  # fmt: skip
    assert types["rm_opportunities.close_date"] == "date"
    # The clock of the tests starts on Monday 2 March 2026.
    assert (total, month, between) == ("12000.40", "2026-03-01", 3)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_sqlite_read_models_keep_money_as_exact_decimal_text(app: CrmApplication, run: Run, reports: Database) -> None:
    three_deals(run)
    apply_all(reports, stored_history(app))
    with sqlite3.connect(reports.url) as analyst:
        stored = analyst.execute("SELECT typeof(amount), amount FROM rm_opportunities ORDER BY amount").fetchall()
        created = analyst.execute("SELECT created_at FROM rm_opportunities LIMIT 1").fetchone()[0]
    assert stored == [("text", "4000.10"), ("text", "4000.10"), ("text", "4000.20")]
    assert datetime.fromisoformat(created).utcoffset().total_seconds() == 0, "ISO 8601 UTC text"
    # crmflow's own connection sums them exactly.
    assert reports.query(f"SELECT {reports.money_sum('amount')} AS total FROM rm_opportunities")[0]["total"] == "12000.40"


def test_read_models_of_the_float_schema_are_rebuilt_exact_when_a_worker_opens_them(
    app: CrmApplication, run: Run, database_url: str, tmp_path: Path
) -> None:
    # Release 0.2's read models: money as REAL / DOUBLE PRECISION, times as text, no schema version.
    postgres = database_url.startswith("postgresql")
    reports_url = database_url if postgres else str(tmp_path / "reports.db")
    money = "DOUBLE PRECISION" if postgres else "REAL"
    old = Database(reports_url)
    with old.transaction() as cur:
        cur.execute(f"CREATE TABLE rm_accounts (tenant TEXT NOT NULL, account_id TEXT PRIMARY KEY, name TEXT, "
                    f"industry TEXT, owner TEXT, revenue {money}, cost_to_serve {money}, created_at TEXT, "
                    "last_activity_at TEXT)")  # fmt: skip
        cur.execute(f"CREATE TABLE rm_opportunities (tenant TEXT NOT NULL, opportunity_id TEXT PRIMARY KEY, "
                    f"account_id TEXT, name TEXT, amount {money}, currency TEXT, close_date TEXT, owner TEXT, "
                    "stage TEXT, probability INTEGER, campaign_id TEXT, lead_id TEXT, created_at TEXT, closed_at TEXT)")  # fmt: skip
    werke = run("account.create", name="Werke").aggregate_id
    for amount in ("60000", "39999.99", "0.01"):
        run("account.record_payment", account_id=werke, invoice_id=amount, amount=amount, paid_on="2026-03-02")
    with old.transaction() as cur:  # what the float projector had made of them
        cur.execute("INSERT INTO rm_accounts (tenant, account_id, name, revenue, cost_to_serve) "
                    "VALUES ('acme', %(id)s, 'Werke', %(r)s, 0)", {"id": str(werke), "r": 60000 + 39999.99 + 0.01})  # fmt: skip
    old.close()

    db = build_reports_db(Settings(database_url=database_url, reports_database_url=reports_url))

    assert schema_version(db) == SCHEMA_VERSION
    [row] = accounts(db, "acme")
    assert (row["revenue"], row["segment"]) == (D("100000.00"), "strategic")
    db.close()


def test_an_accounts_last_activity_moves_with_a_won_deal_and_a_resolved_case(
    app: CrmApplication, run: Run, clock: Clock, reports: Database
) -> None:
    account = run("account.create", name="Werke").aggregate_id
    deal = run("opportunity.create", account_id=account, name="fleet", amount="100", close_date="2026-05-29").aggregate_id
    case = run("case.open", account_id=account, subject="broken", priority="low", channel="email").aggregate_id
    clock.advance(days=3)
    run("opportunity.win", opportunity_id=deal)
    won_at = clock.now
    clock.advance(days=2)
    run("case.respond", case_id=case)
    run("case.resolve", case_id=case, solution="fixed")
    resolved_at = clock.now

    history = list(stored_history(app))
    first_days = [e for e in history if e["time"] <= won_at.isoformat()]
    apply_all(reports, first_days)
    assert accounts(reports, "acme")[0]["last_activity_at"] == won_at.isoformat(), "the won deal moved it"
    apply_all(reports, history)
    assert accounts(reports, "acme")[0]["last_activity_at"] == resolved_at.isoformat(), "the resolved case moved it"
    # A late copy of the won deal's event (another id, an older time) does not move it back.
    [won] = [e for e in history if e["type"] == "OpportunityWon"]
    apply_all(reports, [{**won, "id": "late-copy"}])
    assert accounts(reports, "acme")[0]["last_activity_at"] == resolved_at.isoformat()
