"""An operator's morning in a real browser: a failed process instance found on the console, its story read,
a refused inbound event found among the dead letters and sent back, and the workers' lag read.

Its own world, beside console_world's: a real `crmflow serve` that reaches a real broker (the bundled one;
the dead-letter and lag pages' broker behaviour is tested on both brokers elsewhere), a store with a
process instance that failed, and a dead letter the intake itself wrote.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from crmflow.aggregates.application import CommandRequest, CrmApplication
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
    lead: str
    settings: Settings


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


def _dead_letter_by_the_intake(settings: Settings, store: str) -> None:
    """An inbound event of an unsupported CloudEvents version, refused by the real intake."""
    with KafkaClients(settings.kafka(), name="test-operator") as kafka:
        kafka.ensure_topics()
        bad = {"specversion": "0.3", "id": "paid-1", "source": "billing", "type": "InvoicePaid",
               "tenantid": "acme", "data": {"amount": "10.00"}}  # fmt: skip
        kafka.producer.send(kafka.topics.inbound, key=b"paid-1", value=orjson.dumps(bad))
        kafka.producer.flush(timeout=30)
        app = CrmApplication(store)
        try:
            intake = build_intake(settings, app, kafka)
            deadline = time.monotonic() + 60
            while _records(kafka, kafka.topics.deadletter) < 1:
                assert time.monotonic() < deadline, "the intake dead-letters the event within a minute"
                intake.poll_once(timeout_ms=200)
        finally:
            app.close()


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
        _dead_letter_by_the_intake(settings, store)
        with serving(env, where / "serve.log") as (_, base):
            yield World(base, lead, settings)


def test_an_operator_finds_the_failed_instance_reads_its_story_and_redrives_the_refused_event(
    world: World, tab: Any
) -> None:
    sign_in(tab, world, issue_token(SECRET, tenant="acme", role="admin", subject="olga"), then="/console/instances")

    failed = tab.locator("[data-testid=instances] tbody tr").first  # failed ones come first
    assert failed.get_attribute("class") == "failed"
    assert "partner-lead-fast-track" in failed.inner_text()
    failed.locator("a.open").click()
    row = tab.locator("[data-testid=instances-each] tbody tr.failed")
    assert row.count() == 1
    assert "lead.convert refused" in row.inner_text(), "the error says which command was refused"
    assert row.locator("a.key").inner_text() == world.lead, "the instance follows the partner's lead"

    row.locator("a.story").click()
    story = tab.inner_text("[data-testid=history]")
    assert "ProcessInstanceStarted" in story and "refused" in story

    tab.goto(f"{world.base}/console/dead-letters")
    letters = tab.locator("[data-testid=dead-letters] tbody tr")
    assert letters.count() == 1
    assert "specversion '0.3' is not supported" in letters.first.inner_text(), "with the intake's reason"
    tab.fill("form.filters input[name=error]", letters.first.locator("td").nth(1).inner_text())
    tab.click("form.filters button[type=submit]")
    assert "1 dead letter(s) sent back" in tab.inner_text("[data-testid=redriven]")
    with KafkaClients(world.settings.kafka(), name="test-operator-check") as kafka:
        assert _records(kafka, kafka.topics.inbound) == 2, "the original, and the same event sent back"

    tab.goto(f"{world.base}/console/workers")
    lag = tab.locator("[data-testid=worker-lag] tr[data-stage=intake] td").nth(3).inner_text()
    assert lag == "1", "the redriven event waits for the intake (which is not running)"
