"""The application service: runs catalogue commands against the event store.

Commands run through a unit of work (crmflow.aggregates.unit_of_work): load,
call the aggregates, save everything touched in one transaction, each event
with its command's metadata. Optimistic concurrency comes from the store: two
writers of one aggregate version cannot both commit.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import Application, ProcessingEvent
from eventsourcing.domain import BaseAggregate
from eventsourcing.persistence import IntegrityError, InternalError, JSONTranscoder, Transcoding

from crmflow.aggregates.base import TenantAggregate
from crmflow.aggregates.clock import system_clock
from crmflow.aggregates.envelope import event_meta, jsonable, to_cloudevent_dict
from crmflow.aggregates.errors import AggregateNotFoundError, ConcurrencyConflictError, InvalidCommandError
from crmflow.aggregates.ids import stored_candidates
from crmflow.aggregates.inbound import InboundEvent, inbound_id
from crmflow.aggregates.reading import find
from crmflow.aggregates.store import persistence_env
from crmflow.aggregates.unit_of_work import (
    CheckedCommand,
    CommandRequest,
    CommandResult,
    UnitOfWork,
    recorded_result,
)

# Callers send requests and read results through the application: re-exported.
__all__ = ["CommandRequest", "CommandResult", "CrmApplication", "HistoryEntry"]


@dataclass(frozen=True)
class HistoryEntry:
    """One stored event of an aggregate and what caused it."""

    version: int
    type: str
    time: datetime
    data: dict[str, Any]
    meta: dict[str, Any]


class DateAsISO(Transcoding):
    """Close dates and payment dates are calendar dates, stored as YYYY-MM-DD."""

    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


class CrmApplication(Application[UUID]):
    """crmflow's event store and command executor."""

    name = "crmflow"

    def __init__(
        self,
        database_url: str | None = None,
        *,
        clock: Callable[[], datetime] = system_clock,
        env: Mapping[str, str] | None = None,
    ) -> None:
        settings = {**persistence_env(database_url), **(env or {})}
        for attempt in range(5):
            try:
                super().__init__(env=settings)
                break
            except InternalError as error:
                # Workers starting together all run CREATE TABLE IF NOT EXISTS;
                # PostgreSQL lets one win and may fail the others with "tuple
                # concurrently updated". The tables exist then: try again.
                if "concurrently" not in str(error) or attempt == 4:
                    raise
                time.sleep(0.05 * (attempt + 1))
        self.clock = clock

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:  # type: ignore[override]
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())

    def save(self, *objs: Any, **kwargs: Any) -> Any:
        """eventsourcing's ``save``, collecting aggregates' events without its ``typing.Protocol`` checks.

        ``ProcessingEvent.collect_events`` checks two runtime Protocols per object saved, which on
        Python 3.11 walk each protocol's members every time: a visible share of a process worker's CPU
        per lead (benchmarks/README.md). An aggregate is known by its class here; anything else (a
        domain event saved on its own) goes the library's way.
        """
        processing_event: ProcessingEvent[UUID] = ProcessingEvent()
        for obj in objs:
            if isinstance(obj, BaseAggregate):
                processing_event.events.extend(obj.collect_events())
                processing_event.aggregates[obj.id] = obj
            elif obj is not None:
                processing_event.collect_events(obj)
        processing_event.saved_kwargs.update(kwargs)
        recordings = self._record(processing_event)
        self._take_snapshots(processing_event)
        self._notify(recordings)
        self.notify(processing_event.events)  # type: ignore[arg-type]  # eventsourcing's deprecated hook
        return recordings

    # Commands.

    def execute(
        self, request: CommandRequest, *, at: datetime | None = None, conflict_retries: int = 0
    ) -> CommandResult:
        """Run one command in its own transaction.

        A concurrency conflict is retried against fresh state up to
        ``conflict_retries`` times, then raised as ConcurrencyConflictError.
        """
        command = CheckedCommand.of(request)  # a bad request is refused once, before any attempt
        for attempt in range(conflict_retries + 1):
            unit = UnitOfWork(self, at or self.clock())
            result = unit.run(command)
            if result.replayed:
                return result
            try:
                unit.commit()
                return result
            except IntegrityError as error:
                # Lost a race. With a key, the winner may have been this very
                # request sent twice: replay its result instead of failing.
                first = recorded_result(self, command) if request.idempotency_key else None
                if first is not None:
                    return first
                refusal = unit.conflict(error)
                if not isinstance(refusal, ConcurrencyConflictError) or attempt == conflict_retries:
                    raise refusal from None
        raise AssertionError("unreachable: the last attempt returns or raises")

    def execute_batch(
        self, requests: Sequence[CommandRequest], *, at: datetime | None = None
    ) -> list[CommandResult]:
        """Run many commands in one transaction: all are stored, or none.

        Later commands see what earlier ones created (a lead created and
        assigned in one batch). Idempotency keys belong to single commands.
        """
        if any(r.idempotency_key for r in requests):
            raise InvalidCommandError(
                "idempotency keys are for single commands: send keyed commands one by one"
            )
        unit = UnitOfWork(self, at or self.clock())
        results = [unit.run(request) for request in requests]
        try:
            unit.commit()
        except IntegrityError as error:
            raise unit.conflict(error) from None
        return results

    # Events from other services.

    def accept_inbound(self, documents: Sequence[tuple[str, dict[str, Any]]]) -> list[bool]:
        """Store checked inbound CloudEvents ``(tenant, document)``; one transaction when possible.

        Returns, per document, True if it was stored now and False if the
        same event (tenant, source, id) was stored before: duplicates are
        dropped, never stored twice.
        """
        fresh: dict[UUID, tuple[str, dict[str, Any]]] = {}
        order: list[UUID] = []
        for tenant, document in documents:
            aggregate_id = inbound_id(tenant, str(document["source"]), str(document["id"]))
            order.append(aggregate_id)
            fresh.setdefault(aggregate_id, (tenant, document))
        stored = set(fresh)
        try:
            self.save(*(InboundEvent.accept(doc, tenant) for tenant, doc in fresh.values()))
        except IntegrityError:
            # Some were stored before: one transaction each finds which.
            stored = set()
            for aggregate_id, (tenant, document) in fresh.items():
                try:
                    self.save(InboundEvent.accept(document, tenant))
                except IntegrityError:
                    continue
                stored.add(aggregate_id)
        result = []
        for aggregate_id in order:
            result.append(aggregate_id in stored)
            stored.discard(aggregate_id)  # a second copy in the same batch is a duplicate
        return result

    # Queries: plain data, never aggregates.

    def history(self, aggregate_id: UUID | str, tenant: str | None = None) -> list[HistoryEntry]:
        """The aggregate's events with their causes; [] if unknown or another tenant's.

        With a tenant, ``aggregate_id`` is that tenant's id: as stored, or as chosen (crmflow.aggregates.ids).
        """
        events = self._own_events(UUID(str(aggregate_id)), tenant)
        if not events:
            return []
        entries = []
        for event in events:
            cloud = to_cloudevent_dict(event)
            entries.append(
                HistoryEntry(
                    event.originator_version, cloud["type"], event.timestamp, cloud["data"],
                    event_meta(event),
                )
            )  # fmt: skip
        return entries

    def state(self, aggregate_id: UUID | str, tenant: str) -> dict[str, Any]:
        """The aggregate's current fields as plain data."""
        aggregate = None
        for candidate in stored_candidates(tenant, UUID(str(aggregate_id))):
            aggregate = find(self.repository, candidate)
            if isinstance(aggregate, TenantAggregate) and aggregate.tenant_id == tenant:
                break
        if not isinstance(aggregate, TenantAggregate) or aggregate.tenant_id != tenant:
            raise AggregateNotFoundError(
                f"{aggregate_id} not found in tenant {tenant}", aggregate_id=str(aggregate_id)
            )
        fields = {k: jsonable(v) for k, v in vars(aggregate).items() if not k.startswith("_")}
        return {"id": str(aggregate.id), "kind": aggregate.kind, "version": aggregate.version,
                "status": aggregate.status, **fields}  # fmt: skip

    def _own_events(self, aggregate_id: UUID, tenant: str | None) -> list[Any]:
        if tenant is None:
            return list(self.events.get(aggregate_id))
        for candidate in stored_candidates(tenant, aggregate_id):
            events = list(self.events.get(candidate))
            if events and events[0].tenant_id == tenant:
                return events
        return []
