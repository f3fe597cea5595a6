"""Every report joins on the tenant as well as the id: another tenant's read-model rows that name this
tenant's ids, or carry ids this tenant's rows point at, never change this tenant's report.

The colliding rows are written straight into the read models, as a store from before ids were checked
per tenant could have left them; on SQLite and PostgreSQL.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

import pytest

from crmflow.aggregates.application import CommandRequest, CrmApplication
from crmflow.projections.db import Database
from crmflow.projections.projector import apply_all
from crmflow.projections.reports import REPORTS
from crmflow.workers.history import stored_history
from tests.integration.tenant_world import World, answer, build_world

NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)  # the sla report's "now", so that two runs compare equal


def report_of(reports: Database, name: str, tenant: str) -> list[dict[str, Any]]:
    return REPORTS[name].run(reports, tenant, **({"now": NOW} if name == "sla" else {}))


def insert(reports: Database, table: str, **row: Any) -> None:
    columns = ", ".join(row)
    with reports.transaction() as cur:
        cur.execute(f"INSERT INTO rm_{table} ({columns}) VALUES ({', '.join(f'%({c})s' for c in row)})", row)


@pytest.fixture
def acme(app: CrmApplication, reports: Database) -> World:
    """acme's records, projected; and three of its rows pointing at ids acme has no record of."""
    world = build_world(
        lambda command, **data: answer(app.execute(CommandRequest(command, "acme", data))),
        "acme",
        "Acme",
        choose_ids=False,
    )
    apply_all(reports, stored_history(app))
    for name in ("campaign", "opportunity", "article"):
        world.stored[f"dangling_{name}"] = str(uuid.uuid4())
    at = "2026-03-02T09:00:00+00:00"
    insert(
        reports,
        "leads",
        tenant="acme",
        lead_id=str(uuid.uuid4()),
        name="Orphan",
        source="web",
        status="converted",
        campaign_id=world.stored["dangling_campaign"],
        opportunity_id=world.stored["dangling_opportunity"],
        created_at=at,
        worked_at=at,
    )
    insert(
        reports,
        "cases",
        tenant="acme",
        case_id=str(uuid.uuid4()),
        subject="Orphan case",
        category="sync",
        priority="low",
        channel="email",
        status="resolved",
        opened_at=at,
        resolved_at=at,
        article_id=world.stored["dangling_article"],
        escalations=0,
    )
    return world


def globex_rows_colliding_with(reports: Database, acme: World) -> None:
    """globex's rows: each names one of acme's ids, or is stored under an id acme's rows point at,
    and carries acme's names."""
    at = "2026-03-03T09:00:00+00:00"
    ids = acme.stored
    # Under the ids acme's orphan rows point at, with acme's names.
    insert(
        reports,
        "campaigns",
        tenant="globex",
        campaign_id=ids["dangling_campaign"],
        name="Acme campaign",
        channel="webinar",
        budget=1.0,
        actual_cost=1.0,
        currency="EUR",
        status="active",
        created_at=at,
    )
    insert(
        reports,
        "opportunities",
        tenant="globex",
        opportunity_id=ids["dangling_opportunity"],
        name="Acme deal",
        amount=1_000_000.0,
        currency="EUR",
        close_date="2026-04-30",
        stage="closed_won",
        probability=100,
        created_at=at,
        closed_at=at,
    )
    insert(
        reports,
        "articles",
        tenant="globex",
        article_id=ids["dangling_article"],
        title="Acme article",
        category="sync",
        status="published",
    )
    # Naming acme's records: a converted lead and a won 1,000,000 deal of acme's campaign, an open case and a
    # resolved one with acme's article, at acme's account.
    insert(
        reports,
        "leads",
        tenant="globex",
        lead_id=str(uuid.uuid4()),
        name="Acme lead",
        source="webinar",
        campaign_id=ids["campaign"],
        status="converted",
        opportunity_id=ids["deal"],
        created_at=at,
        worked_at=at,
    )
    insert(
        reports,
        "opportunities",
        tenant="globex",
        opportunity_id=str(uuid.uuid4()),
        account_id=ids["account"],
        name="Acme deal",
        amount=1_000_000.0,
        currency="EUR",
        close_date="2026-04-30",
        stage="closed_won",
        probability=100,
        campaign_id=ids["campaign"],
        lead_id=ids["lead"],
        owner=None,
        created_at=at,
        closed_at=at,
    )
    for status, article in (("new", None), ("resolved", ids["article"])):
        insert(
            reports,
            "cases",
            tenant="globex",
            case_id=str(uuid.uuid4()),
            account_id=ids["account"],
            subject="Acme case",
            category="sync",
            priority="medium",
            channel="email",
            status=status,
            opened_at=at,
            resolved_at=at if article else None,
            article_id=article,
            escalations=0,
        )
    insert(
        reports,
        "accounts",
        tenant="globex",
        account_id=str(uuid.uuid4()),
        name="Acme account",
        revenue=0.0,
        cost_to_serve=0.0,
        created_at=at,
        last_activity_at=at,
    )
    insert(
        reports,
        "instances",
        tenant="globex",
        instance_id=str(uuid.uuid4()),
        definition="web-lead-follow-up",
        version=1,
        key=ids["lead"],
        status="waiting",
        step="follow-up",
        started_at=at,
        updated_at=at,
    )
    # A qualification naming acme's activity, and an overdue call of acme's owner about acme's lead.
    insert(reports, "lead_qualifications", tenant="globex", lead_id=str(uuid.uuid4()), activity_id=ids["activity"],
           qualified_at=at)  # fmt: skip
    insert(reports, "activities", tenant="globex", activity_id=str(uuid.uuid4()), kind="call", related_kind="lead",
           related_id=ids["lead"], owner="acme-rep", subject="Acme follow-up", status="open", due_at=at,
           created_at=at)  # fmt: skip


@pytest.mark.parametrize("name", sorted(REPORTS))
def test_another_tenants_rows_with_colliding_ids_and_names_do_not_change_the_report(
    reports: Database, acme: World, name: str
) -> None:
    before = report_of(reports, name, "acme")
    globex_rows_colliding_with(reports, acme)
    assert report_of(reports, name, "acme") == before


def test_acme_reports_count_only_acme_rows_by_hand(reports: Database, acme: World) -> None:
    globex_rows_colliding_with(reports, acme)
    # funnel: the orphan lead's campaign and deal are globex's ids, so it counts under (none) and not as won.
    funnel = {
        (r["campaign"], r["source"]): (r["leads"], r["won"]) for r in report_of(reports, "funnel", "acme")
    }
    assert funnel == {("(none)", "web"): (1, 0), ("Acme campaign", "web"): (2, 1)}
    # campaigns: acme's two leads of its campaign, one converted; won revenue the buyer's 2,000 deal only (the
    # open 3,000 deal is not won), not globex's 1,000,000.
    assert [
        (r["leads"], r["converted"], r["won_revenue"]) for r in report_of(reports, "campaigns", "acme")
    ] == [(2, 1, 2000.0)]
    # faq: the orphan case's article is globex's id, so no title; acme's own case is still open. Neither was
    # offered an article nor answered: no suggestion counts, no first-response times.
    assert report_of(reports, "faq", "acme") == [
        {"topic": "sync", "cases": 2, "resolved": 1, "resolved_with_article": 0, "top_article": None,
         "suggested": 0, "answered_with_suggestion": 0, "first_response_median_h_with_suggestion": None,
         "first_response_median_h_without_suggestion": None}
    ]  # fmt: skip
    # accounts: acme's account has its one open case, not globex's open case too.
    assert [(r["account"], r["open_cases"]) for r in report_of(reports, "accounts", "acme")] == [
        ("Acme account", 1),
        ("Acme buyer Ltd", 0),
    ]
    # activities: acme's one open call (due Tue 2026-03-03 09:00, so overdue on 1 June), not globex's
    # overdue call of the same owner; globex's qualification naming acme's call does not count.
    assert REPORTS["activities"].run(reports, "acme", now=NOW) == [
        {"owner": "acme-rep", "kind": "call", "open": 1, "overdue": 1, "completed": 0, "cancelled": 0,
         "qualified_leads": 0}
    ]


def every_row(reports: Database) -> dict[str, list[dict[str, Any]]]:
    return {
        table: reports.query(f"SELECT * FROM rm_{table} ORDER BY 2")
        for table in ("leads", "opportunities", "campaigns", "accounts", "cases", "articles", "instances", "activities",
                      "lead_qualifications")
    }


def test_events_of_another_tenant_naming_this_tenants_ids_change_none_of_its_rows(
    app: CrmApplication, reports: Database, acme: World
) -> None:
    # Every projection handler keys its row by id and tenant: acme's whole history, replayed as globex's
    # events (new event ids, same subjects and data), changes no row and adds none.
    before = every_row(reports)
    hostile = [{**event, "id": str(uuid.uuid4()), "tenantid": "globex"} for event in stored_history(app)]
    assert {e["type"] for e in hostile} >= {"LeadCreated", "LeadConverted", "OpportunityWon", "CaseOpened"}

    apply_all(reports, hostile)

    assert every_row(reports) == before
    assert all(report_of(reports, name, "globex") == [] for name in REPORTS)
