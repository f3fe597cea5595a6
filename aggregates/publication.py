"""What leaves the store, and in which form: the one place the relay, the history and any exporter ask.

Each stored event class declares it (``TenantAggregate.Event``): ``published``
says whether it goes to ``<prefix>.events``, ``to_wire()`` what document goes
there. This module resolves a stored topic to its class (old topic names
included, see crmflow.aggregates.topics) and renders a notification: from the
stored JSON directly where the class uses the standard envelope (no domain
event object is built only to be turned back into JSON), else through the
class's own ``to_wire()``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import orjson
from eventsourcing.application import Application
from eventsourcing.utils import resolve_topic

from crmflow.aggregates.base import TenantAggregate
from crmflow.aggregates.envelope import NotPlainJson, stored_to_cloudevent_dict

_STANDARD_ENVELOPE = TenantAggregate.Event.to_wire
# The Kafka headers of every record crmflow publishes: the CloudEvents Kafka binding reads a record
# without a content-type header as binary mode (attributes in ce_ headers), so without this header
# the SDKs find no event in a structured record. One shared list: kafka-python only reads it.
STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"
STRUCTURED_HEADERS: list[tuple[str, bytes]] = [("content-type", STRUCTURED_CONTENT_TYPE.encode())]


@lru_cache(maxsize=None)
def _event_class(topic: str) -> type[TenantAggregate.Event]:
    return resolve_topic(topic)


def is_published(topic: str) -> bool:
    """Whether events stored under this topic go to ``<prefix>.events``."""
    return _event_class(topic).published


@lru_cache(maxsize=None)
def _uses_standard_envelope(topic: str) -> bool:
    return _event_class(topic).to_wire is _STANDARD_ENVELOPE


def wire_document(app: Application, notification: Any) -> dict[str, Any]:
    """The CloudEvent document of a published notification (``is_published(notification.topic)``)."""
    omits = _event_class(notification.topic).wire_omits
    mapper = app.mapper
    if _uses_standard_envelope(notification.topic) and mapper.cipher is None and mapper.compressor is None:
        try:
            document = stored_to_cloudevent_dict(notification.topic, notification.originator_id,
                                                 notification.originator_version, notification.state)  # fmt: skip
            return _omitting(document, omits) if omits else document
        except NotPlainJson:
            pass
    document = mapper.to_domain_event(notification).to_wire()
    if omits:
        document = _omitting(document, omits)
    # Whatever a class's to_wire() gives (a process's emit, an inbound event stored before absent attributes
    # were left out), no attribute goes out as null: the CloudEvents SDKs refuse one.
    return {k: v for k, v in document.items() if v is not None} if None in document.values() else document


def _omitting(document: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    data = document.get("data")
    if isinstance(data, dict):
        document["data"] = {k: v for k, v in data.items() if k not in fields}
    return document


def published_documents(app: Application, notifications: Any) -> list[tuple[int, dict[str, Any]]]:
    """(notification id, document) of the published ones among ``notifications``, in order."""
    return [(n.id, wire_document(app, n)) for n in notifications if is_published(n.topic)]


def encode(document: dict[str, Any]) -> bytes:
    """The bytes of a document on the wire (orjson: the stdlib's json is a large share of the relay's cost)."""
    return orjson.dumps(document)
