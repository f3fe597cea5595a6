"""Round-robin choices in the event store: whichever worker replays a step gets the item first handed out.

A step's command may be issued by a worker that dies before the instance is
saved; the worker that handles the event again must choose the same item, or
its command (same idempotency key, other payload) is refused. So a choice is
stored the moment it is made, before the command that uses it, and the first
one stored wins.
"""

from __future__ import annotations

from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event

from crmflow.aggregates.base import TenantAggregate

ROTATION_NAMESPACE = uuid5(NAMESPACE_URL, "https://crmflow.dev/rotation-slots")


def rotation_slot_id(tenant_id: str, process: str, step: str, instance: str) -> UUID:
    return uuid5(ROTATION_NAMESPACE, f"{tenant_id}\n{process}\n{step}\n{instance}")


class RotationSlot(TenantAggregate):
    """Internal: never published to Kafka (round-robin choices, kept for replays)."""

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
