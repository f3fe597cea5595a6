"""Commands: named ``aggregate.verb``, a pydantic payload each, one handler each.

A handler loads what it needs through the CommandContext (which enforces the
tenant: ``load`` for the records it changes, ``reference`` for every other id
it names, ``claim_id`` for an id the caller chose for a new record), calls the
aggregates' command methods, and returns the aggregate the command is about.
The application saves everything the context touched in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import Repository
from pydantic import BaseModel, ConfigDict, ValidationError

from crmflow.aggregates.base import TenantAggregate
from crmflow.aggregates.errors import AggregateExistsError, AggregateNotFoundError
from crmflow.aggregates.ids import scoped_id, stored_candidates
from crmflow.aggregates.reading import find

A = TypeVar("A", bound=TenantAggregate)
P = TypeVar("P", bound="Payload")


class Payload(BaseModel):
    """Base of every command payload: unknown fields are refused, not ignored."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


Handler = Callable[["CommandContext", Any], TenantAggregate]


def payload_problems(model: type[BaseModel], error: ValidationError) -> list[str]:
    """One line per problem, each naming the field; an unknown field also lists the allowed ones.

    pydantic says only "Extra inputs are not permitted": the caller then has to open the catalogue
    to learn what the command takes, so the allowed fields (of the nested model at that place) are named.
    """
    problems = []
    for problem in error.errors():
        where = ".".join(str(part) for part in problem["loc"]) or "payload"
        if problem["type"] == "extra_forbidden":
            allowed = ", ".join(_model_at(model, problem["loc"][:-1]).model_fields) or "none"
            problems.append(f"{where}: unknown field; allowed: {allowed}")
        else:
            problems.append(f"{where}: {problem['msg']}")
    return problems


def _model_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> type[BaseModel]:
    """The model of the object at ``loc`` inside ``model``: list indexes skipped, Optional looked through."""
    for part in loc:
        field = model.model_fields.get(str(part))
        if field is None:
            continue  # a list index, or a dict key: the same model goes on
        nested = _nested_model(field.annotation)
        if nested is None:
            break
        model = nested
    return model


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in getattr(annotation, "__args__", ()):
        found = _nested_model(argument)
        if found is not None:
            return found
    return None


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
        self.chosen_ids: list[tuple[type[TenantAggregate], UUID, UUID]] = []  # (kind, chosen, stored)
        self.claimed_keys: list[tuple[UUID, AggregateExistsError]] = []  # (stored id, the refusal if taken)

    def load(self, cls: type[A], aggregate_id: UUID) -> A:
        """The tenant's aggregate of that kind, or AggregateNotFoundError."""
        aggregate = self._find(cls, aggregate_id)
        self.loaded[aggregate.id] = self.touched[aggregate.id] = aggregate
        return aggregate

    def reference(self, cls: type[TenantAggregate], aggregate_id: UUID | None) -> UUID | None:
        """The stored id of a record the command refers to (and does not change), or AggregateNotFoundError.

        Refused exactly as ``load`` refuses a target: another tenant's id is
        answered like an id nobody has. Only the created event is read.
        """
        if aggregate_id is None:
            return None
        return self._find(cls, aggregate_id, version=1).id

    def read(self, cls: type[A], aggregate_id: UUID) -> A:
        """The tenant's aggregate of that kind, read and not changed (a product's price for a line item).

        Refused as ``load`` refuses; not stored with the command (so another writer changing it meanwhile
        is no conflict: the command used what was current when it ran).
        """
        return self._find(cls, aggregate_id)

    def _find(self, cls: type[A], aggregate_id: UUID, version: int | None = None) -> A:
        for candidate in stored_candidates(self.tenant, aggregate_id):
            aggregate = self.loaded.get(candidate)
            if aggregate is None:
                aggregate = self._stored(candidate, version)
            if isinstance(aggregate, cls) and aggregate.tenant_id == self.tenant:
                return aggregate
        raise AggregateNotFoundError(
            f"{cls.kind} {aggregate_id} not found in tenant {self.tenant}",
            kind=cls.kind,
            aggregate_id=str(aggregate_id),
            tenant=self.tenant,
        )

    def _stored(self, aggregate_id: UUID, version: int | None = None) -> TenantAggregate | None:
        return find(self.repository, aggregate_id, version)  # type: ignore[no-any-return]

    def claim_id(self, cls: type[TenantAggregate], chosen: UUID | None) -> UUID | None:
        """The stored id for a caller-chosen id of a new aggregate (crmflow.aggregates.ids), or None.

        Refused only when the tenant itself has the id: another tenant's
        record under that id changes nothing. The scoped id is not read here:
        the store's unique (id, version) constraint refuses a taken one when
        the command is saved, and only then do we look up whether it was the
        id (AggregateExistsError) or a concurrent writer. The id as given is
        read, since records made before ids were scoped are stored under it.
        """
        if chosen is None:
            return None
        stored = scoped_id(self.tenant, chosen)
        if stored in self.loaded or self._owns(chosen):
            raise id_taken(cls, chosen)
        self.chosen_ids.append((cls, chosen, stored))
        return stored

    def claim_key(self, stored: UUID, taken: AggregateExistsError) -> UUID:
        """The id of a new aggregate derived from a natural key (a product's code), refused with ``taken``
        when used. As with ``claim_id``, the store's unique constraint is what refuses a used one (two
        creates racing too); ``taken_id_error`` then names it."""
        if stored in self.loaded:
            raise taken
        self.claimed_keys.append((stored, taken))
        return stored

    def _owns(self, aggregate_id: UUID) -> bool:
        aggregate = self.loaded.get(aggregate_id)
        if aggregate is None:
            aggregate = self._stored(aggregate_id, version=1)
        return isinstance(aggregate, TenantAggregate) and aggregate.tenant_id == self.tenant

    def taken_id_error(self) -> AggregateExistsError | None:
        """After a refused save: the error if a chosen id was already taken."""
        for cls, chosen, stored in self.chosen_ids:
            if stored in self.repository:
                return id_taken(cls, chosen)
        for stored, taken in self.claimed_keys:
            if stored in self.repository:
                return taken
        return None

    def add(self, aggregate: A) -> A:
        self.loaded[aggregate.id] = self.touched[aggregate.id] = aggregate
        return aggregate

    def held(self, aggregate_id: UUID) -> TenantAggregate | None:
        """What the unit holds under that id (an earlier command loaded or changed it), or None."""
        return self.loaded.get(aggregate_id)

    def keep(self, record: A) -> A:
        """An internal record (its id derived, not named by the caller) to store with the command's changes.

        Held like what ``load`` returns, so later commands of the unit see it and the commit stores it,
        but not among what the command is about: its events are not in the command's answer.
        """
        self.loaded[record.id] = record
        return record


def id_taken(cls: type[TenantAggregate], aggregate_id: UUID) -> AggregateExistsError:
    return AggregateExistsError(
        f"cannot create {cls.kind} {aggregate_id}: that id is already taken",
        kind=cls.kind,
        aggregate_id=str(aggregate_id),
    )
