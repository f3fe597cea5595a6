"""The wire envelope: stored domain events as CloudEvents 1.0 structured JSON, and back.

``id`` is derived from aggregate id and version, so a re-published event keeps
its id and consumers can drop duplicates. ``subject`` is the aggregate id (the
Kafka key), ``sequence`` the aggregate version.
"""

from __future__ import annotations

import typing
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.utils import get_topic
from pydantic import BaseModel, ConfigDict, Field

EVENT_ID_NAMESPACE = uuid5(NAMESPACE_URL, "https://crmflow.dev/events")
SOURCE_PREFIX = "/crmflow"
# Attributes of a stored event that are envelope, not data.
ENVELOPE_FIELDS = frozenset(
    {"originator_id", "originator_version", "timestamp", "originator_topic", "meta"}
)


class CloudEvent(BaseModel):
    """A CloudEvents 1.0 structured-mode event with crmflow's extensions."""

    model_config = ConfigDict(extra="allow")

    specversion: Literal["1.0"]
    id: str = Field(min_length=1)
    source: str = Field(min_length=1)
    type: str = Field(min_length=1)
    subject: str | None = None
    time: datetime | None = None
    datacontenttype: str | None = "application/json"
    dataschema: str | None = None
    data: Any = None
    tenantid: str | None = None
    sequence: int | None = None
    correlationid: str | None = None
    causationid: str | None = None


def event_id(aggregate_id: UUID | str, version: int) -> str:
    return str(uuid5(EVENT_ID_NAMESPACE, f"{aggregate_id}/{version}"))


def event_type(domain_event: object) -> str:
    return type(domain_event).__name__


def jsonable(value: Any) -> Any:
    """Plain JSON values: ids and dates as strings, money as decimal strings."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (UUID, Decimal)):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    raise TypeError(f"cannot put {type(value).__name__} on the wire")


def event_data(domain_event: object) -> dict[str, Any]:
    return {k: jsonable(v) for k, v in vars(domain_event).items() if k not in ENVELOPE_FIELDS}


def event_meta(domain_event: object) -> dict[str, Any]:
    """The event's metadata; correlation and causation default to the command id."""
    meta = getattr(domain_event, "meta", None) or {}
    if "command_id" in meta and not ("correlation_id" in meta and "causation_id" in meta):
        meta = {"correlation_id": meta["command_id"], "causation_id": meta["command_id"], **meta}
    return meta


def to_cloudevent_dict(domain_event: Any) -> dict[str, Any]:
    """The structured-mode JSON document for a stored domain event."""
    meta = event_meta(domain_event)
    tenant = meta.get("tenant") or getattr(domain_event, "tenant_id", None)
    kind = domain_event.__class__.__qualname__.split(".")[0].lower()
    return {
        "specversion": "1.0",
        "id": event_id(domain_event.originator_id, domain_event.originator_version),
        "source": f"{SOURCE_PREFIX}/{tenant}/{kind}",
        "type": event_type(domain_event),
        "subject": str(domain_event.originator_id),
        "time": domain_event.timestamp.isoformat(),
        "datacontenttype": "application/json",
        "data": event_data(domain_event),
        "tenantid": tenant,
        "sequence": domain_event.originator_version,
        "correlationid": meta.get("correlation_id"),
        "causationid": meta.get("causation_id"),
    }


def from_cloudevent(document: CloudEvent | dict[str, Any]) -> Any:
    """Rebuild the domain event of a crmflow CloudEvent (the inverse of to_cloudevent_dict)."""
    from aggregates.catalog import aggregate_class_of, event_class, event_data_model

    ce = document if isinstance(document, CloudEvent) else CloudEvent.model_validate(document)
    cls = event_class(ce.type)
    data = event_data_model(cls).model_validate(ce.data or {})
    state: dict[str, Any] = {
        "originator_id": UUID(ce.subject) if ce.subject else None,
        "originator_version": ce.sequence,
        "timestamp": ce.time,
        **{name: getattr(data, name) for name in type(data).model_fields},
    }
    if "originator_topic" in typing.get_type_hints(cls):  # a "created" event
        state["originator_topic"] = get_topic(aggregate_class_of(cls))
    state["meta"] = {
        "tenant": ce.tenantid,
        "correlation_id": ce.correlationid,
        "causation_id": ce.causationid,
    }
    domain_event = object.__new__(cls)
    object.__setattr__(domain_event, "__dict__", state)
    return domain_event

