"""Many commands, each accepted or refused on its own, stored in one transaction.

The process worker runs every command of one Kafka poll in a session: one
write transaction per poll instead of one per command (plus the instances'
records, which ride along in ``commit``). On SQLite that is what lets the
engine keep up while the API writes too: every write transaction competes for
the one write lock, and a writer that finds it taken backs off for
milliseconds.

Unlike ``execute_batch``, a refusal refuses only its own command: it raises
DomainError and the session goes on without it. A handler that changed an
aggregate and then refused would leave that change in memory; if the aggregate
was fresh, it is dropped with the refused command, but if an earlier command of
the session had changed it too, there is no clean copy to go back to, so the
session is spoiled: SessionSpoiledError, and the caller runs the work again
one transaction per command.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from crmflow.aggregates.application import (
    CommandRequest,
    CommandResult,
    CrmApplication,
    _created_first,
    _request_hash,
    _stamp,
    check_tenant,
    validate_payload,
)
from crmflow.aggregates.base import TenantAggregate
from crmflow.aggregates.catalog import command_spec
from crmflow.aggregates.clock import pinned_event_time
from crmflow.aggregates.commanding import CommandContext
from crmflow.aggregates.errors import DomainError


class SessionSpoiledError(RuntimeError):
    """A refused command had already changed an aggregate that the session holds changes of."""


class CommandSession:
    def __init__(self, app: CrmApplication, at: datetime) -> None:
        self.app = app
        self.at = at
        self.loaded: dict[str, dict[UUID, TenantAggregate]] = {}  # per tenant, as execute_batch keeps them
        self.records: list[Any] = []  # idempotency records, rotation slots: stored with the commands
        self.results: dict[tuple[str, str], CommandResult] = {}  # by (tenant, idempotency key)
        # Pending events each held aggregate had after the last accepted command that touched it.
        self.accepted_pending: dict[UUID, int] = {}

    def __bool__(self) -> bool:
        return bool(self.records) or any(a.pending_events for t in self.loaded.values() for a in t.values())

    def execute(self, request: CommandRequest) -> CommandResult:
        """Run one command against the session's aggregates; DomainError if refused."""
        spec = command_spec(request.name)
        check_tenant(request.tenant)
        payload = validate_payload(spec.payload, request)
        request_hash = _request_hash(request.name, payload)
        key = (request.tenant, request.idempotency_key) if request.idempotency_key else None
        if key is not None:
            earlier = self.results.get(key) or self.app._recorded_result(request, request_hash)
            if earlier is not None:
                return earlier
        held = self.loaded.setdefault(request.tenant, {})
        # The command loads into a copy: what a refused command loaded or created is dropped with it.
        ctx = CommandContext(self.app.repository, request.tenant, self.at, dict(held))
        with pinned_event_time(self.at):
            try:
                primary = spec.handler(ctx, payload)
            except DomainError:
                self._check_unspoiled(ctx, held)
                raise
            events = _stamp(ctx, request)
            record = self.app._idempotency_record(request, request_hash, primary, events)
        held.update(ctx.loaded)
        for aggregate_id, aggregate in ctx.touched.items():
            self.accepted_pending[aggregate_id] = len(aggregate.pending_events)
        result = CommandResult(request.name, request.tenant, primary.id, events)
        if record is not None and key is not None:
            self.records.append(record)
            self.results[key] = CommandResult(request.name, request.tenant, primary.id, events, replayed=True)
        return result

    def add(self, record: Any) -> None:
        """Another aggregate to store with the commands (a round-robin choice, say)."""
        self.records.append(record)

    def commit(self, *also: Any) -> None:
        """Store every accepted command's events, the added records and ``also``: all, or none.

        IntegrityError when another writer changed one of them first.
        """
        changed = [a for tenant in self.loaded.values() for a in tenant.values() if a.pending_events]
        self.app.save(*_created_first(changed), *self.records, *also)

    def _check_unspoiled(self, ctx: CommandContext, held: dict[UUID, TenantAggregate]) -> None:
        for aggregate_id, aggregate in ctx.touched.items():
            if aggregate_id in held and len(aggregate.pending_events) != self.accepted_pending.get(aggregate_id, 0):
                raise SessionSpoiledError(
                    f"{ctx.touched[aggregate_id].kind} {aggregate_id} was changed by a command "
                    "that was then refused, after earlier commands of the session had changed it"
                )
