"""Chaos on Apache Kafka and PostgreSQL: the whole pipeline as separate processes, a bounded stream of web
forms and commands, workers killed (SIGKILL) again and again, the broker killed once, the database stopped for
20 seconds, and at the end nothing lost, nothing done twice.

The pipeline: relay, intake, two process workers, the timer worker, two projection workers, each a
`crmflow worker KIND` process. A supervisor thread restarts whatever the chaos killed (and counts any worker
that exited by itself). The stream: web forms on the inbound topic (form-to-lead makes each a web lead),
web leads created by command, and leads from events worked by command. Every web lead is routed by a
round-robin process that assigns it once and, as nobody works it, fires a two-second follow-up timer once.

Figures printed and asserted: stored events (at least 100,000), events missing from the events topic (0;
duplicates counted, allowed), web leads not assigned exactly once (0), due timers not fired exactly once (0),
read models that differ from a rebuild from the store (0). Size: CRMFLOW_CHAOS_WEB_LEADS (default 6,000).
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import psycopg
import pytest
import structlog
from rich.console import Console
from rich.table import Table

from crmflow.aggregates.application import CommandRequest, CrmApplication
from crmflow.processes.loader import load_files
from crmflow.processes.registry import DefinitionRegistry
from crmflow.projections.db import Database
from crmflow.projections.projector import create_tables, rebuild
from crmflow.projections.reports import REPORTS
from crmflow.workers.history import history_source, numbered_history
from crmflow.workers.kafka import apache_kafka
from crmflow.workers.kafka.apache_kafka import ApacheKafka
from crmflow.workers.kafka.clients import KafkaClients, KafkaSettings
from crmflow.workers.run.projection_worker import stored_positions
from tests.conftest import required_service_missing
from tests.postgres_server import PostgresServer
from tests.postgres_server import missing_reason as postgres_missing
from tests.waiting import read_topic, wait_until
from tests.worker_processes import WorkerProcess, worker_env

pytestmark = pytest.mark.slow
log = structlog.get_logger("tests.chaos")

SHIPPED = Path(__file__).parents[2] / "processes" / "definitions"
TENANT = "acme"
WEB_LEADS = int(os.environ.get("CRMFLOW_CHAOS_WEB_LEADS", "6000"))  # half as forms, half as commands
STREAM_SECONDS = 90.0  # the stream's length at the least
MIN_STORED_EVENTS = 100_000
MIN_WORKER_KILLS = 50
FOLLOW_UP = """\
apiVersion: crmflow/v1
kind: Process
name: chaos-follow-up
version: 1
tenant: "*"
description: Assign each web lead round-robin; flag it overdue when nobody works it within two seconds.
trigger:
  on: [LeadCreated]
  when: event.data.source == "web"
  key: event.subject
vars:
  lead: event.subject
steps:
  - id: pick-owner
    set: {owner: 'round_robin(["ana", "ben", "chen"])'}
  - id: assign
    do: lead.assign
    args: {lead_id: vars.lead, owner: vars.owner}
  - id: wait-contact
    wait_for:
      on: [LeadStatusChanged]
      when: event.subject == vars.lead && event.data.status == "working"
    timeout: PT2S
    on_timeout: overdue
    next: end
  - id: overdue
    emit: LeadFollowUpOverdue
    data: {lead_id: vars.lead}
"""
WORKERS = ("relay", "intake", "process", "process", "timer", "projection", "projection")


@dataclass
class Pipeline:
    """The worker processes, restarted whenever one is gone; what happened to them, counted."""

    env: dict[str, str]
    logs: Path
    workers: list[WorkerProcess] = field(default_factory=list)
    kills: Counter[str] = field(default_factory=Counter)
    exits: Counter[str] = field(default_factory=Counter)  # died without being killed
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        self.workers = [self._spawn(kind, n) for n, kind in enumerate(WORKERS)]

    def _spawn(self, kind: str, n: int) -> WorkerProcess:
        return WorkerProcess(kind, self.env, self.logs / f"{n}-{kind}.log")

    def kill_one(self, rng: random.Random) -> str:
        with self.lock:
            n = rng.randrange(len(self.workers))
            worker = self.workers[n]
            if worker.alive:
                worker.kill()
                self.kills[worker.kind] += 1
            self.workers[n] = self._spawn(worker.kind, n)
            return worker.kind

    def supervise(self) -> None:
        """Restart a worker that exited by itself (a supervisor's job, as systemd's or Kubernetes')."""
        with self.lock:
            for n, worker in enumerate(self.workers):
                if not worker.alive:
                    self.exits[worker.kind] += 1
                    log.warning("worker_exited", kind=worker.kind, code=worker.process.returncode)
                    self.workers[n] = self._spawn(worker.kind, n)

    def stop(self) -> None:
        with self.lock:
            for worker in self.workers:
                worker.stop()
            for worker in self.workers:
                worker.ensure_gone()


class Driver:
    """The bounded stream: forms through the inbound topic, commands through the application service.

    A caller that is told nothing sends again: forms keep their id (the intake stores each once) and commands
    their idempotency key (the store applies each once), so retries through an outage double nothing.
    """

    def __init__(self, app: CrmApplication, kafka: KafkaClients, web_leads: int) -> None:
        self.app, self.kafka, self.web_leads = app, kafka, web_leads
        self.sent = 0
        self.retries = 0
        self.done = threading.Event()
        self.error: BaseException | None = None

    def _until_accepted(self, attempt: Callable[[], object]) -> None:
        deadline = time.monotonic() + 180
        while True:
            try:
                attempt()
                return
            except Exception as error:  # an outage: the caller tries again, as a client would
                if time.monotonic() > deadline:
                    raise AssertionError(f"the stream could not go on for 180 s: {error!r}") from error
                self.retries += 1
                time.sleep(0.5)

    def _forms(self, first: int, count: int) -> None:
        def send() -> None:
            futures = [self.kafka.producer.send(self.kafka.topics.inbound, key=f"form-{i}".encode(), value=orjson.dumps(
                {"specversion": "1.0", "id": f"form-{i}", "source": "/web/forms/contact", "type": "FormSubmitted",
                 "tenantid": TENANT, "data": {"email": f"visitor{i}@example.com", "name": f"Visitor {i}"}}))
                for i in range(first, first + count)]  # fmt: skip
            for future in futures:
                future.get(timeout=30)

        self._until_accepted(send)

    def _command(self, name: str, data: dict[str, object], key: str) -> str:
        """One command with an idempotency key (batches take none), sent until it is answered."""
        results: list[str] = []
        request = CommandRequest(name, TENANT, data, caller="chaos", idempotency_key=key)
        self._until_accepted(lambda: results.append(str(self.app.execute(request).aggregate_id)))
        return results[-1]

    def _commands(self, first: int, count: int) -> None:
        for i in range(first, first + count):
            self._command("lead.create", {"name": f"Caller {i}", "source": "web"}, f"web-{i}")
            fair = self._command("lead.create", {"name": f"Visitor {i} at the fair", "source": "event"}, f"fair-{i}")
            self._command("lead.work", {"lead_id": fair}, f"work-{i}")

    def run(self) -> None:
        try:
            batch = 25
            starts = range(0, self.web_leads // 2, batch)
            # Paced, so that the stream is still coming when the broker and the database go away.
            pace_s = STREAM_SECONDS / max(len(starts), 1)
            for first in starts:
                began = time.monotonic()
                self._forms(first, batch)
                self._commands(first, batch)
                self.sent += 4 * batch
                self.done.wait(max(0.0, pace_s - (time.monotonic() - began)))
        except BaseException as error:  # noqa: BLE001 - raised again by the test
            self.error = error
        finally:
            self.done.set()


class Outcomes:
    """What the store holds, read incrementally from the notification log: every published event's id, the web
    leads, and per web lead its assignments and overdue flags."""

    def __init__(self, app: CrmApplication) -> None:
        self.app = app
        self.position = 0
        self.ids: list[str] = []
        self.web_leads: set[str] = set()
        self.assigned: Counter[str] = Counter()
        self.overdue: Counter[str] = Counter()

    def read(self) -> Outcomes:
        for position, event in numbered_history(self.app, self.position):
            self.position = position
            self.ids.append(event["id"])
            if event["type"] == "LeadCreated" and event["data"]["source"] == "web":
                self.web_leads.add(event["subject"])
            elif event["type"] == "LeadAssigned":
                self.assigned[event["subject"]] += 1
            elif event["type"] == "LeadFollowUpOverdue":
                self.overdue[event["data"]["lead_id"]] += 1
        return self

    def all_followed_up(self, expected_leads: int) -> bool:
        return len(self.web_leads) >= expected_leads and self.web_leads <= self.assigned.keys() & self.overdue.keys()


def outage(what: str, down: Callable[[], object], up: Callable[[], object], *, down_s: float) -> float:
    """Take a service down, keep it down for ``down_s`` (an outage's length, not a wait), bring it back;
    return how long it was away, restart included."""
    began = time.monotonic()
    down()
    log.info("outage_started", what=what, seconds=down_s)
    time.sleep(down_s)
    up()
    log.info("outage_ended", what=what)
    return time.monotonic() - began


@pytest.fixture
def private_postgres(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[PostgresServer]:
    reason = postgres_missing()
    if reason:
        required_service_missing(request, reason)
    server = PostgresServer(tmp_path / "postgres").init()
    server.start()
    yield server
    server.remove()


@pytest.fixture
def private_kafka(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[ApacheKafka]:
    reason = apache_kafka.missing_reason()
    if reason:
        required_service_missing(request, f"Apache Kafka: {reason}")
    with ApacheKafka(data_dir=tmp_path / "kafka") as broker:
        yield broker


def test_nothing_is_lost_or_done_twice_when_workers_the_broker_and_the_database_fail_under_load(
    private_postgres: PostgresServer, private_kafka: ApacheKafka, tmp_path: Path
) -> None:
    with psycopg.connect(private_postgres.url, autocommit=True) as admin:
        admin.execute("CREATE DATABASE crm")
    url = private_postgres.url.rsplit("/", 1)[0] + "/crm"
    settings = KafkaSettings(bootstrap_servers=private_kafka.bootstrap_servers, topic_prefix="chaos",
                             partitions=6, session_timeout_ms=6000)  # fmt: skip
    app = CrmApplication(url)
    setup = Database(url)
    create_tables(setup)
    setup.close()
    definition = tmp_path / "chaos-follow-up.yaml"
    definition.write_text(FOLLOW_UP)
    DefinitionRegistry(app).deploy(load_files([SHIPPED / "form-to-lead.yaml", definition]), "chaos")
    logs = tmp_path / "logs"
    logs.mkdir()
    pipeline = Pipeline(worker_env(url, settings, url), logs)
    rng = random.Random(20261201)
    started = time.monotonic()
    outages: dict[str, float] = {}
    with KafkaClients(settings, name="chaos-driver") as kafka:
        kafka.ensure_topics()
        driver = Driver(app, kafka, WEB_LEADS)
        pipeline.start()
        stream = threading.Thread(target=driver.run, name="stream", daemon=True)
        stream.start()
        try:
            # Kills spread over the stream; the broker crash at 30%, the database outage at 60%.
            target = max(driver.web_leads * 2, 1)
            while not driver.done.is_set() or sum(pipeline.kills.values()) < MIN_WORKER_KILLS:
                time.sleep(rng.uniform(0.5, 2.5))
                pipeline.supervise()
                progress = driver.sent / target
                if "kafka" not in outages and progress >= 0.3:
                    outages["kafka"] = outage("kafka -9", private_kafka.kill, private_kafka.start, down_s=3)
                elif "postgres" not in outages and progress >= 0.6:
                    outages["postgres"] = outage("postgres stop", private_postgres.stop, private_postgres.start,
                                                 down_s=20)  # fmt: skip
                else:
                    pipeline.kill_one(rng)
                if time.monotonic() - started > 3600:
                    raise AssertionError("the stream did not finish within an hour")
            stream.join(timeout=60)
            if driver.error:
                raise driver.error
            assert {"kafka", "postgres"} <= outages.keys(), f"the outages did not all happen: {outages}"
            stream_s = time.monotonic() - started

            # The work that follows from the stream: every web lead assigned and flagged overdue once.
            outcomes = Outcomes(app)

            def every_lead_followed_up() -> bool:
                pipeline.supervise()
                return outcomes.read().all_followed_up(WEB_LEADS)

            wait_until(every_lead_followed_up, 900, interval_s=2, what="every web lead assigned and flagged overdue")
            stored = app.recorder.max_notification_id() or 0
            history = outcomes.read().ids
            records = read_topic(kafka, kafka.topics.events, at_least=len(history), timeout_s=600)
            reports = Database(url)  # opened after the outage: a connection from before it is gone
            ends: dict[int, int] = {}
            for record in records:
                ends[record.partition] = max(ends.get(record.partition, 0), record.offset + 1)

            def every_partition_projected() -> bool:
                pipeline.supervise()
                return stored_positions(reports, kafka.topics.events) == ends

            wait_until(every_partition_projected, 600, interval_s=1, what="every partition projected")
            dead_letters = read_topic(kafka, kafka.topics.deadletter, timeout_s=60)
        finally:
            pipeline.stop()

    published = Counter(orjson.loads(r.value)["id"] for r in records)
    missing = [event_id for event_id in history if event_id not in published]
    web_leads = outcomes.web_leads
    not_assigned_once = {lead: outcomes.assigned[lead] for lead in web_leads if outcomes.assigned[lead] != 1}
    not_fired_once = {lead: outcomes.overdue[lead] for lead in web_leads if outcomes.overdue[lead] != 1}
    fresh = Database(str(tmp_path / "rebuilt.db"))
    create_tables(fresh)
    rebuild(fresh, history_source(app))
    differing = [name for name, report in REPORTS.items() if report.run(reports, TENANT) != report.run(fresh, TENANT)]
    fresh.close()

    figures = {
        "inputs sent (forms and commands)": driver.sent,
        "retries by the stream through outages": driver.retries,
        "stored events": stored,
        "published events (stored, not internal)": len(history),
        "records on the events topic": len(records),
        "duplicates on the events topic": sum(n - 1 for n in published.values()),
        "events missing from the events topic": len(missing),
        "web leads": len(web_leads),
        "web leads not assigned exactly once": len(not_assigned_once),
        "due timers not fired exactly once": len(not_fired_once),
        "dead letters": len(dead_letters),
        "worker kills (kill -9)": sum(pipeline.kills.values()),
        "workers that exited by themselves (restarted)": sum(pipeline.exits.values()),
        "Kafka broker kill -9 and restart, s": round(outages["kafka"], 1),
        "PostgreSQL stop and start, s": round(outages["postgres"], 1),
        "stream and chaos duration, s": round(stream_s, 1),
        "read models differing from a rebuild": len(differing),
    }
    table = Table("figure", "value", title="chaos on Apache Kafka and PostgreSQL")
    for name, value in figures.items():
        table.add_row(name, f"{value:,}" if isinstance(value, int) else str(value))
    Console(force_terminal=False, width=100).print(table)
    print(f"kills per kind: {dict(pipeline.kills)}; exits per kind: {dict(pipeline.exits)}")

    assert stored >= MIN_STORED_EVENTS
    assert sum(pipeline.kills.values()) >= MIN_WORKER_KILLS
    assert missing == [], f"{len(missing)} stored events never reached the events topic, e.g. {missing[:3]}"
    assert not_assigned_once == {}, f"web leads assigned other than once, e.g. {list(not_assigned_once.items())[:3]}"
    assert not_fired_once == {}, f"timers fired other than once, e.g. {list(not_fired_once.items())[:3]}"
    assert dead_letters == [], "every message of the stream was valid"
    assert differing == [], f"reports that differ from a rebuild: {differing}"
    app.close()
    reports.close()
