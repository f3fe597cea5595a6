"""The unit of work: commands run against aggregates held in memory, then stored in one transaction.

Every command reaches the store through it; only the commit policy differs:
- ``CrmApplication.execute``: a unit of one, run again on fresh state after a
  concurrency conflict, up to the caller's number of retries;
- ``CrmApplication.execute_batch``: all or nothing, a refusal refuses the batch;
- the process runtime: each command accepted or refused on its own
  (``rollback_refused``), the accepted ones stored together with the
  instances' records. A handler that changed an aggregate and then refused
  leaves that change in memory: if the aggregate was fresh it is dropped with
  the refused command, but if an earlier command of the unit changed it too
  there is no clean copy to go back to, so the unit is spoiled
  (UnitSpoiledError) and the caller runs the work again one unit per command.

Each command's events get its metadata (tenant, command, a new command id,
caller, correlation and causation ids, idempotency key, cause) as they are
made (crmflow.aggregates.metadata). Later commands of a unit see what earlier
ones created (a lead created and assigned in one batch).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any
from uuid import UUID

from pydantic import ValidationError

from crmflow.aggregates.base import TenantAggregate
from crmflow.aggregates.catalog import command_spec
from crmflow.aggregates.clock import pinned_event_time
from crmflow.aggregates.commanding import CommandContext, CommandSpec, Payload, payload_problems
from crmflow.aggregates.envelope import to_cloudevent_dict
from crmflow.aggregates.errors import (
    ConcurrencyConflictError,
    DomainError,
    IdempotencyKeyReusedError,
    InvalidCommandError,
)
from crmflow.aggregates.idempotency import IdempotencyRecord, idempotency_record_id
from crmflow.aggregates.json_text import lone_surrogate_at
from crmflow.aggregates.limits import LimitExceeded, check_json_value
from crmflow.aggregates.metadata import event_metadata
from crmflow.aggregates.reading import find
from crmflow.aggregates.tenants import check_tenant

if TYPE_CHECKING:
    from crmflow.aggregates.application import CrmApplication


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


class UnitSpoiledError(RuntimeError):
    """A refused command had already changed an aggregate that the unit holds changes of."""


@dataclass(frozen=True)
class CheckedCommand:
    """A request whose command exists, whose tenant is valid and whose payload is checked."""

    request: CommandRequest
    spec: CommandSpec
    payload: Payload

    @classmethod
    def of(cls, request: CommandRequest) -> CheckedCommand:
        spec = command_spec(request.name)
        check_tenant(request.tenant)
        return cls(request, spec, validate_payload(spec.payload, request))

    @cached_property
    def request_hash(self) -> str:
        """What an idempotency key is bound to: the command and its payload."""
        return hashlib.sha256(f"{self.request.name}\n{self.payload.model_dump_json()}".encode()).hexdigest()


class UnitOfWork:
    def __init__(self, app: CrmApplication, at: datetime, *, rollback_refused: bool = False) -> None:
        self.app = app
        self.at = at
        self.rollback_refused = rollback_refused
        self.loaded: dict[str, dict[UUID, TenantAggregate]] = {}  # per tenant
        self.records: list[Any] = []  # idempotency records, rotation slots: stored with the commands
        self.replays: dict[tuple[str, str], CommandResult] = {}  # by (tenant, idempotency key)
        # Whether a request's idempotency key is new by construction (the process runtime knows: a
        # new instance's commands). Its record is then stored without being looked up first; were one
        # there after all, the commit collides with it and nothing of the unit is stored.
        self.fresh: Callable[[CommandRequest], bool] = lambda _request: False
        # Whether a keyed request needs no idempotency record: what else is stored with the unit (a
        # process instance's state) already keeps a replay from running it twice.
        self.unrecorded: Callable[[CommandRequest], bool] = lambda _request: False
        self.contexts: list[CommandContext] = []
        # Pending events each held aggregate had after the last accepted command that touched it.
        self.accepted_pending: dict[UUID, int] = {}

    def __bool__(self) -> bool:
        return bool(self.records) or any(a.pending_events for t in self.loaded.values() for a in t.values())

    def run(self, command: CommandRequest | CheckedCommand) -> CommandResult:
        """Run one command against the unit's aggregates; DomainError if refused.

        With an idempotency key used before (in this unit or stored), the first result, replayed.
        """
        command = command if isinstance(command, CheckedCommand) else CheckedCommand.of(command)
        request = command.request
        key = (request.tenant, request.idempotency_key) if request.idempotency_key else None
        if key is not None:
            earlier = self.replays.get(key) or (None if self.fresh(request) else recorded_result(self.app, command))
            if earlier is not None:
                return earlier
        held = self.loaded.setdefault(request.tenant, {})
        # With rollback, the command loads into a copy: what a refused command loaded or created is dropped with it.
        ctx = CommandContext(self.app.repository, request.tenant, self.at, dict(held) if self.rollback_refused else held)
        meta = command_metadata(request)
        with pinned_event_time(self.at), event_metadata(meta):
            try:
                primary = command.spec.handler(ctx, command.payload)
            except DomainError:
                if self.rollback_refused:
                    self._check_unspoiled(ctx, held)
                raise
            # Internal records a handler keeps (the duplicate key index) are stored, not part of the answer.
            events = [e for a in created_first(ctx.touched.values()) for e in a.pending_events
                      if e.meta is meta and e.published]  # fmt: skip
            if key is not None and not self.unrecorded(request):
                self.records.append(idempotency_record(command, primary, events))
        if self.rollback_refused:
            held.update(ctx.loaded)
            for aggregate_id, aggregate in ctx.touched.items():
                self.accepted_pending[aggregate_id] = len(aggregate.pending_events)
        self.contexts.append(ctx)
        if key is not None:
            self.replays[key] = CommandResult(request.name, request.tenant, primary.id, events, replayed=True)
        return CommandResult(request.name, request.tenant, primary.id, events)

    def add(self, record: Any) -> None:
        """Another aggregate to store with the commands (a round-robin choice, say)."""
        self.records.append(record)

    def hold(self, aggregates: Iterable[TenantAggregate]) -> None:
        """Aggregates read ahead (the process worker reads a batch's leads in one query): the unit's
        commands load them from here, as if an earlier command of the unit had loaded them. Only
        what a command changes is stored; one a refused command changed spoils the unit, as any
        aggregate held by the unit does."""
        for aggregate in aggregates:
            self.loaded.setdefault(aggregate.tenant_id, {}).setdefault(aggregate.id, aggregate)

    def commit(self, *also: Any) -> None:
        """Store every accepted command's events, the added records and ``also``: all, or none.

        IntegrityError when another writer changed one of them first (``conflict`` explains it).
        """
        changed = [a for tenant in self.loaded.values() for a in tenant.values() if a.pending_events]
        self.app.save(*created_first(changed), *self.records, *also)

    def conflict(self, error: Exception) -> DomainError:
        """Why a commit was refused: an id a command chose was taken, or another writer came first."""
        for ctx in self.contexts:
            taken = ctx.taken_id_error()
            if taken is not None:
                return taken
        touched = [a for ctx in self.contexts for a in ctx.touched.values()]
        return ConcurrencyConflictError(
            f"another writer changed {', '.join(f'{a.kind} {a.short_id}' for a in touched)} since it was "
            "loaded; nothing was stored, reload and try again",
            aggregates=[str(a.id) for a in touched],
            cause=str(error),
        )

    def _check_unspoiled(self, ctx: CommandContext, held: dict[UUID, TenantAggregate]) -> None:
        for aggregate_id, aggregate in ctx.touched.items():
            if aggregate_id in held and len(aggregate.pending_events) != self.accepted_pending.get(aggregate_id, 0):
                raise UnitSpoiledError(
                    f"{aggregate.kind} {aggregate_id} was changed by a command "
                    "that was then refused, after earlier commands of the unit had changed it"
                )


class PayloadOverLimitError(InvalidCommandError):
    """The payload is over one of crmflow's limits (aggregates/limits.py); details name it."""

    code = "limit_exceeded"


def validate_payload(model: type[Payload], request: CommandRequest) -> Payload:
    data = request.data
    if not isinstance(data, Mapping):
        raise InvalidCommandError(
            f"{request.name} payload must be a JSON object, not {type(data).__name__}", command=request.name
        )
    data = data if isinstance(data, dict) else dict(data)
    # The same limits as every other entry: what is stored must be what the relay can publish.
    try:
        check_json_value(data)
    except LimitExceeded as error:
        raise PayloadOverLimitError(
            f"{request.name} payload is over a limit: {error}",
            command=request.name,
            limit=error.limit.name,
            limit_value=error.limit.value,
        ) from None
    except ValueError as error:  # NaN or Infinity
        raise InvalidCommandError(
            f"{request.name} payload is invalid: {error}", command=request.name
        ) from None
    at = lone_surrogate_at(data)
    if at is not None:
        raise InvalidCommandError(
            f"{request.name} payload is invalid: {at} holds a lone UTF-16 surrogate, "
            "which is not Unicode text",
            command=request.name,
        )
    try:
        return model.model_validate(data)
    except ValidationError as error:
        problems = payload_problems(model, error)
        raise InvalidCommandError(
            f"{request.name} payload is invalid: " + "; ".join(problems), command=request.name, errors=problems
        ) from None


def command_metadata(request: CommandRequest) -> dict[str, Any]:
    """What each event of the command carries. Correlation and causation ids are stored only when
    they differ from the command id (``envelope.event_meta`` fills them in)."""
    meta: dict[str, Any] = {
        "tenant": request.tenant, "command": request.name, "command_id": new_command_id(), "caller": request.caller,
    }  # fmt: skip
    if request.correlation_id:
        meta["correlation_id"] = request.correlation_id
    if request.causation_id:
        meta["causation_id"] = request.causation_id
    if request.idempotency_key:
        meta["idempotency_key"] = request.idempotency_key
    if request.cause:
        meta["cause"] = dict(request.cause)
    return meta


def recorded_result(app: CrmApplication, command: CheckedCommand) -> CommandResult | None:
    """The first result of a keyed request, if the key was used before; refused if for another request."""
    request = command.request
    assert request.idempotency_key
    record = find(app.repository, idempotency_record_id(request.tenant, request.idempotency_key))
    if record is None:
        return None
    assert isinstance(record, IdempotencyRecord)
    if record.command != request.name or record.request_hash != command.request_hash:
        raise IdempotencyKeyReusedError(
            f"idempotency key {request.idempotency_key!r} was first used for "
            f"{record.command} with a different payload; use a new key for a new request",
            key=request.idempotency_key,
            first_command=record.command,
        )
    events = [
        e
        for aggregate_id, version in record.events
        for e in app.events.get(UUID(str(aggregate_id)), gt=int(version) - 1, lte=int(version))
    ]
    return CommandResult(request.name, request.tenant, record.aggregate_id, events, replayed=True)


def idempotency_record(command: CheckedCommand, primary: TenantAggregate, events: list[Any]) -> IdempotencyRecord:
    request = command.request
    assert request.idempotency_key
    return IdempotencyRecord(
        tenant_id=request.tenant,
        key=request.idempotency_key,
        command=request.name,
        request_hash=command.request_hash,
        aggregate_id=primary.id,
        events=[[str(e.originator_id), e.originator_version] for e in events],
    )


_random = random.Random()


def new_command_id() -> str:
    """A random version-4 UUID string.

    Command ids only need to be unique, not unguessable, so they come from
    the Mersenne Twister, not from uuid4's os.urandom (benchmarks/README.md).
    """
    bits = _random.getrandbits(128)
    bits = (bits & ~(0xF << 76)) | (0x4 << 76)  # version 4
    bits = (bits & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    h = f"{bits:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def created_first(aggregates: Collection[TenantAggregate]) -> Collection[TenantAggregate]:
    """Aggregates created by the command first, so that a consumer reads
    AccountCreated before the LeadConverted that refers to it."""
    if len(aggregates) < 2:
        return aggregates
    return sorted(aggregates, key=lambda a: a.version != len(a.pending_events))
