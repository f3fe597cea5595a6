"""What the intake accepts from other services, and why it refuses the rest.

Pure functions: bytes in, a checked CloudEvent document or a ``Rejected`` out.
Every refusal has a stable code (for the dead-letter header and for metrics)
and a sentence that names what was wrong; a refusal for one of crmflow's
limits (aggregates/limits.py) also names the limit, so that the intake and the
HTTP API refuse the same messages in the same words. No input, whatever its
bytes, makes ``check_inbound`` raise anything but ``Rejected``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from crmflow.aggregates.catalog import EVENT_CLASSES
from crmflow.aggregates.errors import InvalidValueError
from crmflow.aggregates.json_text import lone_surrogate_at
from crmflow.aggregates.limits import MAX_MESSAGE_BYTES, Limit, LimitExceeded, parse_json
from crmflow.aggregates.tenants import TENANT_PATTERN
from crmflow.aggregates.usage import USAGE_REPORTED, usage_of
from crmflow.workers.cloudevent_attributes import (
    DATA_MEMBERS,
    extension_value_problem,
    is_rfc3339,
    name_problem,
)

REQUIRED = ("specversion", "id", "source", "type")
JSON_CONTENT = re.compile(r"application/([\w.+-]+\+)?json(\s*;.*)?", re.IGNORECASE | re.DOTALL)
# A JSON string escape of one half of a UTF-16 surrogate pair: Python's json reads a lone one into a str
# that no UTF-8 encoder (the store's, orjson's in the relay) will write.
SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
SHOWN_CHARS = 80  # of a bad value quoted in a reason: a reason is one line, not a copy of the message
# The store's JSON transcoder reads an object with exactly these keys as a
# typed value; inbound data must not be able to smuggle one in.
TRANSCODER_KEYS = frozenset({"_type_", "_data_"})
INTERNAL_TYPES = frozenset({"InboundEventAccepted", "IdempotencyKeyRecorded"})
# Attributes whose values are checked by their own rules, not as extensions.
KNOWN_ATTRIBUTES = frozenset(
    {"specversion", "id", "source", "type", "subject", "time", "datacontenttype", "dataschema", "tenantid"}
)
NOT_EXTENSIONS = KNOWN_ATTRIBUTES | DATA_MEMBERS


@dataclass(frozen=True)
class Rejected(Exception):
    """A message the intake will not accept; it goes to the dead-letter topic."""

    code: str
    reason: str
    limit: Limit | None = None  # the limit it is over, for the refusals that are about one


@dataclass(frozen=True)
class InboundPolicy:
    """What the intake accepts. ``tenants`` None means any well-formed tenant id.

    ``max_bytes`` can lower the message_bytes limit, not raise it: the parser refuses more anyway."""

    tenants: frozenset[str] | None = None
    max_bytes: int = MAX_MESSAGE_BYTES
    schemas: Mapping[str, Draft202012Validator] = field(default_factory=dict)


def load_schemas(directory: Path | None) -> dict[str, Draft202012Validator]:
    """One JSON Schema per inbound type: ``<directory>/<Type>.json`` checks that type's ``data``."""
    if directory is None:
        return {}
    schemas = {}
    for path in sorted(Path(directory).glob("*.json")):
        try:
            schema = json.loads(path.read_text())
            Draft202012Validator.check_schema(schema)
        except (json.JSONDecodeError, SchemaError) as error:
            raise ValueError(f"{path}: not a valid JSON Schema: {error}") from None
        schemas[path.stem] = Draft202012Validator(schema)
    return schemas


def check_inbound(value: Any, policy: InboundPolicy) -> tuple[str, dict[str, Any]]:
    """The tenant and the checked CloudEvent document of a structured-mode message, or Rejected."""
    document = parse_value(value, policy, size=len(value) if _is_bytes(value) else 0)
    if not isinstance(document, dict):
        raise Rejected(
            "not_an_object", f"a CloudEvent is a JSON object, not a JSON {type(document).__name__}"
        )
    return check_document(document, policy)


def _is_bytes(value: Any) -> bool:
    return isinstance(value, (bytes, bytearray, memoryview))


def parse_value(value: Any, policy: InboundPolicy, *, size: int, what: str = "the message") -> Any:
    """The JSON a message value holds, within the limits (``size``: the bytes that count against
    message_bytes, which in binary mode include the headers), or Rejected."""
    if value is None or not _is_bytes(value) or not value:
        raise Rejected("empty", "the message has no value (a tombstone or an empty body)")
    value = bytes(value)
    size_limit = message_bytes_limit(policy)
    if size > size_limit.value:
        # Refused before decoding: a huge message costs no parsing.
        raise Rejected(
            "oversize",
            f"the message is {size:,} bytes; the limit is {size_limit.describe()}",
            size_limit,
        )
    return decode_inbound_json(value, what)


def decode_inbound_json(value: bytes, what: str = "the message") -> Any:
    """UTF-8 JSON bytes (a message, a binary-mode event's data) within the limits, or Rejected naming ``what``."""
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as error:
        raise Rejected(
            "not_utf8", f"{what} is not UTF-8 text: {error.reason} at byte {error.start}"
        ) from None
    return parse_inbound_json(text, what)


def check_document(document: dict[str, Any], policy: InboundPolicy, *,
                   attributes_in: str = "") -> tuple[str, dict[str, Any]]:  # fmt: skip
    """The tenant and the checked document of a CloudEvent in either mode (``attributes_in`` says where a
    binary-mode event's attributes were looked for, for the missing_attribute reason), or Rejected."""
    missing = [name for name in REQUIRED if name not in document]
    if missing:
        raise Rejected(
            "missing_attribute",
            f"required CloudEvents attribute(s) missing{attributes_in}: {', '.join(missing)}",
        )
    _check_attributes(document)
    tenant = _check_tenant(document, policy)
    event_type = document["type"]
    if event_type in EVENT_CLASSES or event_type in INTERNAL_TYPES:
        raise Rejected(
            "reserved_type",
            f"type {_show(event_type)} is a crmflow domain event; other services cannot publish it",
        )
    if "data_base64" in document:
        raise Rejected("bad_content_type", "binary data (data_base64) is not accepted; send JSON data")
    content_type = document.get("datacontenttype")
    if content_type is not None and not JSON_CONTENT.fullmatch(str(content_type)):
        raise Rejected("bad_content_type", f"datacontenttype {_show(content_type)} is not JSON")
    if _has_transcoder_keys(document.get("data")):
        raise Rejected(
            "reserved_keys",
            "data holds an object with exactly the keys _type_ and _data_, which crmflow reserves",
        )
    validator = policy.schemas.get(event_type)
    if validator is not None:
        errors = sorted(validator.iter_errors(document.get("data")), key=lambda e: list(e.absolute_path))
        if errors:
            where = "/".join(str(p) for p in errors[0].absolute_path) or "(root)"
            raise Rejected(
                "schema_violation",
                f"data does not match the {event_type} schema at {where}: {errors[0].message}",
            )
    if event_type == USAGE_REPORTED:  # the one inbound type crmflow itself reads (aggregates/usage.py)
        try:
            usage_of(document.get("data"))
        except InvalidValueError as error:
            raise Rejected("bad_usage", error.message) from None
    return tenant, document


def message_bytes_limit(policy: InboundPolicy) -> Limit:
    """The message size limit in force: the policy's, if it is lower than crmflow's."""
    return Limit("message_bytes", min(policy.max_bytes, MAX_MESSAGE_BYTES), "bytes")


def parse_inbound_json(text: str, what: str = "the message") -> Any:
    """JSON within crmflow's limits, or Rejected naming ``what`` (the message, a binary event's data)."""
    try:
        document = parse_json(text)
    except LimitExceeded as error:
        raise Rejected("limit_exceeded", f"{what} is over a limit: {error}", error.limit) from None
    except json.JSONDecodeError as error:
        raise Rejected(
            "not_json", f"{what} is not JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    except ValueError as error:  # NaN, Infinity, a number too large for a float, a NUL in a string
        raise Rejected("not_json", f"{what} is not JSON crmflow can store: {error}") from None
    # Only a message with such an escape can hold one; the others skip the walk.
    at = lone_surrogate_at(document) if SURROGATE_ESCAPE.search(text) else None
    if at is not None:
        raise Rejected(
            "not_utf8",
            f"the string at {at} holds a lone UTF-16 surrogate escape "
            "(\\ud800-\\udfff without its pair), which is not Unicode text",
        )
    return document


def _show(value: Any) -> str:
    """A value quoted in a reason, cut short."""
    shown = repr(value)
    return shown if len(shown) <= SHOWN_CHARS else f"{shown[:SHOWN_CHARS]}... ({len(shown):,} characters)"


def _check_attributes(document: dict[str, Any]) -> None:
    if document["specversion"] != "1.0":
        raise Rejected(
            "bad_specversion", f'specversion {_show(document["specversion"])} is not supported; use "1.0"'
        )
    for name in ("id", "source", "type"):
        if not isinstance(document[name], str) or not document[name].strip():
            raise Rejected("bad_attribute", f"{name} must be a non-empty string")
    for name, value in document.items():
        if name in NOT_EXTENSIONS:  # names known to be good, with values checked by their own rules
            continue
        problem = name_problem(name) or (None if value is None else extension_value_problem(name, value))
        if problem is not None:
            raise Rejected("bad_attribute", problem)
    for name in ("subject", "datacontenttype", "dataschema"):
        # A null attribute counts as absent (and is left out when republished); an empty one is not allowed.
        if document.get(name) is not None and (not isinstance(document[name], str) or not document[name]):
            raise Rejected("bad_attribute", f"{name} must be a non-empty string")
    time = document.get("time")
    if time is not None and not (isinstance(time, str) and is_rfc3339(time)):
        raise Rejected(
            "bad_attribute",
            f"time {_show(time)} is not an RFC 3339 timestamp (like 2026-12-01T10:00:00Z or "
            "2026-12-01T10:00:00.5+01:00)",
        )


def _check_tenant(document: dict[str, Any], policy: InboundPolicy) -> str:
    tenant = document.get("tenantid")
    if tenant is None:
        raise Rejected(
            "missing_tenant", "the tenantid extension is missing: say which tenant the event is for"
        )
    if not isinstance(tenant, str) or not TENANT_PATTERN.fullmatch(tenant):
        raise Rejected(
            "bad_tenant",
            f"tenantid {_show(tenant)} is not a valid tenant id: use 1-63 lower-case "
            "letters, digits, '-' or '_', starting with a letter or digit",
        )
    if policy.tenants is not None and tenant not in policy.tenants:
        raise Rejected("unknown_tenant", f"tenant {_show(tenant)} is not a tenant of this crmflow")
    return tenant


def _has_transcoder_keys(value: Any) -> bool:
    if isinstance(value, dict):
        return set(value) == TRANSCODER_KEYS or any(_has_transcoder_keys(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_transcoder_keys(v) for v in value)
    return False
