"""An operator's morning in a real browser: a failed process instance found on the console, its story read,
an inbound event the intake refused (it ran before the tenant was configured) found among the dead letters,
sent back and accepted, and the workers' lag read. Every page is saved as a screenshot (test artifacts).

Its own world, beside console_world's: a real `crmflow serve` that reaches a real broker (the bundled one;
the dead-letter and lag pages' broker behaviour is tested on both brokers elsewhere), a store with a
process instance that failed, and a dead letter the intake itself wrote.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson
import pytest

from crmflow.aggregates.application import CommandRequest, CrmApplication
from crmflow.aggregates.errors import AggregateNotFoundError
from crmflow.aggregates.inbound import inbound_id
from crmflow.processes.loader import parse_documents
from crmflow.processes.registry import DefinitionRegistry
from crmflow.processes.runtime import ProcessRuntime
from crmflow.projections.db import Database
from crmflow.projections.projector import apply_all, create_tables
from crmflow.workers.api.tokens import issue_token
from crmflow.workers.bootstrap import build_intake
from crmflow.workers.config import Settings
from crmflow.workers.history import stored_history
from crmflow.workers.kafka.broker import LocalBroker
from crmflow.workers.kafka.clients import KafkaClients, topic_partitions
from tests.integration.console_world import sign_in
from tests.serving import serving

SECRET = "console-operator-secret-that-is-long-enough"
PREFIX = "operator"
# A partner's lead is converted at once, but only a qualified lead converts: the instance fails.
CONVERT_AT_ONCE = """
apiVersion: crmflow/v1
kind: Process
name: partner-lead-fast-track
version: 1
tenant: acme
description: A partner's lead is converted the moment it arrives.
trigger:
  on: [LeadCreated]
  when: event.data.source == "partner"
  key: event.subject
steps:
  - id: convert
    do: lead.convert
    args: {lead_id: event.subject}
"""


@dataclass
class World:
    base: str
    store: str
    lead: str
    settings: Settings
    shots: Path


def _seed(store: str, reports_url: str) -> str:
    app = CrmApplication(store)
    try:
        DefinitionRegistry(app).deploy(parse_documents(CONVERT_AT_ONCE, "fast-track.yaml"), "admin:seed")
        lead = app.execute(CommandRequest("lead.create", "acme", {"name": "Parvati", "source": "partner"},
                                          caller="marketing:mia")).aggregate_id  # fmt: skip
        created = [e for e in stored_history(app) if e["type"] == "LeadCreated"]
        ProcessRuntime(app).handle(created)  # as the process worker would
        reports = Database(reports_url)
        create_tables(reports)
        apply_all(reports, stored_history(app))
        reports.close()
        return str(lead)
    finally:
        app.close()


def _intake_until(settings: Settings, store: str, done: Callable[[KafkaClients], bool]) -> None:
    """Run the real intake, with the settings' tenants, until ``done`` (within a minute)."""
    with KafkaClients(settings.kafka(), name="test-intake") as kafka:
        app = CrmApplication(store)
        try:
            intake = build_intake(settings, app, kafka)
            deadline = time.monotonic() + 60
            while not done(kafka):
                assert time.monotonic() < deadline, "the intake has done it within a minute"
                intake.poll_once(timeout_ms=200)
            intake.consumer.close()  # leave the group now, not after its session times out
        finally:
            app.close()


def _invoice_paid_refused_for_an_unconfigured_tenant(settings: Settings, store: str) -> None:
    """Billing's event for acme reaches an intake that knows only globex: dead-lettered, unknown_tenant."""
    with KafkaClients(settings.kafka(), name="test-billing") as kafka:
        kafka.ensure_topics()
        paid = {"specversion": "1.0", "id": "paid-1", "source": "billing", "type": "InvoicePaid",
                "tenantid": "acme", "data": {"amount": "10.00"}}  # fmt: skip
        kafka.producer.send(kafka.topics.inbound, key=b"paid-1", value=orjson.dumps(paid))
        kafka.producer.flush(timeout=30)
    _intake_until(settings.model_copy(update={"tenants": ["globex"]}), store,
                  lambda kafka: _records(kafka, kafka.topics.deadletter) == 1)  # fmt: skip


def _records(kafka: KafkaClients, topic: str) -> int:
    probe = kafka.consumer(group_id=None)
    ends = probe.end_offsets(topic_partitions(probe, topic) or [])
    return sum(kafka.true_ends(ends, timeout_s=0.3).values()) if ends else 0


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    where = tmp_path_factory.mktemp("operator")
    store, reports = str(where / "crm.db"), str(where / "reports.db")
    with LocalBroker(log_file=where / "broker.log") as broker:
        env = {
            **os.environ,
            "CRMFLOW_DATABASE_URL": store,
            "CRMFLOW_REPORTS_DATABASE_URL": reports,
            "CRMFLOW_API_SECRET": SECRET,
            "CRMFLOW_TENANTS": "acme,globex",
            "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
            "CRMFLOW_TOPIC_PREFIX": PREFIX,
        }
        settings = Settings(database_url=store, api_secret=SECRET, kafka_bootstrap_servers=broker.bootstrap_servers,
                            topic_prefix=PREFIX, tenants="acme,globex").tuned_for_bundled_broker()  # fmt: skip
        lead = _seed(store, reports)
        _invoice_paid_refused_for_an_unconfigured_tenant(settings, store)
        shots = Path(os.environ.get("CRMFLOW_CONSOLE_SCREENSHOTS") or where / "screenshots")
        shots.mkdir(parents=True, exist_ok=True)
        with serving(env, where / "serve.log") as (_, base):
            yield World(base, store, lead, settings, shots)


def test_an_operator_finds_the_failed_instance_reads_its_story_and_redrives_a_dead_letter_that_is_accepted(
    world: World, tab: Any
) -> None:
    sign_in(tab, world, issue_token(SECRET, tenant="acme", role="admin", subject="olga"), then="/console/instances")
    tab.screenshot(path=world.shots / "operator-instances.png", full_page=True)

    failed = tab.locator("[data-testid=instances] tbody tr").first  # failed ones come first
    assert failed.get_attribute("class") == "failed"
    assert "partner-lead-fast-track" in failed.inner_text()
    failed.locator("a.open").click()
    row = tab.locator("[data-testid=instances-each] tbody tr.failed")
    assert row.count() == 1
    assert "lead.convert refused" in row.inner_text(), "the error says which command was refused"
    assert row.locator("a.key").inner_text() == world.lead, "the instance follows the partner's lead"
    tab.screenshot(path=world.shots / "operator-instances-each.png", full_page=True)

    row.locator("a.story").click()
    story = tab.inner_text("[data-testid=history]")
    assert "ProcessInstanceStarted" in story and "refused" in story
    tab.screenshot(path=world.shots / "operator-instance-story.png", full_page=True)

    tab.goto(f"{world.base}/console/dead-letters")
    letters = tab.locator("[data-testid=dead-letters] tbody tr")
    assert letters.count() == 1
    assert "tenant 'acme' is not a tenant of this crmflow" in letters.first.inner_text(), "the intake's reason"
    tab.screenshot(path=world.shots / "operator-dead-letters.png", full_page=True)
    tab.fill("form.filters input[name=error]", "unknown_tenant")
    tab.click("form.filters button[type=submit]")
    assert "1 dead letter(s) sent back" in tab.inner_text("[data-testid=redriven]")

    # acme is a tenant now (the intake restarted with CRMFLOW_TENANTS=acme,globex): the event is accepted.
    accepted = inbound_id("acme", "billing", "paid-1")
    _intake_until(world.settings, world.store, lambda _: _stored(world.store, accepted))
    tab.goto(f"{world.base}/console/records/{accepted}")
    assert tab.locator("[data-testid=history] tr[data-type=InboundEventAccepted]").count() == 1
    tab.screenshot(path=world.shots / "operator-accepted.png", full_page=True)

    tab.goto(f"{world.base}/console/workers")
    intake_lag = tab.locator("[data-testid=worker-lag] tr[data-stage=intake] td").nth(3).inner_text()
    assert intake_lag == "0", "the intake committed past the original and the redriven copy"
    tab.screenshot(path=world.shots / "operator-workers.png", full_page=True)


def _stored(store: str, aggregate_id: UUID) -> bool:
    app = CrmApplication(store)
    try:
        return app.state(aggregate_id, "acme") is not None
    except AggregateNotFoundError:
        return False
    finally:
        app.close()
