"""Parked events: stored events the relay could not publish, in a table beside the event store.

An event that cannot be encoded, is larger than the relay may send, or that
Kafka refuses for good is parked here with the reason, and the relay moves on.
Every later event of the same aggregate (the same Kafka key) is parked too,
waiting for it, so that what consumers see of one aggregate stays in order.
The table lives in the event store's own database (SQLite or PostgreSQL), so
it survives restarts; ``crmflow relay parked list | retry`` reads and drains it.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from eventsourcing.application import Application

PARKED_TABLE = "crmflow_parked_events"


class StoreSql:
    """Plain SQL on the event store's own database: the table name as quoted there, and its placeholder.

    eventsourcing's recorders only insert and select their own tables, so the
    relay's tables are written through the store's datastore directly. A
    ``memory://`` store gets a private in-memory SQLite database instead.
    """

    def __init__(self, app: Application) -> None:
        recorder = app.recorder
        module = type(recorder).__module__
        if module == "eventsourcing.postgres":
            self.datastore: Any = recorder.datastore
            self.mark, self.schema = "%s", f'"{recorder.datastore.schema}".'
        elif module == "eventsourcing.sqlite":
            self.datastore, self.mark, self.schema = recorder.datastore, "?", ""
        else:  # eventsourcing.popo: nothing to survive a restart anyway
            self.datastore, self.mark, self.schema = _MemoryDatastore(), "?", ""

    def table(self, name: str) -> str:
        return f'{self.schema}"{name}"'

    @contextmanager
    def cursor(self) -> Iterator[Any]:
        with self.datastore.transaction(commit=True) as cursor:
            yield cursor

    def run(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        with self.cursor() as cursor:
            cursor.execute(sql.replace("?", self.mark), params)

    def create(self, statement: str) -> None:
        """CREATE TABLE IF NOT EXISTS, from several processes at once: PostgreSQL lets one win and may fail
        the others ("tuple concurrently updated", a duplicate pg_type row); the table exists then."""
        for attempt in range(5):
            try:
                self.run(statement)
                return
            except Exception as error:
                if (
                    not any(s in str(error) for s in ("concurrently", "pg_type_typname_nsp_index"))
                    or attempt == 4
                ):
                    raise
                time.sleep(0.05 * (attempt + 1))

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with self.cursor() as cursor:
            cursor.execute(sql.replace("?", self.mark), params)
            # sqlite3.Row and psycopg's dict rows both index by column name.
            return [{key: row[key] for key in row.keys()} for row in cursor.fetchall()]


class _MemoryDatastore:
    def __init__(self) -> None:
        self.connection = sqlite3.connect(":memory:", check_same_thread=False)
        self.connection.row_factory = sqlite3.Row
        self.lock = threading.Lock()

    @contextmanager
    def transaction(self, *, commit: bool) -> Iterator[sqlite3.Cursor]:
        with self.lock, self.connection:
            yield self.connection.cursor()


@dataclass(frozen=True)
class ParkedEvent:
    """One parked event: which notification, whose, why, since when, and how often a retry failed."""

    notification_id: int
    aggregate_id: str
    key: str
    tenant: str | None
    topic: str
    reason: str
    waits_for: int | None  # the parked notification of the same aggregate this one waits for
    parked_at: datetime
    retried: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "notification": self.notification_id, "aggregate": self.aggregate_id, "key": self.key,
            "tenant": self.tenant, "topic": self.topic, "reason": self.reason, "waits_for": self.waits_for,
            "parked_at": self.parked_at.isoformat(), "retried": self.retried,
        }  # fmt: skip


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


class ParkedEvents:
    """The parked-events table of one store, for one relay name."""

    def __init__(self, app: Application, relay: str = "relay", sql: StoreSql | None = None) -> None:
        self.sql = sql or StoreSql(app)
        self.relay = relay
        self.name = self.sql.table(PARKED_TABLE)
        self.sql.create(
            f"CREATE TABLE IF NOT EXISTS {self.name} (relay TEXT NOT NULL, notification_id BIGINT NOT NULL, "
            "aggregate_id TEXT NOT NULL, kafka_key TEXT NOT NULL, tenant TEXT, topic TEXT NOT NULL, "
            "reason TEXT NOT NULL, waits_for BIGINT, parked_at TEXT NOT NULL, "
            "retried INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (relay, notification_id))"
        )

    def park(self, event: ParkedEvent) -> None:
        """Add it; a notification parked before keeps its row (after a republish from the start)."""
        self.sql.run(
            f"INSERT INTO {self.name} (relay, notification_id, aggregate_id, kafka_key, tenant, topic, "
            "reason, waits_for, parked_at, retried) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (relay, notification_id) DO NOTHING",
            (self.relay, event.notification_id, event.aggregate_id, event.key, event.tenant, event.topic,
             event.reason, event.waits_for, event.parked_at.isoformat(), event.retried),
        )  # fmt: skip

    def all(self) -> list[ParkedEvent]:
        """Every parked event of this relay, in notification order."""
        rows = self.sql.rows(
            f"SELECT * FROM {self.name} WHERE relay = ? ORDER BY notification_id", (self.relay,)
        )
        return [
            ParkedEvent(int(r["notification_id"]), r["aggregate_id"], r["kafka_key"], r["tenant"], r["topic"],
                        r["reason"], None if r["waits_for"] is None else int(r["waits_for"]),
                        datetime.fromisoformat(r["parked_at"]), int(r["retried"]))
            for r in rows
        ]  # fmt: skip

    def failed_again(self, notification_id: int, reason: str) -> None:
        self.sql.run(
            f"UPDATE {self.name} SET reason = ?, waits_for = NULL, retried = retried + 1 "
            "WHERE relay = ? AND notification_id = ?",
            (reason, self.relay, notification_id),
        )

    def published(self, notification_id: int) -> None:
        self.sql.run(
            f"DELETE FROM {self.name} WHERE relay = ? AND notification_id = ?", (self.relay, notification_id)
        )


class HeldAggregates:
    """Which aggregates (by Kafka key and by aggregate id) have a parked event, and the earliest one."""

    def __init__(self, parked: list[ParkedEvent]) -> None:
        self.ids = {p.notification_id for p in parked}
        self.first: dict[str, int] = {}
        for p in parked:  # in notification order: the first one seen is the earliest
            self.first.setdefault(p.key, p.notification_id)
            self.first.setdefault(p.aggregate_id, p.notification_id)

    def waits_for(self, key: str, aggregate_id: str) -> int | None:
        return self.first.get(key) or self.first.get(aggregate_id)

    def hold(self, event: ParkedEvent) -> None:
        self.ids.add(event.notification_id)
        self.first.setdefault(event.key, event.notification_id)
        self.first.setdefault(event.aggregate_id, event.notification_id)
