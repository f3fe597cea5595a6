"""The CloudEvents Kafka protocol binding on the way in: a Kafka record, in either content mode, as a checked
CloudEvent document.

The ``content-type`` header decides the mode, as the binding says:

- ``application/cloudevents+json`` (parameters such as ``; charset=utf-8``
  allowed): structured mode, the value is the whole event as JSON;
- any other content type, or ``ce_`` headers: binary mode, each ``ce_<name>``
  header carries one attribute as UTF-8 text, the value is the data and the
  ``content-type`` header is its ``datacontenttype``. A non-null Kafka key is
  the ``partitionkey`` extension (the binding's key mapping) unless a
  ``ce_partitionkey`` header gives one;
- neither a content type nor ``ce_`` headers: read as structured, which is how
  crmflow and many producers sent events before they set the header (the
  binding would read it as a binary event without attributes, which is never
  an event).

Hand-written rather than the ``cloudevents`` SDK's ``from_binary`` / ``from_structured``: those raise
their own exceptions for bad input, decode headers without a limit, lower-case header names (so an illegal
``ce_My_Ext`` would pass as ``my_ext``), parse ``time`` with dateutil (which takes what RFC 3339 does not)
and build an event object crmflow would only turn back into the dict it checks and stores. Here each
refusal gets crmflow's code and sentence, within crmflow's limits. The tests check both modes against the
SDK itself (tests/integration/test_cloudevents_sdk_interop.py).
"""

from __future__ import annotations

import re
from typing import Any

from crmflow.workers.inbound_checks import (
    JSON_CONTENT,
    InboundPolicy,
    Rejected,
    check_document,
    check_inbound,
    parse_value,
)

CE_PREFIX = "ce_"
CONTENT_TYPE = "content-type"
STRUCTURED = re.compile(r"application/cloudevents\+json\s*(;.*)?", re.IGNORECASE | re.DOTALL)
BATCH = re.compile(r"application/cloudevents-batch\+[\w.-]+\s*(;.*)?", re.IGNORECASE | re.DOTALL)
OTHER_FORMAT = re.compile(r"application/cloudevents\+[\w.-]+\s*(;.*)?", re.IGNORECASE | re.DOTALL)
PARTITION_KEY = "partitionkey"


def check_record(value: Any, headers: Any, key: Any, policy: InboundPolicy) -> tuple[str, dict[str, Any]]:
    """The tenant and the checked document of a consumed record, structured or binary, or Rejected."""
    pairs = list(headers or ())
    content_type = _content_type(pairs)
    binary = any(isinstance(name, str) and name.startswith(CE_PREFIX) for name, _ in pairs)
    if content_type is not None and BATCH.fullmatch(content_type):
        raise Rejected("bad_content_type",
                       f"content-type {content_type[:80]!r} is a batch; send one event per record")  # fmt: skip
    if content_type is not None and STRUCTURED.fullmatch(content_type):
        return check_inbound(value, policy)
    if content_type is not None and OTHER_FORMAT.fullmatch(content_type):
        raise Rejected("bad_content_type",
                       f"content-type {content_type[:80]!r} is a structured format, not JSON")  # fmt: skip
    if content_type is None and not binary:
        return check_inbound(value, policy)
    where = " (binary mode: as ce_ headers)"
    if not binary:  # a structured event sent with content-type: application/json, most likely
        where = (f" (content-type {content_type[:80]!r} means binary mode, with attributes as ce_ headers, and "
                 "there are none; a structured event has content-type application/cloudevents+json)")
    return check_document(binary_document(value, pairs, key, content_type, policy), policy,
                          attributes_in=where)  # fmt: skip


def _content_type(pairs: list[tuple[Any, Any]]) -> str | None:
    values = [v for name, v in pairs if isinstance(name, str) and name.lower() == CONTENT_TYPE]
    if not values:
        return None
    if len(values) > 1:
        raise Rejected("bad_content_type", "the record has more than one content-type header")
    return _text(values[0], "the content-type header")


def binary_document(value: Any, pairs: list[tuple[Any, Any]], key: Any, content_type: str | None,
                    policy: InboundPolicy) -> dict[str, Any]:  # fmt: skip
    """The structured form of a binary-mode record: attributes from its ce_ headers, data from its value."""
    header_bytes = sum(len(name.encode()) + len(v or b"") for name, v in pairs if isinstance(name, str))
    document: dict[str, Any] = {}
    for name, raw in pairs:
        if not (isinstance(name, str) and name.startswith(CE_PREFIX)):
            continue  # other headers (tracing, the broker's own) are not attributes
        attribute = name[len(CE_PREFIX):]
        if attribute in document:
            raise Rejected("bad_attribute", f"header {name[:40]!r} is given more than once")
        if attribute in ("data", "data_base64", "datacontenttype"):
            # datacontenttype travels as the content-type header; data is the value.
            raise Rejected("bad_attribute", f"header {name[:40]!r} is not allowed in binary mode")
        document[attribute] = _text(raw, f"header {name[:40]!r}")
    if content_type is not None:
        document["datacontenttype"] = content_type
    if key is not None and PARTITION_KEY not in document:
        try:
            document[PARTITION_KEY] = bytes(key).decode("utf-8")
        except UnicodeDecodeError:
            pass  # a key that is not text is the producer's partitioning only, not an attribute
    size = header_bytes + len(value or b"") + len(key or b"")
    if value:
        data_type = content_type or "application/json"
        if not JSON_CONTENT.fullmatch(data_type):  # before parsing: not JSON data is not a JSON error
            raise Rejected("bad_content_type", f"datacontenttype {data_type[:80]!r} is not JSON")
        document["data"] = parse_value(value, policy, size=size, what="the data (the record's value)")
    else:
        parse_value(b"{}", policy, size=size)  # an event without data: only its size counts
    return document


def _text(raw: Any, what: str) -> str:
    if raw is None:
        raise Rejected("bad_attribute", f"{what} has no value")
    try:
        return bytes(raw).decode("utf-8")
    except UnicodeDecodeError as error:
        reason = f"{what} is not UTF-8 text: {error.reason} at byte {error.start}"
        raise Rejected("not_utf8", reason) from None
