"""Events from other services (a web form, billing, a webinar tool), accepted into the store.

Each accepted CloudEvent becomes one aggregate whose id is derived from tenant,
``source`` and ``id`` (what CloudEvents defines as unique), so the same event
delivered twice cannot be stored twice: the second save is refused by the
store's unique constraint. Stored, it is part of the history that processes
react to and replay, and the relay publishes it to the events topic in its
original form.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event

from crmflow.aggregates.base import TenantAggregate

INBOUND_NAMESPACE = uuid5(NAMESPACE_URL, "https://crmflow.dev/inbound")
# CloudEvents attributes kept in their own fields; every other attribute is an extension.
CORE_ATTRIBUTES = frozenset(
    {"specversion", "id", "source", "type", "subject", "time", "datacontenttype", "dataschema", "data", "tenantid"}
)


def inbound_id(tenant_id: str, source: str, event_id: str) -> UUID:
    return uuid5(INBOUND_NAMESPACE, f"{tenant_id}\n{source}\n{event_id}")


class InboundEvent(TenantAggregate):
    kind = "inbound"

    class Event(TenantAggregate.Event):
        def to_wire(self) -> dict[str, Any]:
            return inbound_cloudevent(self)  # as its producer sent it, not as a crmflow event

    @staticmethod
    def create_id(tenant_id: str, event_source: str, event_id: str, **_: Any) -> UUID:
        return inbound_id(tenant_id, event_source, event_id)

    @event("InboundEventAccepted")
    def __init__(
        self,
        tenant_id: str,
        event_id: str,
        event_source: str,
        event_type: str,
        subject: str | None,
        event_time: str | datetime | None,  # the text received; a datetime in events stored before
        datacontenttype: str | None,
        dataschema: str | None,
        data: Any,
        extensions: dict[str, Any],
    ) -> None:
        self.tenant_id = tenant_id
        self.event_id = event_id
        self.event_source = event_source
        self.event_type = event_type
        self.subject = subject
        self.status = "accepted"

    @classmethod
    def accept(cls, document: dict[str, Any], tenant_id: str) -> InboundEvent:
        """Build from a checked CloudEvent document (see workers/inbound_checks.py)."""
        return cls(
            tenant_id=tenant_id,
            event_id=str(document["id"]),
            event_source=str(document["source"]),
            event_type=str(document["type"]),
            subject=document.get("subject"),
            # Kept as the text received (checked as RFC 3339): republished as it came, not rewritten.
            event_time=document.get("time"),
            datacontenttype=document.get("datacontenttype"),
            dataschema=document.get("dataschema"),
            data=document.get("data"),
            extensions={k: v for k, v in document.items() if k not in CORE_ATTRIBUTES and v is not None},
        )


def inbound_cloudevent(accepted: Any) -> dict[str, Any]:
    """The stored inbound event as the CloudEvent its producer sent (plus ``tenantid``).

    Optional attributes without a value are left out, not written as null: the
    CloudEvents SDKs refuse a null attribute (events stored before kept them as None).
    """
    document: dict[str, Any] = {
        "specversion": "1.0",
        "id": accepted.event_id,
        "source": accepted.event_source,
        "type": accepted.event_type,
    }
    if accepted.subject is not None:
        document["subject"] = accepted.subject
    time = accepted.event_time
    if time is not None:
        document["time"] = time.isoformat() if isinstance(time, datetime) else time
    document["datacontenttype"] = accepted.datacontenttype or "application/json"
    if accepted.dataschema:
        document["dataschema"] = accepted.dataschema
    document["data"] = accepted.data
    document["tenantid"] = accepted.tenant_id
    document.update((k, v) for k, v in accepted.extensions.items() if v is not None)
    return document
