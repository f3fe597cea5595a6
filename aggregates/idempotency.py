"""Idempotency keys: the same key twice executes once and returns the first result.

The record is an aggregate whose id is derived from tenant and key, saved in the
same transaction as the command's events. A second execution with that key finds
the record (or loses the race to insert it) and replays the first result.
"""

from __future__ import annotations

from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event

from crmflow.aggregates.base import TenantAggregate

IDEMPOTENCY_NAMESPACE = uuid5(NAMESPACE_URL, "https://crmflow.dev/idempotency")


def idempotency_record_id(tenant_id: str, key: str) -> UUID:
    return uuid5(IDEMPOTENCY_NAMESPACE, f"{tenant_id}\x00{key}")


class IdempotencyRecord(TenantAggregate):
    """Internal: never published to Kafka, never shown in the catalogue."""

    kind = "idempotency"

    class Event(TenantAggregate.Event):
        published = False

    @staticmethod
    def create_id(tenant_id: str, key: str, **_: object) -> UUID:
        return idempotency_record_id(tenant_id, key)

    @event("IdempotencyKeyRecorded")
    def __init__(
        self,
        tenant_id: str,
        key: str,
        command: str,
        request_hash: str,
        aggregate_id: UUID | None,
        events: list[list[str | int]],
    ) -> None:
        self.tenant_id = tenant_id
        self.key = key
        self.command = command
        self.request_hash = request_hash
        self.aggregate_id = aggregate_id
        # [[aggregate id, version], ...] of the events the first execution stored.
        self.events = events
        self.status = "recorded"
