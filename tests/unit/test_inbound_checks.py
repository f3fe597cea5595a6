"""What the intake refuses from other services, and the sentence that says why."""

from __future__ import annotations

import json
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from crmflow.workers.inbound_checks import InboundPolicy, Rejected, check_inbound

POLICY = InboundPolicy(
    tenants=frozenset({"acme", "globex"}),
    max_bytes=2048,
    schemas={"FormSubmitted": Draft202012Validator({
        "type": "object", "required": ["email"],
        "properties": {"email": {"type": "string", "format": "email"}, "name": {"type": "string"}},
    })},
)  # fmt: skip


def form(**changes: Any) -> dict[str, Any]:
    event = {"specversion": "1.0", "id": "f-1", "source": "/web/forms", "type": "FormSubmitted",
             "tenantid": "acme", "time": "2026-03-02T09:00:00Z", "data": {"email": "ada@ae.example"}}  # fmt: skip
    event.update(changes)
    return {k: v for k, v in event.items() if v is not ...}


def raw(document: object) -> bytes:
    return json.dumps(document).encode()


BAD_MESSAGES = [
    ("empty", b"", "has no value"),
    ("oversize", raw(form(data={"email": "a@b.c", "notes": "x" * 3000})), "the limit is 2,048"),
    ("not_utf8", b'{"id": "\xff\xfe"}', "not UTF-8"),
    ("not_json", b"{specversion: 1.0", "not JSON"),
    ("not_an_object", b'["a", "list"]', "not a JSON list"),
    ("missing_attribute", raw(form(id=...)), "missing: id"),
    ("missing_attribute", raw(form(type=..., source=...)), "missing: source, type"),
    ("bad_specversion", raw(form(specversion="0.3")), "'0.3' is not supported"),
    ("bad_attribute", raw(form(id=42)), "id must be a non-empty string"),
    ("bad_attribute", raw(form(time="yesterday")), "'yesterday' is not an RFC 3339 timestamp"),
    ("missing_tenant", raw(form(tenantid=...)), "tenantid extension is missing"),
    ("bad_tenant", raw(form(tenantid="ACME Corp")), "'ACME Corp' is not a valid tenant id"),
    ("unknown_tenant", raw(form(tenantid="initech")), "'initech' is not a tenant of this crmflow"),
    ("reserved_type", raw(form(type="LeadConverted")), "'LeadConverted' is a crmflow domain event"),
    ("bad_content_type", raw(form(datacontenttype="text/xml")), "'text/xml' is not JSON"),
    ("bad_content_type", raw(form(data=..., data_base64="aGk=")), "data_base64"),
    ("reserved_keys", raw(form(data={"email": "a@b.c", "x": {"_type_": "uuid_hex", "_data_": "0"}})), "_type_ and _data_"),
    ("schema_violation", raw(form(data={"name": "Ada"})), "FormSubmitted schema at (root): 'email' is a required property"),
]


@pytest.mark.parametrize(("code", "message", "reason"), BAD_MESSAGES, ids=[f"{c}-{i}" for i, (c, _, _) in enumerate(BAD_MESSAGES)])
def test_a_bad_message_is_refused_with_a_code_and_a_reason(code: str, message: bytes, reason: str) -> None:
    with pytest.raises(Rejected) as refused:
        check_inbound(message, POLICY)
    assert refused.value.code == code
    assert reason in refused.value.reason


def test_at_least_twelve_kinds_of_bad_message_are_told_apart() -> None:
    assert len({code for code, _, _ in BAD_MESSAGES}) >= 12


def test_a_well_formed_event_of_a_known_tenant_is_accepted_as_sent() -> None:
    tenant, document = check_inbound(raw(form(datacontenttype="application/cloudevents+json; charset=utf-8")), POLICY)
    assert tenant == "acme"
    assert document["data"] == {"email": "ada@ae.example"}


def test_without_a_tenant_list_any_well_formed_tenant_is_accepted() -> None:
    tenant, _ = check_inbound(raw(form(tenantid="initech")), InboundPolicy())
    assert tenant == "initech"


def test_a_type_without_a_registered_schema_is_accepted_with_any_data() -> None:
    _, document = check_inbound(raw(form(type="WebinarAttended", data={"minutes": 47})), POLICY)
    assert document["type"] == "WebinarAttended"
