"""The composition root: builds the running parts from Settings.

Tests build the same parts with a temporary SQLite file or a fresh PostgreSQL
database and a broker on a free port; nothing else constructs infrastructure.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import structlog

from crmflow.aggregates.application import CrmApplication
from crmflow.aggregates.clock import system_clock
from crmflow.projections.db import Database, reports_url
from crmflow.projections.projector import create_tables
from crmflow.workers.config import Settings
from crmflow.workers.inbound_checks import InboundPolicy, load_schemas
from crmflow.workers.kafka.clients import KafkaClients
from crmflow.workers.kafka.intake import Intake
from crmflow.workers.kafka.intake_rate_limit import IntakeRateLimit
from crmflow.workers.kafka.relay import Relay

log = structlog.get_logger("crmflow.bootstrap")


def build_application(settings: Settings, clock: Callable[[], datetime] | None = None) -> CrmApplication:
    """The event store and command service; ``clock`` is the demo's simulated one."""
    return CrmApplication(settings.database_url, clock=clock or system_clock)


def build_reports_db(settings: Settings) -> Database:
    db = Database(settings.reports_database_url or reports_url(settings.database_url))
    create_tables(db)
    return db


def build_kafka(settings: Settings, name: str) -> KafkaClients:
    return KafkaClients(settings.kafka(), name=name)


def inbound_policy(settings: Settings) -> InboundPolicy:
    if settings.tenants is None:
        log.warning("tenants_not_configured", detail="accepting any well-formed tenant id; set CRMFLOW_TENANTS")
    return InboundPolicy(
        tenants=frozenset(settings.tenants) if settings.tenants is not None else None,
        max_bytes=settings.max_inbound_bytes,
        schemas=load_schemas(settings.schema_dir),
    )


def build_relay(settings: Settings, app: CrmApplication, kafka: KafkaClients) -> Relay:
    return Relay(app, kafka)


def build_intake(settings: Settings, app: CrmApplication, kafka: KafkaClients) -> Intake:
    return Intake(app, kafka, inbound_policy(settings), IntakeRateLimit(settings.intake_rate()))
