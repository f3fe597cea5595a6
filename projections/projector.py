"""Applying events to the read models exactly once.

``apply`` runs inside a transaction: an event whose CloudEvent ``id`` is in
the ``seen`` table changes nothing (duplicates, re-deliveries, a rebuild
overlapping the live stream), otherwise its handler runs and its id is
recorded, in the same transaction as the rows it changed. Events of an
idempotent handler (projections.handlers.IDEMPOTENT: the SLA verdicts a
process emits) need no such record: applying one twice changes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from crmflow.projections.db import Cursor, Database
from crmflow.projections.handlers import HANDLERS, IDEMPOTENT
from crmflow.projections.tables import MODEL_TABLES, SCHEMA_VERSION, create_statements

# One row: the schema version the rm_ tables were built with (projections.tables.SCHEMA_VERSION).
SCHEMA_TABLE = "CREATE TABLE IF NOT EXISTS rm_schema (singleton INTEGER PRIMARY KEY, version INTEGER NOT NULL)"
SET_SCHEMA = ("INSERT INTO rm_schema (singleton, version) VALUES (1, %(v)s) "
              "ON CONFLICT (singleton) DO UPDATE SET version = %(v)s")  # fmt: skip


def create_tables(db: Database, prefix: str = "rm_", attempts: int = 5) -> None:
    for attempt in range(attempts):
        try:
            with db.transaction() as cur:
                fresh = prefix == "rm_" and not _exists(cur, "rm_opportunities")
                for statement in create_statements(prefix, db.postgres):
                    cur.execute(statement)
                if prefix == "rm_":
                    cur.execute(SCHEMA_TABLE)
                    # Tables from before the version was kept are version 1.
                    cur.execute("INSERT INTO rm_schema (singleton, version) VALUES (1, %(v)s) ON CONFLICT DO NOTHING",
                                {"v": SCHEMA_VERSION if fresh else 1})  # fmt: skip
            return
        except Exception as error:  # noqa: BLE001 - only the race below is retried
            # Replicas starting together all run CREATE TABLE IF NOT EXISTS; PostgreSQL
            # lets one win and may fail the others ("tuple concurrently updated", or a
            # pg_type unique violation). The tables exist then: try again.
            racing = "concurrently" in str(error) or "pg_type" in str(error)
            if not (db.postgres and racing) or attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1))


def _exists(cur: Cursor, table: str) -> bool:
    if cur.db.postgres:
        return cur.rows("SELECT to_regclass(%(t)s) IS NOT NULL AS present", {"t": table})[0]["present"]
    return bool(cur.rows("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = %(t)s", {"t": table}))


def schema_version(db: Database) -> int:
    """The schema version of the rm_ tables (create_tables has made them)."""
    return int(db.query("SELECT version FROM rm_schema WHERE singleton = 1")[0]["version"])


def apply(cur: Cursor, event: dict[str, Any], prefix: str = "rm_", *, check_seen: bool = True) -> bool:
    """Apply one event; False if it was seen before (or concerns no read model).

    ``check_seen=False`` is for a caller that records the ids itself and knows
    there are no duplicates (a rebuild's pass over the store, where each
    stored event comes once).
    """
    handler = HANDLERS.get(event.get("type", ""))
    if handler is None or not event.get("tenantid"):
        return False
    if event["type"] in IDEMPOTENT:
        # Same rows however often it runs (projections.handlers): nothing to dedupe, nothing to record.
        return bool(handler(cur, prefix, event))
    if check_seen and cur.execute(
        f"INSERT INTO {prefix}seen (event_id) VALUES (%(id)s) ON CONFLICT DO NOTHING", {"id": str(event["id"])}
    ) == 0:
        return False
    handler(cur, prefix, event)
    return True


def apply_all(db: Database, events: Iterable[dict[str, Any]], prefix: str = "rm_", batch: int = 2000) -> int:
    """Apply a stream of events in transactions of ``batch`` events; return how many changed something."""
    applied, pending = 0, []
    for event in events:
        pending.append(event)
        if len(pending) >= batch:
            applied += _apply_batch(db, pending, prefix)
            pending = []
    if pending:
        applied += _apply_batch(db, pending, prefix)
    return applied


def _apply_batch(db: Database, events: list[dict[str, Any]], prefix: str) -> int:
    with db.transaction() as cur:
        return sum(apply(cur, event, prefix) for event in events)


def _apply_fresh(db: Database, events: list[dict[str, Any]]) -> int:
    """A batch of the store's history into the rmb_ tables: ids recorded in one statement, not one each."""
    with db.transaction() as cur:
        applied = [e for e in events if apply(cur, e, "rmb_", check_seen=False)]
        cur.executemany("INSERT INTO rmb_seen (event_id) VALUES (%(id)s) ON CONFLICT DO NOTHING",
                        [{"id": str(e["id"])} for e in applied if e["type"] not in IDEMPOTENT])  # fmt: skip
    return len(applied)


def rebuild(db: Database, history: Callable[[int], Iterable[tuple[int, dict[str, Any]]]],
            tables: Iterable[str] | None = None) -> int:  # fmt: skip
    """Rebuild the read models (all, or the given tables) from the store's history, then swap them in at once.

    A partial rebuild dedupes with a scratch ``rmb_seen`` and keeps ``rm_seen``,
    which the live projector goes on using.

    ``history(after)`` yields (position, event) of the events stored after a
    position. The bulk of the history goes into fresh ``rmb_`` tables while
    the live projector keeps working; then, holding the write lock (so the
    live projector waits), the rebuild catches up with what was stored
    meanwhile and renames the tables into place in the same transaction. No
    half-built report is ever seen, and no event applied by the live
    projector during the rebuild is lost.
    """
    create_tables(db)
    # A partial rebuild still fills every rmb_ table (each handler writes where it writes) but swaps
    # in only the chosen ones; its rmb_seen is scratch. Tables of an older schema are all rebuilt:
    # a report may not read columns of two schemas.
    if schema_version(db) != SCHEMA_VERSION:
        tables = None
    swapped = list(MODEL_TABLES) if tables is None else sorted(set(tables) - {"seen"})
    with db.transaction() as cur:
        for name in MODEL_TABLES:
            cur.execute(f"DROP TABLE IF EXISTS rmb_{name}")
    create_tables(db, "rmb_")
    applied, last, pending = 0, 0, []
    with db.scratch_writes():  # a crash here only leaves rmb_ tables for the next rebuild to drop
        for position, event in history(0):
            pending.append(event)
            last = position
            if len(pending) >= 2000:
                applied += _apply_fresh(db, pending)
                pending = []
        applied += _apply_fresh(db, pending)
    with db.transaction() as cur:
        if db.postgres:
            # rm_seen first: the live projector touches it first, so neither waits on the other in a cycle.
            order = ["seen", *[n for n in MODEL_TABLES if n != "seen"], "positions"]
            cur.execute(f"LOCK TABLE {', '.join(f'rm_{n}' for n in order)} IN ACCESS EXCLUSIVE MODE")
        for _, event in history(last):
            applied += apply(cur, event, "rmb_")
        for name in swapped:
            cur.execute(f"DROP TABLE IF EXISTS rm_{name}")
            cur.execute(f"ALTER TABLE rmb_{name} RENAME TO rm_{name}")
        for name in MODEL_TABLES:
            cur.execute(f"DROP TABLE IF EXISTS rmb_{name}")  # the scratch tables of a partial rebuild
        if tables is None:
            cur.execute(SET_SCHEMA, {"v": SCHEMA_VERSION})
    return applied
