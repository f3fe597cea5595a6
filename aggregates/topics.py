"""Stored topic names: crmflow's own, and the names release 0.1 stored.

Every stored event carries its class's topic (``crmflow.aggregates.lead:Lead.LeadCreated``;
a created event also carries its aggregate's topic in its state). Release 0.1
installed the folders as top-level packages, so its stores say
``aggregates.lead:Lead.LeadCreated``. Those old names are registered with
eventsourcing when crmflow is imported, so an old store is read as it is; the
one-time ``crmflow store migrate`` rewrites them to the current names, so that
SQL on the store (and filters by topic) see one name per class.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from eventsourcing.application import Application
from eventsourcing.utils import register_topic

NAMESPACE = "crmflow"
# Release 0.1's top-level packages, each now under the crmflow namespace.
LEGACY_PACKAGES = ("aggregates", "processes", "projections", "workers")


class _Package:
    """What eventsourcing needs to resolve a renamed package: the name it now has."""

    def __init__(self, name: str) -> None:
        self.__name__ = name


def register_legacy_topics() -> None:
    """Resolve ``aggregates.lead:Lead.LeadCreated`` as ``crmflow.aggregates.lead:Lead.LeadCreated``.

    Registered as package names, not modules, so that nothing is imported
    before a stored topic asks for it.
    """
    for package in LEGACY_PACKAGES:
        register_topic(package, _Package(f"{NAMESPACE}.{package}"))  # type: ignore[arg-type]


def legacy_names(topic: str) -> list[str]:
    """The topic and the name release 0.1 stored it under (for filters that must match both)."""
    if topic.startswith(f"{NAMESPACE}."):
        return [topic, topic[len(NAMESPACE) + 1 :]]
    return [topic]


def current_topic(topic: str) -> str:
    """The current name of a stored topic (unchanged when it is current already)."""
    package = topic.split(".", 1)[0].split(":", 1)[0]
    return f"{NAMESPACE}.{topic}" if package in LEGACY_PACKAGES else topic


@dataclass(frozen=True)
class Migration:
    events: int  # stored events whose topic was (or would be) rewritten
    states: int  # of those, created events whose aggregate topic in the state was rewritten too


def migrate_stored_topics(app: Application, *, dry_run: bool = False, batch: int = 1000,
                          progress: Callable[[int], None] | None = None) -> Migration:  # fmt: skip
    """Rewrite release 0.1's topic names in the store, in batches, each in one transaction.

    Idempotent: a second run finds nothing. Safe beside running workers: both
    names resolve to the same class, and a row is rewritten in place (its
    notification id, and so every tracked position, stays).
    """
    store = _StoreTable(app)
    events = states = 0
    while True:
        with store.datastore.transaction(commit=True) as cursor:
            rows = store.legacy_rows(cursor, batch, offset=events if dry_run else 0)
            for originator_id, version, topic, state in rows:
                new_state = _rewrite_state(app, state)
                states += new_state is not state
                if not dry_run:
                    store.update(cursor, originator_id, version, current_topic(topic), new_state)
        events += len(rows)
        if progress is not None and rows:
            progress(len(rows))
        if len(rows) < batch:
            return Migration(events, states)


def _rewrite_state(app: Application, state: bytes) -> bytes:
    """The state with a created event's ``originator_topic`` renamed; the same object when unchanged."""
    mapper = app.mapper
    plain = mapper.cipher.decrypt(state) if mapper.cipher else state
    plain = mapper.compressor.decompress(plain) if mapper.compressor else plain
    if b'"originator_topic"' not in plain:
        return state
    fields = orjson.loads(plain)
    renamed = current_topic(fields["originator_topic"])
    if renamed == fields["originator_topic"]:
        return state
    fields["originator_topic"] = renamed
    plain = orjson.dumps(fields)
    plain = mapper.compressor.compress(plain) if mapper.compressor else plain
    return mapper.cipher.encrypt(plain) if mapper.cipher else plain


class _StoreTable:
    """The stored-events table of an SQLite or PostgreSQL store, as the migration needs it.

    Written here because eventsourcing has no API to change a stored event:
    its recorders only insert and select.
    """

    def __init__(self, app: Application) -> None:
        recorder = app.recorder
        self.datastore = recorder.datastore
        module = type(recorder).__module__
        if module == "eventsourcing.sqlite":
            table, mark = f'"{recorder.events_table_name}"', "?"
        elif module == "eventsourcing.postgres":
            table, mark = f'"{self.datastore.schema}"."{recorder.events_table_name}"', "%s"
        else:
            raise ValueError(f"crmflow store migrate works on SQLite and PostgreSQL stores, not {module}")
        legacy = " OR ".join(f"topic LIKE {mark}" for _ in LEGACY_PACKAGES)
        self.patterns = tuple(f"{package}.%" for package in LEGACY_PACKAGES)
        self.select = (f"SELECT originator_id, originator_version, topic, state FROM {table} WHERE {legacy} "
                       f"ORDER BY originator_id, originator_version LIMIT {mark} OFFSET {mark}")  # fmt: skip
        self.rewrite = (f"UPDATE {table} SET topic = {mark}, state = {mark} "
                        f"WHERE originator_id = {mark} AND originator_version = {mark}")  # fmt: skip

    def legacy_rows(self, cursor: Any, limit: int, offset: int) -> list[tuple[Any, int, str, bytes]]:
        cursor.execute(self.select, (*self.patterns, limit, offset))
        return [_row(r) for r in cursor.fetchall()]

    def update(self, cursor: Any, originator_id: Any, version: int, topic: str, state: bytes) -> None:
        cursor.execute(self.rewrite, (topic, state, originator_id, version))


def _row(row: Any) -> tuple[Any, int, str, bytes]:
    # sqlite3.Row and psycopg's dict rows both index by column name.
    return row["originator_id"], row["originator_version"], row["topic"], bytes(row["state"])
