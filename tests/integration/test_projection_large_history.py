"""On a generated history of over 100,000 events, incremental and rebuilt read models are equal (slow)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from crmflow.aggregates.application import CommandRequest, CrmApplication
from crmflow.projections.db import Database
from crmflow.projections.projector import create_tables, rebuild
from crmflow.projections.reports import REPORTS
from crmflow.workers.history import history_source, stored_history
from crmflow.workers.kafka.clients import KafkaClients
from crmflow.workers.kafka.relay import Relay
from crmflow.workers.run.projection_worker import ProjectionWorker, stored_positions
from crmflow.workers.shutdown import StopSignal
from tests.databases import fresh_postgres_database
from tests.waiting import wait_until

pytestmark = pytest.mark.slow
TENANTS = ("acme", "globex")
FIXED_NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)


def generate(app: CrmApplication, at_least: int, rng: random.Random) -> int:
    """Campaigns, leads worked and converted, deals won and lost, cases answered and resolved, payments."""
    stored = 0
    while stored < at_least:
        tenant = rng.choice(TENANTS)
        campaign = str(app.execute(CommandRequest("campaign.create", tenant, {"name": f"C{stored}", "channel": "web", "budget": "1000"})).aggregate_id)
        batch = [CommandRequest("campaign.record_cost", tenant, {"campaign_id": campaign, "amount": "250"})]
        leads = [str(app.execute(CommandRequest("lead.create", tenant, {"name": f"L{i}", "company": f"Co{i}", "source": "web",
                                                                        "campaign_id": campaign})).aggregate_id) for i in range(40)]  # fmt: skip
        for lead in leads:
            batch += [CommandRequest("lead.assign", tenant, {"lead_id": lead, "owner": rng.choice(["ana", "ben", "chen"])}),
                      CommandRequest("lead.work", tenant, {"lead_id": lead})]  # fmt: skip
        app.execute_batch(batch)
        for lead in leads[:20]:
            app.execute(CommandRequest("lead.qualify", tenant, {"lead_id": lead}))
            result = app.execute(CommandRequest("lead.convert", tenant, {"lead_id": lead, "opportunity": {
                "name": "Deal", "amount": str(rng.randint(1, 50) * 1000), "close_date": f"2026-0{rng.randint(4, 9)}-15"}}))  # fmt: skip
            deal = next(e["subject"] for e in result.events if e["type"] == "OpportunityCreated")
            account = next(e["subject"] for e in result.events if e["type"] == "AccountCreated")
            outcome = rng.random()
            follow = [CommandRequest("account.record_payment", tenant, {"account_id": account, "invoice_id": "I", "amount": "500",
                                                                         "paid_on": "2026-03-01"})]  # fmt: skip
            if outcome < 0.4:
                follow.append(CommandRequest("opportunity.win", tenant, {"opportunity_id": deal}))
            elif outcome < 0.6:
                follow.append(CommandRequest("opportunity.lose", tenant, {"opportunity_id": deal, "reason": "price"}))
            else:
                follow.append(CommandRequest("opportunity.advance", tenant, {"opportunity_id": deal}))
            case = str(app.execute(CommandRequest("case.open", tenant, {"subject": "Help", "category": rng.choice(["login", "billing"]),
                                                                        "priority": rng.choice(["low", "high", "urgent"]),
                                                                        "account_id": account})).aggregate_id)  # fmt: skip
            follow += [CommandRequest("case.respond", tenant, {"case_id": case})]
            if rng.random() < 0.7:
                follow.append(CommandRequest("case.resolve", tenant, {"case_id": case, "solution": "done"}))
            app.execute_batch(follow)
        stored = app.recorder.max_notification_id() or 0
    return stored


@pytest.fixture
def second_database(database_url: str, tmp_path: Path) -> Iterator[str]:
    if database_url.startswith("postgresql"):
        with fresh_postgres_database("crmflow_rebuild") as url:
            yield url
    else:
        yield str(tmp_path / "rebuilt.db")


def test_incremental_and_rebuilt_read_models_are_equal_on_a_large_history(
    app: CrmApplication, database_url: str, second_database: str, kafka: KafkaClients, tmp_path: Path
) -> None:
    stored = generate(app, 100_000, random.Random(5))
    Relay(app, kafka).run(StopSignal(), until_caught_up=True)
    live = Database(database_url if database_url.startswith("postgresql") else str(tmp_path / "reports.db"))
    worker = ProjectionWorker(live, kafka)
    published = sum(1 for _ in stored_history(app))
    try:
        wait_until(lambda: worker.poll_once() >= 0 and sum(stored_positions(live, kafka.topics.events).values()) >= published,
                   600, interval_s=0, what="the whole history projected")  # fmt: skip
    finally:
        worker.close()
    rebuilt = Database(second_database)
    create_tables(rebuilt)
    rebuild(rebuilt, history_source(app))

    assert stored >= 100_000
    for tenant in TENANTS:
        for name, report in REPORTS.items():
            kwargs = {"now": FIXED_NOW} if name == "sla" else {}
            assert report.run(live, tenant, **kwargs) == report.run(rebuilt, tenant, **kwargs), f"{name} for {tenant}"
