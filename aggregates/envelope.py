"""The wire envelope: stored domain events as CloudEvents 1.0 structured JSON, and back.

``id`` is derived from aggregate id and version, so a re-published event keeps
its id and consumers can drop duplicates. ``subject`` is the aggregate id (the
Kafka key), ``sequence`` the aggregate version as a string of ``SEQUENCE_DIGITS``
digits (the CloudEvents sequence extension orders by comparing strings, so
"00000000000000000010" must sort after "00000000000000000009"). An optional
attribute without a value is left out, never ``null``: the CloudEvents SDKs
refuse an attribute whose value is null.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal
from uuid import NAMESPACE_URL, UUID, uuid5

import orjson
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
    sequence: str | int | None = None  # an int in documents of before the string sequence
    correlationid: str | None = None
    causationid: str | None = None


_NAMESPACE_BYTES = EVENT_ID_NAMESPACE.bytes
# 20 digits hold every 64-bit version, so string order is version order for any aggregate.
SEQUENCE_DIGITS = 20


def sequence(version: int) -> str:
    """The ``sequence`` of an aggregate version: zero-padded, so strings compare as the versions do."""
    return f"{version:020d}"


def version_of(sequence_value: str | int) -> int:
    """The aggregate version a ``sequence`` stands for (an int too, as release 0.1's documents held)."""
    return int(sequence_value)


def event_id(aggregate_id: UUID | str, version: int) -> str:
    """uuid5(EVENT_ID_NAMESPACE, "<aggregate id>/<version>"), computed without the UUID class.

    The relay makes one per published event; building it from the SHA-1
    digest directly is much cheaper than ``str(uuid5(...))`` (benchmarks/README.md).
    """
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + f"{aggregate_id}/{version}".encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


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
        "sequence": f"{domain_event.originator_version:020d}",
        **_causes(meta.get("correlation_id"), meta.get("causation_id")),
        **process_hops(meta),
    }


def _causes(correlation: Any, causation: Any) -> dict[str, Any]:
    """``correlationid`` and ``causationid``, each only if it has a value (absent attributes are left out)."""
    if correlation is not None and causation is not None:
        return {"correlationid": correlation, "causationid": causation}
    causes = {}
    if correlation is not None:
        causes["correlationid"] = correlation
    if causation is not None:
        causes["causationid"] = causation
    return causes


def process_hops(meta: dict[str, Any]) -> dict[str, int]:
    """The ``processhops`` extension of an event a process's command recorded: how many process hops in a
    row caused it (the engine acts on none past its limit). Events of people's commands have none."""
    cause = meta.get("cause")
    hops = cause.get("hops") if isinstance(cause, dict) else None
    return {"processhops": hops} if isinstance(hops, int) else {}


class NotPlainJson(ValueError):
    """A stored state holds a value the fast path does not know; use the domain-event path."""


# How the store's JSON transcoder wraps non-JSON values, and their wire form.
def _hyphenated(hex32: str) -> str:
    return f"{hex32[:8]}-{hex32[8:12]}-{hex32[12:16]}-{hex32[16:20]}-{hex32[20:]}"


_UNWRAP = {
    "uuid_hex": _hyphenated,  # str(UUID) on the wire
    "decimal_str": str,  # money stays a decimal string
    "datetime_iso": str,  # already ISO 8601
    "date_iso": str,
}


def _unwrap(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 2 and "_type_" in value and "_data_" in value:
            convert = _UNWRAP.get(value["_type_"])
            if convert is None:
                raise NotPlainJson(value["_type_"])
            return convert(value["_data_"])
        return {k: _unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    return value


def stored_to_cloudevent_dict(topic: str, originator_id: UUID, version: int, state: bytes) -> dict[str, Any]:
    """The same document as ``to_cloudevent_dict(mapper.to_domain_event(...))``, from the stored JSON.

    The relay's hot path: no domain event object is built only to be turned
    back into JSON. Raises NotPlainJson for values it does not know.
    """
    fields = orjson.loads(state)
    timestamp = fields.pop("timestamp")
    fields.pop("originator_topic", None)
    meta = fields.pop("meta", None) or {}
    data = {k: _unwrap(v) for k, v in fields.items()}
    tenant = meta.get("tenant") or data.get("tenant_id")
    qualname = topic.split(":", 1)[1]
    document = {
        "specversion": "1.0",
        "id": event_id(originator_id, version),
        "source": f"{SOURCE_PREFIX}/{tenant}/{qualname.split('.', 1)[0].lower()}",
        "type": qualname.rsplit(".", 1)[1],
        "subject": str(originator_id),
        "time": _unwrap(timestamp),
        "datacontenttype": "application/json",
        "data": data,
        "tenantid": tenant,
        "sequence": f"{version:020d}",  # inline, not sequence(): the relay's hot path
    }
    # Inline too, and only set when there (no null attributes): what _causes and process_hops do.
    correlation = meta.get("correlation_id") or meta.get("command_id")
    if correlation is not None:
        document["correlationid"] = correlation
    causation = meta.get("causation_id") or meta.get("command_id")
    if causation is not None:
        document["causationid"] = causation
    if "cause" in meta:
        document.update(process_hops(meta))
    return document
