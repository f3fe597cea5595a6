"""Reading one stored aggregate by id: the aggregate, or None when nothing is stored under the id.

crmflow looks up many ids that may hold nothing (a duplicate key, a tenant's rules, an idempotency
record, a rotation slot); ``find`` answers those with None instead of each caller catching
eventsourcing's ``AggregateNotFoundError``.

It replays with ``replayed`` rather than eventsourcing's ``project_aggregate``: that one asserts a
``typing.Protocol`` on every event, and a runtime Protocol check walks the protocol's members each
time on Python 3.11, a visible share of a process worker's CPU per lead (benchmarks/README.md).
crmflow's stored events are all eventsourcing aggregate events, which mutate.

``find_many`` reads several aggregates in one query (the process worker's leads of a batch): one
statement per store instead of one per id, written here because eventsourcing's recorders select
one originator at a time. On a store it does not know it reads them one by one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError as StoreNotFound
from eventsourcing.application import Application, Repository
from eventsourcing.persistence import AggregateRecorder, StoredEvent
from eventsourcing.postgres import PostgresAggregateRecorder
from eventsourcing.sqlite import SQLiteAggregateRecorder
from psycopg.sql import SQL, Identifier


def replayed(aggregate: Any, events: Iterable[Any]) -> Any:
    """The aggregate after ``events``, in order (None before its created event)."""
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


def find(repository: Repository[UUID], aggregate_id: UUID, version: int | None = None) -> Any:
    """The aggregate stored under ``aggregate_id`` (at ``version``, if given), or None."""
    try:
        return repository.get(aggregate_id, version=version, projector_func=replayed)
    except StoreNotFound:
        return None


def find_many(app: Application[UUID], aggregate_ids: Collection[UUID]) -> dict[UUID, Any]:
    """The aggregates stored under ``aggregate_ids``, by id; an id nothing is stored under is left out."""
    histories: dict[UUID, list[StoredEvent]] = defaultdict(list)
    for stored in _select_many(app.recorder, sorted(set(aggregate_ids))):
        histories[UUID(str(stored.originator_id))].append(stored)
    found = {}
    for aggregate_id, history in histories.items():
        aggregate = replayed(None, (app.mapper.to_domain_event(stored) for stored in history))
        if aggregate is not None:
            found[aggregate_id] = aggregate
    return found


def _select_many(recorder: AggregateRecorder, ids: list[UUID]) -> list[StoredEvent]:
    """Every stored event of ``ids``, each originator's in version order."""
    if not ids:
        return []
    if isinstance(recorder, SQLiteAggregateRecorder):
        statement = (f"SELECT * FROM {recorder.events_table_name} WHERE originator_id IN "
                     f"({','.join('?' * len(ids))}) ORDER BY originator_id, originator_version")  # fmt: skip
        with recorder.datastore.transaction(commit=False) as cursor:
            cursor.execute(statement, [aggregate_id.hex for aggregate_id in ids])
            rows = cursor.fetchall()
        return [StoredEvent(originator_id=recorder.convert_originator_id(row["originator_id"]),
                            originator_version=row["originator_version"], topic=row["topic"],
                            state=row["state"]) for row in rows]  # fmt: skip
    if isinstance(recorder, PostgresAggregateRecorder):
        statement = SQL("SELECT * FROM {schema}.{table} WHERE originator_id = ANY(%s) "
                        "ORDER BY originator_id, originator_version").format(
            schema=Identifier(recorder.datastore.schema), table=Identifier(recorder.events_table_name))  # fmt: skip
        with recorder.datastore.get_connection() as connection, connection.cursor() as cursor:
            cursor.execute(statement, [ids])
            rows = cursor.fetchall()
        return [StoredEvent(originator_id=row["originator_id"], originator_version=row["originator_version"],
                            topic=row["topic"], state=bytes(row["state"])) for row in rows]  # fmt: skip
    return [stored for aggregate_id in ids for stored in recorder.select_events(aggregate_id)]
