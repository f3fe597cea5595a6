"""The composition root: builds the running parts from Settings.

Tests build the same parts with a temporary SQLite file or a fresh PostgreSQL
database and a broker on a free port; nothing else constructs infrastructure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING

import structlog

from crmflow.workers.config import Settings

# Each builder imports what it builds: a CLI verb pays only for the parts it uses (kafka-python, psycopg and
# the read models cost more to import than a SQLite command takes to run).
if TYPE_CHECKING:
    from crmflow.aggregates.application import CrmApplication
    from crmflow.projections.db import Database
    from crmflow.workers.inbound_checks import InboundPolicy
    from crmflow.workers.kafka.clients import KafkaClients
    from crmflow.workers.kafka.intake import Intake
    from crmflow.workers.kafka.relay import Relay

log = structlog.get_logger("crmflow.bootstrap")


def build_application(settings: Settings, clock: Callable[[], datetime] | None = None) -> CrmApplication:
    """The event store and command service; ``clock`` is the demo's simulated one."""
    from crmflow.aggregates.application import CrmApplication
    from crmflow.aggregates.clock import system_clock

    return CrmApplication(settings.database_url, clock=clock or system_clock)


def build_reports_db(settings: Settings) -> Database:
    from crmflow.projections.db import Database, reports_url
    from crmflow.projections.projector import create_tables

    db = Database(settings.reports_database_url or reports_url(settings.database_url))
    create_tables(db)
    upgrade_read_models(db, settings)
    return db


class ReadModelsTooNewError(RuntimeError):
    """The read models were built by a newer crmflow than this one."""


def upgrade_read_models(db: Database, settings: Settings) -> None:
    """Read models of an older schema (money as floats, times as text) are rebuilt from the event store.

    They hold nothing the store does not, so a rebuild is the whole migration; it
    runs beside live projectors as any rebuild does. Replicas starting together
    on PostgreSQL take turns on an advisory lock, and the later ones find it done.
    """
    from crmflow.projections.projector import rebuild, schema_version
    from crmflow.projections.tables import SCHEMA_VERSION
    from crmflow.workers.history import history_source

    if (version := schema_version(db)) == SCHEMA_VERSION:
        return
    if version > SCHEMA_VERSION:
        raise ReadModelsTooNewError(
            f"the read models are schema {version}, written by a newer crmflow; this one reads schema "
            f"{SCHEMA_VERSION}: upgrade crmflow, or rebuild them with `crmflow projections rebuild`"
        )
    with _one_upgrader(db):
        if schema_version(db) == SCHEMA_VERSION:
            return
        log.warning("read_models_upgrading", from_schema=version, to_schema=SCHEMA_VERSION,
                    detail="rebuilding them from the event store")  # fmt: skip
        app = build_application(settings)
        try:
            applied = rebuild(db, history_source(app))
        finally:
            app.close()
        log.info("read_models_upgraded", schema=SCHEMA_VERSION, events_applied=applied)


@contextmanager
def _one_upgrader(db: Database) -> Iterator[None]:
    if not db.postgres:
        yield  # one SQLite file belongs to one machine's workers, which do not start at the same instant
        return
    import psycopg

    with psycopg.connect(db.url, autocommit=True) as lock:
        lock.execute("SELECT pg_advisory_lock(hashtext('crmflow.read_models.upgrade'))")
        yield


def build_kafka(settings: Settings, name: str) -> KafkaClients:
    from crmflow.workers.kafka.clients import KafkaClients

    return KafkaClients(settings.kafka(), name=name)


def inbound_policy(settings: Settings) -> InboundPolicy:
    from crmflow.workers.inbound_checks import InboundPolicy, load_schemas

    if settings.tenants is None:
        log.warning("tenants_not_configured", detail="accepting any well-formed tenant id; set CRMFLOW_TENANTS")
    return InboundPolicy(
        tenants=frozenset(settings.tenants) if settings.tenants is not None else None,
        max_bytes=settings.max_inbound_bytes,
        schemas=load_schemas(settings.schema_dir),
    )


def build_relay(settings: Settings, app: CrmApplication, kafka: KafkaClients) -> Relay:
    from crmflow.workers.kafka.relay import Relay

    return Relay(app, kafka)


def build_intake(settings: Settings, app: CrmApplication, kafka: KafkaClients) -> Intake:
    from crmflow.workers.kafka.intake import Intake
    from crmflow.workers.kafka.intake_rate_limit import IntakeRateLimit

    return Intake(app, kafka, inbound_policy(settings), IntakeRateLimit(settings.intake_rate()))
