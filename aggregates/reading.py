"""Reading one stored aggregate by id: the aggregate, or None when nothing is stored under the id.

crmflow looks up many ids that may hold nothing (a duplicate key, a tenant's rules, an idempotency
record, a rotation slot); ``find`` answers those with None instead of each caller catching
eventsourcing's ``AggregateNotFoundError``.

It replays with ``replayed`` rather than eventsourcing's ``project_aggregate``: that one asserts a
``typing.Protocol`` on every event, and a runtime Protocol check walks the protocol's members each
time on Python 3.11, a visible share of a process worker's CPU per lead (benchmarks/README.md).
crmflow's stored events are all eventsourcing aggregate events, which mutate.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError as StoreNotFound
from eventsourcing.application import Repository


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
