"""CloudEvents' HTTP binding for POST /v1/events: binary mode turned into the structured document.

In binary mode (what Knative and most SDKs send by default) the attributes
are ``ce-`` headers, Content-Type is ``datacontenttype`` and the body is the
data. The official SDK (``cloudevents.core.bindings.http``) reads the headers;
this module only makes it read them the way the intake needs, then writes
the event in structured mode, so that exactly the intake's checks
(``workers.inbound_checks.check_inbound``) decide on it, as they do for a
structured event and on Kafka:

- no attribute is made up: the SDK's own factory gives a missing ``id`` a
  random UUID and a missing ``time`` the current time, which would let the
  same event in twice and misdate it;
- the data is read by crmflow's bounded JSON parser, not by ``json.loads``
  (which a deep body turns into a RecursionError).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cloudevents.core.base import BaseCloudEvent
from cloudevents.core.bindings.http import CE_PREFIX, HTTPMessage, from_binary
from cloudevents.core.exceptions import BaseCloudEventException
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from crmflow.workers.inbound_checks import JSON_CONTENT, REQUIRED, Rejected, decode_inbound_json

STRUCTURED_PREFIX = "application/cloudevents"  # the binding's structured media types: the body is the event


def is_binary(headers: Mapping[str, str]) -> bool:
    """Binary mode: a ``ce-`` header, unless Content-Type says the body is a whole CloudEvent.

    The SDK's ``from_http`` looks at the ``ce-`` headers only; the binding's
    spec lets the structured media type win, which is what this does."""
    media = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media.startswith(STRUCTURED_PREFIX):
        return False
    return any(name.lower().startswith(CE_PREFIX) for name in headers)


def structured_from_binary(headers: Mapping[str, str], body: bytes) -> bytes:
    """The binary-mode request as the structured-mode JSON document the intake checks, or Rejected."""
    message = HTTPMessage(headers={name.lower(): value for name, value in headers.items()}, body=body)
    try:
        event = from_binary(message, _BOUNDED_JSON, _event_as_sent)
    except BaseCloudEventException as error:
        raise Rejected("bad_attribute", f"the ce- headers are not a valid CloudEvent: {error}") from None
    except ValueError as error:  # a ce-time that is not a timestamp
        raise Rejected("bad_attribute", f"a ce- header is not a valid attribute value: {error}") from None
    return _BOUNDED_JSON.write(event)


def _event_as_sent(attributes: dict[str, Any], data: Any) -> BaseCloudEvent:
    """The SDK's CloudEvent (its attribute validation), refused in the intake's words when one is missing."""
    missing = [name for name in REQUIRED if name not in attributes]
    if missing:
        raise Rejected(
            "missing_attribute", f"required CloudEvents attribute(s) missing: {', '.join(missing)}"
        )
    return CloudEvent(attributes, data)


class _BoundedJSON(JSONFormat):
    """The SDK's JSON format, with the data read within crmflow's limits.

    Data of another content type stays bytes, which the structured document
    carries as ``data_base64``: the intake then refuses it in its own words."""

    def read_data(self, body: bytes, datacontenttype: str | None) -> Any:
        if not body:
            return None
        if datacontenttype is not None and not _is_json(datacontenttype):
            return bytes(body)
        return decode_inbound_json(bytes(body), "the data")


def _is_json(content_type: str) -> bool:
    # JSON to the intake and to the SDK's writer both: the writer turns data of any other type into its
    # Python str(), which would hand the intake a JSON string instead of the object sent.
    sdk_json = JSONFormat.JSON_CONTENT_TYPE_PATTERN.match(content_type)
    return bool(JSON_CONTENT.fullmatch(content_type) and sdk_json)


_BOUNDED_JSON = _BoundedJSON()
