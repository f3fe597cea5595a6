"""Round-robin choices in the event store: one global order per rotation, and each choice kept for replays.

A rotation (tenant, process, step) is a sequence of turns: turn 0 goes to the
first item, turn 1 to the second, and so on around the list. Each turn taken
is a record of its own, with an id derived from the rotation and the turn's
number: two worker copies that reach for the same turn collide on that id
when they commit, and the one that loses reads how far the rotation got and
takes the next. So every copy assigns in one order, with no turn skipped or
given twice, and no read is needed to take a turn a worker already knows is
free.

A turn is stored in the same transaction as the command that uses it and the
instance state that remembers it, so a step replayed after a crash either
finds the instance past the step or finds no trace of the choice, and chooses
afresh. Where commands are stored one by one instead (the runtime's fallback),
the instance's own slot (RotationSlot) is stored first, as it always was: a
worker that handles the event again must choose the same item, or its command
(same idempotency key, other payload) is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event

from crmflow.aggregates.base import TenantAggregate

ROTATION_NAMESPACE = uuid5(NAMESPACE_URL, "https://crmflow.dev/rotation-slots")
TURN_NAMESPACE = uuid5(NAMESPACE_URL, "https://crmflow.dev/rotation-turns")


def rotation_slot_id(tenant_id: str, process: str, step: str, instance: str) -> UUID:
    return uuid5(ROTATION_NAMESPACE, f"{tenant_id}\n{process}\n{step}\n{instance}")


def rotation_turn_id(tenant_id: str, process: str, step: str, turn: int) -> UUID:
    return uuid5(TURN_NAMESPACE, f"{tenant_id}\n{process}\n{step}\n{turn}")


class RotationSlot(TenantAggregate):
    """Internal: never published to Kafka (the turn an instance was given, kept for one-by-one replays)."""

    kind = "rotation"

    class Event(TenantAggregate.Event):
        published = False

    @staticmethod
    def create_id(tenant_id: str, process: str, step: str, instance: str, **_: Any) -> UUID:
        return rotation_slot_id(tenant_id, process, step, instance)

    @event("RotationSlotGiven")
    def __init__(self, tenant_id: str, process: str, step: str, instance: str, slot: int) -> None:
        self.tenant_id = tenant_id
        self.slot = slot
        self.status = "given"


class RotationTurn(TenantAggregate):
    """Internal: never published to Kafka. Turn ``turn`` of a rotation, and the instance it went to."""

    kind = "rotation"

    class Event(TenantAggregate.Event):
        published = False

    @staticmethod
    def create_id(tenant_id: str, process: str, step: str, turn: int, **_: Any) -> UUID:
        return rotation_turn_id(tenant_id, process, step, turn)

    @event("RotationTurnTaken")
    def __init__(self, tenant_id: str, process: str, step: str, turn: int, instance: str) -> None:
        self.tenant_id = tenant_id
        self.turn = turn
        self.instance = instance
        self.status = "taken"


def first_free_turn(taken: Callable[[int], bool], known_free: int = 0) -> int:
    """The lowest turn not taken, given that turns are taken in order without gaps.

    Starts from ``known_free`` (a turn believed free; it may have been taken
    since). Gallops forward, then bisects: about 2·log2(n) lookups for n turns
    taken since, instead of reading every one.
    """
    if not taken(known_free):
        return known_free
    low, step = known_free, 1  # low: taken
    while taken(low + step):
        low, step = low + step, step * 2
    high = low + step  # free
    while high - low > 1:
        middle = (low + high) // 2
        if taken(middle):
            low = middle
        else:
            high = middle
    return high
