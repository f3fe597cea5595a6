"""Commands: named ``aggregate.verb``, a pydantic payload each, one handler each.

A handler loads what it needs through the CommandContext (which enforces the
tenant), calls the aggregates' command methods, and returns the aggregate the
command is about. The application saves everything the context touched in one
transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError as StoreNotFound
from eventsourcing.application import Repository
from pydantic import BaseModel, ConfigDict

from crmflow.aggregates.base import TenantAggregate
from crmflow.aggregates.errors import AggregateExistsError, AggregateNotFoundError

A = TypeVar("A", bound=TenantAggregate)
P = TypeVar("P", bound="Payload")


class Payload(BaseModel):
    """Base of every command payload: unknown fields are refused, not ignored."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


Handler = Callable[["CommandContext", Any], TenantAggregate]


@dataclass(frozen=True)
class CommandSpec:
    name: str
    payload: type[Payload]
    handler: Handler
    summary: str
    emits: tuple[str, ...]


COMMANDS: dict[str, CommandSpec] = {}


def command(name: str, payload: type[P], emits: tuple[str, ...]) -> Callable[[Handler], Handler]:
    """Register a handler as the command ``name``; its docstring is the catalogue summary."""

    def register(handler: Handler) -> Handler:
        if name in COMMANDS:
            raise ValueError(f"command {name} registered twice")
        summary = (handler.__doc__ or "").strip().splitlines()[0] if handler.__doc__ else name
        COMMANDS[name] = CommandSpec(name, payload, handler, summary, emits)
        return handler

    return register


class CommandContext:
    """The unit of work of one command: what it loaded and what it created.

    Commands of one batch share ``loaded`` (so a later command sees what an
    earlier one created) but each keeps its own ``touched``, so each command's
    events get that command's metadata.
    """

    def __init__(
        self,
        repository: Repository[UUID],
        tenant: str,
        at: datetime,
        loaded: dict[UUID, TenantAggregate] | None = None,
    ) -> None:
        self.repository = repository
        self.tenant = tenant
        self.at = at
        self.loaded: dict[UUID, TenantAggregate] = {} if loaded is None else loaded
        self.touched: dict[UUID, TenantAggregate] = {}
        self.chosen_ids: list[tuple[type[TenantAggregate], UUID]] = []

    def load(self, cls: type[A], aggregate_id: UUID) -> A:
        """The tenant's aggregate of that kind, or AggregateNotFoundError."""
        aggregate = self.loaded.get(aggregate_id)
        if aggregate is None:
            try:
                aggregate = self.repository.get(aggregate_id)
            except StoreNotFound:
                aggregate = None
        if not isinstance(aggregate, cls) or aggregate.tenant_id != self.tenant:
            raise AggregateNotFoundError(
                f"{cls.kind} {aggregate_id} not found in tenant {self.tenant}",
                kind=cls.kind,
                aggregate_id=str(aggregate_id),
                tenant=self.tenant,
            )
        self.loaded[aggregate.id] = self.touched[aggregate.id] = aggregate
        return aggregate

    def claim_id(self, cls: type[TenantAggregate], aggregate_id: UUID | None) -> None:
        """Note a caller-chosen id for a new aggregate.

        No read here: the store's unique (id, version) constraint refuses a
        taken id when the command is saved, and only then do we look up
        whether it was the id (AggregateExistsError) or a concurrent writer.
        """
        if aggregate_id is None:
            return
        if aggregate_id in self.loaded:
            raise id_taken(cls, aggregate_id)
        self.chosen_ids.append((cls, aggregate_id))

    def taken_id_error(self) -> AggregateExistsError | None:
        """After a refused save: the error if a chosen id was already taken."""
        for cls, aggregate_id in self.chosen_ids:
            if aggregate_id in self.repository:
                return id_taken(cls, aggregate_id)
        return None

    def add(self, aggregate: A) -> A:
        self.loaded[aggregate.id] = self.touched[aggregate.id] = aggregate
        return aggregate


def id_taken(cls: type[TenantAggregate], aggregate_id: UUID) -> AggregateExistsError:
    return AggregateExistsError(
        f"cannot create {cls.kind} {aggregate_id}: that id is already taken",
        kind=cls.kind,
        aggregate_id=str(aggregate_id),
    )
