"""What every crmflow aggregate shares: a tenant, event time, lifecycle guards."""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import field
from datetime import datetime
from functools import cache
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.domain import Aggregate

from crmflow.aggregates.clock import event_time
from crmflow.aggregates.envelope import to_cloudevent_dict
from crmflow.aggregates.errors import IllegalTransitionError, InvalidValueError
from crmflow.aggregates.metadata import current_metadata


class TenantAggregate(Aggregate):
    """An event-sourced aggregate owned by one tenant.

    ``kind`` is the catalogue name (``lead``, ``opportunity``...); ``lifecycle``
    maps each status to the statuses it may move to, so that one guard can
    explain every refused transition the same way.
    """

    kind: ClassVar[str] = ""
    lifecycle: ClassVar[Mapping[str, Set[str]]] = {}
    lifecycle_text: ClassVar[str] = ""

    # Every subclass sets ``tenant_id`` and ``status`` in its created event.
    # (Not declared as annotations: eventsourcing would turn them into fields.)

    class Event(Aggregate.Event):
        """Every stored event says whether and how it leaves the store (crmflow.aggregates.publication).

        ``published``: relayed to ``<prefix>.events`` (internal records set it False);
        ``to_wire()``: the CloudEvent document that goes there.
        """

        published = True
        # Data fields kept in the store but left off the wire (a process run's engine state, say).
        wire_omits: ClassVar[tuple[str, ...]] = ()
        # Who or what caused it; the metadata set while it is created (crmflow.aggregates.metadata).
        meta: dict[str, Any] = field(default_factory=current_metadata, kw_only=True)

        @staticmethod
        def create_timestamp() -> datetime:
            return event_time()

        def to_wire(self) -> dict[str, Any]:
            return to_cloudevent_dict(self)

    @classmethod
    def event_classes(cls) -> list[type[Aggregate.Event]]:
        """The aggregate's own event types (LeadCreated, LeadAssigned, ...)."""
        return [
            v
            for k, v in vars(cls).items()
            if isinstance(v, type) and issubclass(v, Aggregate.Event) and k not in ("Event", "Created")
        ]

    @classmethod
    def construct(cls, aggregate_id: UUID | None = None, **kwargs: Any) -> Any:
        """Create the aggregate, with an id chosen by the caller when one is given.

        Callers choose ids when they must create idempotently (another service's
        own key, a process step); otherwise eventsourcing makes a uuid4.
        """
        if aggregate_id is None:
            return cls(**kwargs)
        return cls._create(_created_event_class(cls), id=aggregate_id, **kwargs)

    @property
    def short_id(self) -> str:
        return str(self.id)[:8]

    def check_transition(self, verb: str, target: str) -> None:
        """Refuse a status change that the lifecycle does not allow."""
        if target in self.lifecycle.get(self.status, ()):
            return
        allowed_from = sorted(s for s, targets in self.lifecycle.items() if target in targets)
        raise IllegalTransitionError(
            f"cannot {verb} {self.kind} {self.short_id} from {self.status}: "
            f"allowed from {' or '.join(allowed_from) or 'no status'} "
            f"({self.lifecycle_text})",
            aggregate_id=str(self.id),
            status=self.status,
            target=target,
            allowed_from=allowed_from,
        )


@cache
def _created_event_class(cls: type[TenantAggregate]) -> type[Aggregate.Event]:
    return next(c for c in cls.event_classes() if issubclass(c, Aggregate.Created))


def check_one_of(field: str, value: str, allowed: Set[str] | tuple[str, ...]) -> None:
    if value not in allowed:
        raise InvalidValueError(
            f"{field} {value!r} is not allowed: use one of {', '.join(sorted(allowed))}",
            field=field,
            value=value,
            allowed=sorted(allowed),
        )


def check_not_negative(field: str, value: float | int | object) -> None:
    if value < 0:  # type: ignore[operator]
        raise InvalidValueError(
            f"{field} must not be negative (got {value})", field=field, value=str(value)
        )
