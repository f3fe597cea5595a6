"""The application service: runs catalogue commands against the event store.

Load, call the aggregates, save everything touched in one transaction, with the
command's metadata stamped on each event (tenant, caller, correlation and
causation ids, idempotency key). Optimistic concurrency comes from the store:
two writers of one aggregate version cannot both commit.
"""

from __future__ import annotations

import hashlib
import random
import re
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cached_property, lru_cache
from typing import Any
from uuid import UUID

from crmflow.aggregates.base import TenantAggregate
from crmflow.aggregates.catalog import command_spec
from crmflow.aggregates.clock import pinned_event_time, system_clock
from crmflow.aggregates.commanding import CommandContext, Payload
from crmflow.aggregates.envelope import event_meta, jsonable, to_cloudevent_dict
from crmflow.aggregates.errors import (
    AggregateNotFoundError,
    ConcurrencyConflictError,
    IdempotencyKeyReusedError,
    InvalidCommandError,
    InvalidValueError,
)
from crmflow.aggregates.idempotency import IdempotencyRecord, idempotency_record_id
from crmflow.aggregates.inbound import InboundEvent, inbound_id
from crmflow.aggregates.store import persistence_env
from eventsourcing.application import AggregateNotFoundError as StoreNotFound
from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError, InternalError, JSONTranscoder, Transcoding
from pydantic import ValidationError

TENANT_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


@dataclass(frozen=True)
class CommandRequest:
    """One command as a caller sends it."""

    name: str
    tenant: str
    data: Mapping[str, Any]
    caller: str = "anonymous"
    correlation_id: str | None = None
    causation_id: str | None = None
    idempotency_key: str | None = None
    # What else caused it, e.g. {"process": ..., "version": ..., "step": ...}.
    cause: Mapping[str, Any] | None = None


@dataclass
class CommandResult:
    command: str
    tenant: str
    aggregate_id: UUID
    stored_events: Sequence[Any] = ()
    replayed: bool = False  # True when an idempotency key returned the first result

    @cached_property
    def events(self) -> list[dict[str, Any]]:
        """The stored events as CloudEvents, built only when a caller reads them."""
        return [to_cloudevent_dict(e) for e in self.stored_events]


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


@lru_cache(maxsize=4096)
def check_tenant(tenant: str) -> None:
    # Cached: a service sees the same few tenants on every command.
    if not TENANT_PATTERN.match(tenant or ""):
        raise InvalidValueError(
            f"tenant {tenant!r} is not a valid tenant id: use 1-63 lower-case letters, "
            "digits, '-' or '_', starting with a letter or digit",
            field="tenant",
            value=tenant,
        )


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

    # Commands.

    def execute(
        self, request: CommandRequest, *, at: datetime | None = None, conflict_retries: int = 0
    ) -> CommandResult:
        """Run one command in its own transaction.

        A concurrency conflict is retried against fresh state up to
        ``conflict_retries`` times, then raised as ConcurrencyConflictError.
        """
        spec = command_spec(request.name)
        check_tenant(request.tenant)
        payload = validate_payload(spec.payload, request)
        request_hash = _request_hash(request.name, payload)
        attempt = 0
        while True:
            if request.idempotency_key:
                first = self._recorded_result(request, request_hash)
                if first is not None:
                    return first
            ctx = CommandContext(self.repository, request.tenant, at or self.clock())
            with pinned_event_time(ctx.at):
                primary = spec.handler(ctx, payload)
                events = _stamp(ctx, request)
                record = self._idempotency_record(request, request_hash, primary, events)
            try:
                self.save(*_created_first(ctx.touched.values()), record)
            except IntegrityError as error:
                # Lost a race. With a key, the winner may have been this very
                # request sent twice: replay its result instead of failing.
                if request.idempotency_key:
                    first = self._recorded_result(request, request_hash)
                    if first is not None:
                        return first
                taken = ctx.taken_id_error()
                if taken is not None:
                    raise taken from None
                attempt += 1
                if attempt > conflict_retries:
                    raise _conflict(ctx, error) from None
                continue
            return CommandResult(request.name, request.tenant, primary.id, events)

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
        loaded: dict[str, dict[UUID, TenantAggregate]] = {}  # per tenant
        contexts: list[CommandContext] = []
        results: list[CommandResult] = []
        moment = at or self.clock()
        with pinned_event_time(moment):
            for request in requests:
                spec = command_spec(request.name)
                check_tenant(request.tenant)
                payload = validate_payload(spec.payload, request)
                ctx = CommandContext(self.repository, request.tenant, moment,
                                     loaded.setdefault(request.tenant, {}))  # fmt: skip
                primary = spec.handler(ctx, payload)
                contexts.append(ctx)
                results.append(CommandResult(request.name, request.tenant, primary.id, _stamp(ctx, request)))
        try:
            self.save(*_created_first([a for tenant in loaded.values() for a in tenant.values()]))
        except IntegrityError as error:
            for ctx in contexts:
                taken = ctx.taken_id_error()
                if taken is not None:
                    raise taken from None
            raise _conflict(contexts[0], error) from None
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
        """The aggregate's events with their causes; [] if unknown or another tenant's."""
        events = list(self.events.get(UUID(str(aggregate_id))))
        if not events or (tenant is not None and events[0].tenant_id != tenant):
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
        try:
            aggregate = self.repository.get(UUID(str(aggregate_id)))
        except StoreNotFound:
            aggregate = None
        if not isinstance(aggregate, TenantAggregate) or aggregate.tenant_id != tenant:
            raise AggregateNotFoundError(
                f"{aggregate_id} not found in tenant {tenant}", aggregate_id=str(aggregate_id)
            )
        fields = {k: jsonable(v) for k, v in vars(aggregate).items() if not k.startswith("_")}
        return {"id": str(aggregate.id), "kind": aggregate.kind, "version": aggregate.version,
                "status": aggregate.status, **fields}  # fmt: skip

    # Idempotency.

    def _recorded_result(self, request: CommandRequest, request_hash: str) -> CommandResult | None:
        assert request.idempotency_key
        record_id = idempotency_record_id(request.tenant, request.idempotency_key)
        try:
            record = self.repository.get(record_id)
        except StoreNotFound:
            return None
        assert isinstance(record, IdempotencyRecord)
        if record.command != request.name or record.request_hash != request_hash:
            raise IdempotencyKeyReusedError(
                f"idempotency key {request.idempotency_key!r} was first used for "
                f"{record.command} with a different payload; use a new key for a new request",
                key=request.idempotency_key,
                first_command=record.command,
            )
        events = [
            e
            for aggregate_id, version in record.events
            for e in self.events.get(UUID(str(aggregate_id)), gt=int(version) - 1, lte=int(version))
        ]
        return CommandResult(request.name, request.tenant, record.aggregate_id, events, replayed=True)

    @staticmethod
    def _idempotency_record(
        request: CommandRequest, request_hash: str, primary: TenantAggregate, events: list[Any]
    ) -> Any:
        if not request.idempotency_key:
            return None
        record = IdempotencyRecord(
            tenant_id=request.tenant,
            key=request.idempotency_key,
            command=request.name,
            request_hash=request_hash,
            aggregate_id=primary.id,
            events=[[str(e.originator_id), e.originator_version] for e in events],
        )
        return record


def validate_payload(model: type[Payload], request: CommandRequest) -> Payload:
    try:
        data = request.data
        return model.model_validate(data if isinstance(data, dict) else dict(data))
    except ValidationError as error:
        problems = [
            f"{'.'.join(str(p) for p in e['loc']) or 'payload'}: {e['msg']}" for e in error.errors()
        ]
        raise InvalidCommandError(
            f"{request.name} payload is invalid: " + "; ".join(problems),
            command=request.name,
            errors=problems,
        ) from None


def _request_hash(name: str, payload: Payload) -> str:
    return hashlib.sha256(f"{name}\n{payload.model_dump_json()}".encode()).hexdigest()


def _stamp(ctx: CommandContext, request: CommandRequest) -> list[Any]:
    """Stamp the command's metadata on the events it produced; return those events.

    Events are frozen dataclasses; eventsourcing's mapper stores an event's
    whole ``__dict__``, so the metadata is stored with the event and comes
    back when it is read. Correlation and causation ids are stored only when
    they differ from the command id (``event_meta`` fills them in). The events
    stay pending on their aggregates: saving aggregates, not loose events,
    keeps eventsourcing on its fast path (and its caching and snapshots).
    """
    command_id = new_command_id()
    meta: dict[str, Any] = {
        "tenant": request.tenant,
        "command": request.name,
        "command_id": command_id,
        "caller": request.caller,
    }
    if request.correlation_id:
        meta["correlation_id"] = request.correlation_id
    if request.causation_id:
        meta["causation_id"] = request.causation_id
    if request.idempotency_key:
        meta["idempotency_key"] = request.idempotency_key
    if request.cause:
        meta["cause"] = dict(request.cause)
    events = []
    for aggregate in _created_first(ctx.touched.values()):
        for event in aggregate.pending_events:
            if "meta" not in vars(event):  # not stamped by an earlier command of a batch
                object.__setattr__(event, "meta", meta)
                events.append(event)
    return events


_random = random.Random()


def new_command_id() -> str:
    """A random version-4 UUID string.

    Command ids only need to be unique, not unguessable, so they come from
    the Mersenne Twister, at a fifth of the cost of uuid4's os.urandom.
    """
    bits = _random.getrandbits(128)
    bits = (bits & ~(0xF << 76)) | (0x4 << 76)  # version 4
    bits = (bits & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    h = f"{bits:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _created_first(aggregates: Collection[TenantAggregate]) -> Collection[TenantAggregate]:
    """Aggregates created by the command first, so that a consumer reads
    AccountCreated before the LeadConverted that refers to it."""
    if len(aggregates) < 2:
        return aggregates
    return sorted(aggregates, key=lambda a: a.version != len(a.pending_events))


def _conflict(ctx: CommandContext, error: Exception) -> ConcurrencyConflictError:
    touched = ", ".join(f"{a.kind} {a.short_id}" for a in ctx.touched.values())
    return ConcurrencyConflictError(
        f"another writer changed {touched} since it was loaded; nothing was stored, "
        "reload and try again",
        aggregates=[str(a.id) for a in ctx.touched.values()],
        cause=str(error),
    )
