"""The JSON Schemas of what the HTTP API reads, as exact as JSON Schema can say it.

A schema here allows nothing the server refuses (a generator's "valid" data is
accepted) and, as far as JSON Schema reaches, refuses what the server refuses.
Where the two cannot meet, the schema is the stricter and the comment says so.

- ``PayloadSchemas``: pydantic's generator for the command payloads, with
  money as the decimal strings it accepts, and strings as the server reads
  them: no NUL (``aggregates.limits``: PostgreSQL stores no U+0000), and with
  whitespace stripped (``Payload``'s ``str_strip_whitespace``) not empty.
- ``CLOUD_EVENT_SCHEMA``: a structured-mode CloudEvent as the intake checks it,
  ``JSON_VALUE_SCHEMA`` its data and extensions within crmflow's JSON limits.
"""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from crmflow.aggregates.catalog import EVENT_CLASSES
from crmflow.aggregates.limits import (
    MAX_ARRAY_ITEMS,
    MAX_INTEGER,
    MAX_OBJECT_KEYS,
    MAX_STRING_CHARS,
    MIN_INTEGER,
)
from crmflow.aggregates.tenants import TENANT_PATTERN
from crmflow.workers.cloudevent_attributes import INT32, MAX_NAME_CHARS, RFC3339
from crmflow.workers.inbound_checks import INTERNAL_TYPES

REF = "#/components/schemas/{model}"
NO_NUL = r"^[^\u0000]*$"
# A character str.strip() keeps: not ECMA-262's \s (what a JSON Schema pattern means), and not the
# characters Python strips that \s lacks (U+001C-U+001F, U+0085). A string with one is not empty stripped.
KEPT_BY_STRIP = r"[^\s\u0000\u001c-\u001f\u0085]"
NOT_BLANK = rf"^[^\u0000]*{KEPT_BY_STRIP}[^\u0000]*$"
# \s in a pydantic pattern is checked by Rust's regex, whose \s has U+0085 and ECMA-262's has not.
RUST_WHITESPACE_IN_A_CLASS = (r"\s", r"\s\u0085")


class PayloadSchemas(GenerateJsonSchema):
    """Pydantic's JSON Schema of a payload, made exact where pydantic's is looser than its validation."""

    def decimal_schema(self, schema: core_schema.DecimalSchema) -> JsonSchemaValue:
        """Money (``Field(ge=0, max_digits=18, decimal_places=2)``): a decimal string such as "1500.10",
        or a whole number; so too a price, a quantity (above 0) and a percentage (0 to 100), with their places.

        Pydantic writes "a number, or any string": its constraints fall off the string, and
        ``multipleOf: 0.01`` cannot be checked on binary floats, so a generator sends ``""`` or ``"-1"`` as
        valid. A float with at most two places is accepted too, but no schema can say which floats those
        are."""
        digits, places, floor = schema.get("max_digits"), schema.get("decimal_places"), schema.get("ge")
        above, ceiling = schema.get("gt"), schema.get("le")
        if digits is None or places is None:
            return super().decimal_schema(schema)
        whole = digits - places
        number = rf"\+?([0-9]{{1,{whole}}}(\.[0-9]{{0,{places}}})?|\.[0-9]{{1,{places}}})"
        if floor == 0 and above is None and ceiling is None:  # money, a price
            return {"anyOf": [{"type": "string", "pattern": f"^{number}$"}, {"type": "integer", "minimum": 0,
                                                                           "maximum": 10**whole - 1}]}  # fmt: skip
        if above == 0 and floor is None and ceiling is None:  # a quantity: not 0, so some digit is not 0
            return {"anyOf": [{"type": "string", "pattern": f"^{number}$", "allOf": [{"pattern": "[1-9]"}]},
                              {"type": "integer", "minimum": 1, "maximum": 10**whole - 1}]}  # fmt: skip
        if floor == 0 and ceiling == 100 and above is None:  # a percentage (a line's discount)
            percent = rf"^\+?(100(\.0{{0,{places}}})?|[0-9]{{1,2}}(\.[0-9]{{0,{places}}})?|\.[0-9]{{1,{places}}})$"
            return {"anyOf": [{"type": "string", "pattern": percent}, {"type": "integer", "minimum": 0, "maximum": 100}]}
        return super().decimal_schema(schema)

    def str_schema(self, schema: core_schema.StringSchema) -> JsonSchemaValue:
        json_schema = super().str_schema(schema)
        stripped = bool(self._config.str_strip_whitespace) and json_schema.get("minLength", 0) >= 1
        rule = NOT_BLANK if stripped else NO_NUL
        if "pattern" not in json_schema:
            return {**json_schema, "pattern": rule}
        own = json_schema["pattern"].replace(*RUST_WHITESPACE_IN_A_CLASS)
        return {**json_schema, "pattern": own, "allOf": [{"pattern": rule}]}


def json_value_schema(name: str, *, typed_values_refused: bool) -> dict[str, Any]:
    """Any JSON value within crmflow's limits (``aggregates.limits``), as the schema ``name``.

    The nesting depth limit (32) is the one JSON Schema cannot say. ``typed_values_refused``: no object, at
    any depth, with exactly the keys ``_type_`` and ``_data_`` (the store's typed value; the intake refuses
    it in data as reserved_keys, and so far not in extensions)."""
    ref = {"$ref": REF.format(model=name)}
    typed_value = {"required": ["_type_", "_data_"], "maxProperties": 2}
    text = {"type": "string", "maxLength": MAX_STRING_CHARS, "pattern": NO_NUL}
    return {
        "title": name,
        "description": "a JSON value within crmflow's limits: 64-bit integers, strings of at most "
        f"{MAX_STRING_CHARS:,} characters and no NUL, at most {MAX_ARRAY_ITEMS:,} items and "
        f"{MAX_OBJECT_KEYS:,} keys, nested at most 32 deep",
        "anyOf": [
            {"type": "null"},
            {"type": "boolean"},
            {"type": "integer", "minimum": MIN_INTEGER, "maximum": MAX_INTEGER},
            {"type": "number", "not": {"type": "integer"}},
            text,
            {"type": "array", "maxItems": MAX_ARRAY_ITEMS, "items": ref},
            {
                "type": "object", "maxProperties": MAX_OBJECT_KEYS, "propertyNames": text,
                "additionalProperties": ref, **({"not": typed_value} if typed_values_refused else {}),
            },
        ],
    }  # fmt: skip


JSON_VALUE = "JsonValue"
EXTENSION_VALUE = "ExtensionValue"
JSON_MEDIA_TYPE = r"^application/([\w.+-]+\+)?json(\s*;[^\u0000]*)?$"  # the intake's JSON_CONTENT, anchored
_ATTRIBUTE = {"type": "string", "maxLength": MAX_STRING_CHARS, "pattern": NO_NUL}
_NAMING = {**_ATTRIBUTE, "pattern": NOT_BLANK}  # id, source, type: the intake strips them, then needs text
_OPTIONAL = {"anyOf": [{**_ATTRIBUTE, "minLength": 1}, {"type": "null"}]}  # null counts as absent, "" is refused
# As the intake checks them (crmflow.workers.cloudevent_attributes): names, extension values and times.
_NAME = {"type": "string", "pattern": rf"^(?:[a-z0-9]{{1,{MAX_NAME_CHARS}}}|data_base64)$"}
_TIME = {"type": "string", "format": "date-time", "pattern": f"^(?:{RFC3339.pattern})$"}
EXTENSION_VALUE_SCHEMA = {"anyOf": [_ATTRIBUTE, {"type": "boolean"},
                                    {"type": "integer", "minimum": INT32.start, "maximum": INT32.stop - 1},
                                    {"type": "null"}]}  # fmt: skip

# CloudEvents 1.0 in structured mode as the intake checks it: the required attributes and tenantid (crmflow's
# extension), the optional ones, and any other extension: named [a-z0-9]{1,20}, with a string, boolean or 32-bit
# integer value, as the CloudEvents spec says and the intake checks. data is JSON: data_base64 (binary data) is refused.
CLOUD_EVENT_SCHEMA: dict[str, Any] = {
    "title": "CloudEvent",
    "description": "A CloudEvent 1.0 in structured mode, with crmflow's tenantid extension.",
    "type": "object",
    "required": ["specversion", "id", "source", "type", "tenantid"],
    "maxProperties": MAX_OBJECT_KEYS,
    "propertyNames": _NAME,
    "properties": {
        "specversion": {"type": "string", "enum": ["1.0"]},
        "id": {**_NAMING, "description": "unique per source: the same (tenant, source, id) is stored once"},
        "source": {**_NAMING, "description": "a URI-reference naming the sender"},
        "type": {
            **_NAMING, "not": {"enum": sorted({*EVENT_CLASSES, *INTERNAL_TYPES})},
            "description": "not one of crmflow's own event types (refused as reserved_type)",
        },
        "tenantid": {"type": "string", "pattern": f"^(?:{TENANT_PATTERN.pattern})$",
                     "description": "the token's tenant"},
        "subject": _OPTIONAL,
        "time": {"anyOf": [_TIME, {"type": "null"}]},
        "datacontenttype": {"anyOf": [{"type": "string", "pattern": JSON_MEDIA_TYPE}, {"type": "null"}]},
        "dataschema": _OPTIONAL,
        "data": {"$ref": REF.format(model=JSON_VALUE)},
        "data_base64": False,
    },
    "additionalProperties": {"$ref": REF.format(model=EXTENSION_VALUE)},
}  # fmt: skip
VALUE_SCHEMAS = {
    JSON_VALUE: json_value_schema(JSON_VALUE, typed_values_refused=True),
    EXTENSION_VALUE: EXTENSION_VALUE_SCHEMA,
}
