"""A PostgreSQL outage ridden out: the database stops for 15 seconds while the process, timer and projection
workers run (and events keep arriving on the broker); no worker exits, each logs its retries, and once the
database is back every event is handled once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from crmflow.aggregates.application import CrmApplication
from crmflow.aggregates.publication import encode
from crmflow.processes.loader import load_files
from crmflow.processes.registry import DefinitionRegistry
from crmflow.projections.db import Database
from crmflow.projections.projector import create_tables
from crmflow.workers.history import numbered_history
from crmflow.workers.kafka.clients import KafkaClients, KafkaSettings
from crmflow.workers.kafka.relay import Relay
from crmflow.workers.shutdown import StopSignal
from tests.conftest import required_service_missing
from tests.outages import (
    Fleet,
    assignments,
    projected_to_the_end,
    reports_differing_from_a_rebuild,
    watch,
    web_leads,
    web_leads_in_the_funnel,
)
from tests.postgres_server import PostgresServer
from tests.postgres_server import missing_reason as postgres_missing
from tests.waiting import wait_until
from tests.worker_processes import worker_env

DEFINITIONS = Path(__file__).parents[2] / "processes" / "definitions"
OUTAGE_S = 15.0
BEFORE, DURING, AFTER = 30, 20, 20  # web leads: handled before, arriving during and stored after the outage


@pytest.fixture
def private_postgres(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PostgresServer]:
    reason = postgres_missing()
    if reason:
        required_service_missing(request, reason)
    # PostgresServer keeps its data where a server run as another user can reach it.
    server = PostgresServer(tmp_path / "postgres").init()
    server.start()
    yield server
    server.remove()


def test_workers_ride_out_a_fifteen_second_database_outage_and_then_handle_every_event_once(
    private_postgres: PostgresServer, kafka: KafkaClients, kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    with psycopg.connect(private_postgres.url, autocommit=True) as admin:
        admin.execute("CREATE DATABASE crm")
    url = private_postgres.url.rsplit("/", 1)[0] + "/crm"
    app = CrmApplication(url)
    DefinitionRegistry(app).deploy(load_files([DEFINITIONS / "web-lead-follow-up.yaml"]), "test")
    setup = Database(url)
    create_tables(setup)
    setup.close()
    logs = tmp_path / "logs"
    logs.mkdir()
    # The event store's pool waits this long for a connection before its caller sees the outage (30 s by
    # default, longer than this outage): the process and timer workers are to retry through it themselves.
    env = {**worker_env(url, kafka_settings, url), "POSTGRES_CONNECT_TIMEOUT": "3"}
    fleet = Fleet(["process", "timer", "projection"], env, logs)
    try:
        leads = web_leads(app, BEFORE, 0)
        Relay(app, kafka).run(StopSignal(), until_caught_up=True)
        reports = Database(url)

        def before_handled() -> bool:
            fleet.all_alive()
            return len(assignments(app)) == BEFORE and web_leads_in_the_funnel(reports) == BEFORE

        wait_until(before_handled, 60, interval_s=0.25, what="the first leads assigned and projected")
        reports.close()
        # Leads stored now but published during the outage, as a relay that sent them just before it would.
        position = app.recorder.max_notification_id() or 0
        leads += web_leads(app, DURING, BEFORE)
        arriving = [document for _, document in numbered_history(app, position)]
        app.close()

        private_postgres.stop()
        for document in arriving:
            kafka.producer.send(
                kafka.topics.events,
                key=(document.get("subject") or document["id"]).encode(),
                value=encode(document),
            )
        kafka.producer.flush(timeout=30)
        watch(OUTAGE_S, fleet.all_alive)
        private_postgres.start()

        app = CrmApplication(url)  # the test's own connections died with the server
        leads += web_leads(app, AFTER, BEFORE + DURING)
        Relay(app, kafka).run(StopSignal(), until_caught_up=True)  # republishes the outage's leads too
        reports = Database(url)

        def every_lead_assigned() -> bool:
            fleet.all_alive()
            return set(leads) <= assignments(app).keys()

        wait_until(every_lead_assigned, 60, interval_s=0.25, what="every lead assigned")
        Relay(app, kafka).run(StopSignal(), until_caught_up=True)  # what the process worker stored meanwhile

        def every_event_projected() -> bool:
            fleet.all_alive()
            return web_leads_in_the_funnel(reports) == len(leads) and projected_to_the_end(reports, kafka)

        wait_until(every_event_projected, 60, interval_s=0.25, what="every event projected")
        retried = {w.kind: len(w.records("worker_retrying")) for w in fleet.workers}
        codes = fleet.stop()
    finally:
        fleet.ensure_gone()

    assert codes == {"process": 0, "timer": 0, "projection": 0}, [w.describe() for w in fleet.workers]
    assert all(retried.values()), f"every worker logged its retries through the outage: {retried}"
    # 30 before + 20 during + 20 after = 70 web leads, each assigned once and counted once in the funnel.
    per_lead = assignments(app)
    assert len(leads) == 70
    assert {lead: per_lead[lead] for lead in leads if per_lead[lead] != 1} == {}
    assert web_leads_in_the_funnel(reports) == 70
    assert reports_differing_from_a_rebuild(reports, app, tmp_path / "rebuilt.db") == []
    reports.close()
    app.close()


def test_workers_started_while_the_database_is_down_wait_for_it_and_then_do_their_work(
    private_postgres: PostgresServer, kafka: KafkaClients, kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    with psycopg.connect(private_postgres.url, autocommit=True) as admin:
        admin.execute("CREATE DATABASE crm")
    url = private_postgres.url.rsplit("/", 1)[0] + "/crm"
    app = CrmApplication(url)
    DefinitionRegistry(app).deploy(load_files([DEFINITIONS / "web-lead-follow-up.yaml"]), "test")
    app.close()
    setup = Database(url)  # the read models exist, so the test can look at them before the worker is up
    create_tables(setup)
    setup.close()
    logs = tmp_path / "logs"
    logs.mkdir()
    private_postgres.stop()
    env = {**worker_env(url, kafka_settings, url), "POSTGRES_CONNECT_TIMEOUT": "3"}  # as above
    # Told to wait, as a deployment that may start before its database does (without it they refuse at once).
    fleet = Fleet(["process", "timer", "projection"], env, logs, ("--wait-for-dependencies",))
    try:

        def every_worker_waiting_for_the_database() -> bool:
            fleet.all_alive()
            return all(
                any(r["doing"] == "starting" for r in w.records("worker_retrying")) for w in fleet.workers
            )

        wait_until(every_worker_waiting_for_the_database, 30, interval_s=0.25, what="every worker retrying")
        private_postgres.start()
        app = CrmApplication(url)
        leads = web_leads(app, 10, 0)
        Relay(app, kafka).run(StopSignal(), until_caught_up=True)

        def every_lead_assigned() -> bool:
            fleet.all_alive()
            return set(leads) <= assignments(app).keys()

        wait_until(every_lead_assigned, 60, interval_s=0.25, what="every lead assigned")
        Relay(app, kafka).run(StopSignal(), until_caught_up=True)  # what the process worker stored
        reports = Database(url)

        def every_event_projected() -> bool:
            fleet.all_alive()
            return web_leads_in_the_funnel(reports) == 10 and projected_to_the_end(reports, kafka)

        wait_until(every_event_projected, 60, interval_s=0.25, what="every event projected")
        codes = fleet.stop()
    finally:
        fleet.ensure_gone()

    assert codes == {"process": 0, "timer": 0, "projection": 0}, [w.describe() for w in fleet.workers]
    assert reports_differing_from_a_rebuild(reports, app, tmp_path / "rebuilt.db") == []
    reports.close()
    app.close()
