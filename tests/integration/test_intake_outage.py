"""A PostgreSQL outage longer than max_poll_interval_ms: the intake rides it out (log, rewind, retry with
backoff) and stores every event once the database is back. Found as an intake that exited with
CommitFailedError: its backoff had grown past the poll interval, the group had put it out, and the commit
after the outage was refused."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from crmflow.aggregates.application import CrmApplication
from crmflow.aggregates.inbound import inbound_id
from crmflow.workers.inbound_checks import InboundPolicy
from crmflow.workers.kafka.clients import KafkaClients, KafkaSettings
from crmflow.workers.kafka.intake import Intake
from crmflow.workers.shutdown import StopSignal
from tests.conftest import required_service_missing
from tests.postgres_server import PostgresServer
from tests.postgres_server import missing_reason as postgres_missing
from tests.waiting import run_in_background, wait_until

POLL_INTERVAL_MS = 6_000  # max_poll_interval_ms, on both brokers: the outage below lasts longer


def form(event_id: str) -> bytes:
    return json.dumps({"specversion": "1.0", "id": event_id, "source": "/web/forms", "type": "FormSubmitted",
                       "tenantid": "acme", "data": {"email": "ada@ae.example"}}).encode()  # fmt: skip


@pytest.fixture
def database(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[PostgresServer, str]]:
    """A PostgreSQL of this test's own, to stop and start."""
    reason = postgres_missing()
    if reason:
        required_service_missing(request, reason)
    server = PostgresServer(tmp_path / "postgres").init()
    server.start()
    with psycopg.connect(server.url, autocommit=True) as admin:
        admin.execute("CREATE DATABASE crm")
    yield server, server.url.rsplit("/", 1)[0] + "/crm"
    server.remove()


@pytest.fixture
def kafka(kafka_settings: KafkaSettings) -> Iterator[KafkaClients]:
    settings = kafka_settings.model_copy(update={"max_poll_interval_ms": POLL_INTERVAL_MS})
    with KafkaClients(settings, name="test") as clients:
        clients.ensure_topics()
        yield clients


def test_the_intake_rides_out_a_database_outage_longer_than_its_poll_interval_and_stores_everything(
    database: tuple[PostgresServer, str], kafka: KafkaClients, caplog: pytest.LogCaptureFixture
) -> None:
    server, url = database
    caplog.set_level(logging.WARNING, logger="kafka")
    app = CrmApplication(url)
    intake = Intake(app, kafka, InboundPolicy(tenants=frozenset({"acme"})))
    stop = StopSignal()
    thread, escaped = run_in_background(intake, stop)
    try:

        def stored(event_id: str) -> bool:
            return bool(app.history(inbound_id("acme", "/web/forms", event_id), "acme"))

        def send(*event_ids: str) -> None:
            for event_id in event_ids:
                kafka.producer.send(kafka.topics.inbound, key=event_id.encode(), value=form(event_id))
            kafka.producer.flush()

        send("before")
        wait_until(lambda: stored("before"), 60, interval_s=0.2, what="the first event stored")

        server.stop()
        during = [f"during-{i}" for i in range(20)]
        send(*during)
        # The store waits for a connection far longer than the 6 s poll interval (eventsourcing retries
        # its 30 s connection wait), so the group puts the intake out while it waits (kafka-python says
        # so): its next commit will be refused.
        wait_until(lambda: "Consumer poll timeout has expired" in caplog.text, 90, interval_s=0.5,
                   what="the group to put the waiting intake out")  # fmt: skip
        assert thread.is_alive() and escaped == []
        server.start()

        wait_until(lambda: all(stored(e) for e in during), 300, interval_s=0.5, what="every event stored")
        send("after")
        wait_until(lambda: stored("after"), 60, interval_s=0.2, what="an event after the outage stored")
        assert thread.is_alive() and escaped == [], "the intake never exited"
        # Each once, although the batch of the outage was read twice (its commit was refused).
        for event_id in ["before", *during, "after"]:
            assert [h.type for h in app.history(inbound_id("acme", "/web/forms", event_id), "acme")] == [
                "InboundEventAccepted"
            ]
    finally:
        stop.set()
        thread.join(30)
        app.close()
