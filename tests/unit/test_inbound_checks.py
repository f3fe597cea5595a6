"""What the intake refuses from other services, and the sentence that says why."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
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
    (
        "oversize",
        raw(form(data={"email": "a@b.c", "notes": "x" * 3000})),
        "the limit is message_bytes (2,048 bytes)",
    ),
    ("not_utf8", b'{"id": "\xff\xfe"}', "not UTF-8"),
    ("not_json", b"{specversion: 1.0", "not JSON"),
    ("not_an_object", b'["a", "list"]', "not a JSON list"),
    ("missing_attribute", raw(form(id=...)), "missing: id"),
    ("missing_attribute", raw(form(type=..., source=...)), "missing: source, type"),
    ("bad_specversion", raw(form(specversion="0.3")), "'0.3' is not supported"),
    ("bad_attribute", raw(form(id=42)), "id must be a non-empty string"),
    ("bad_attribute", raw(form(time="yesterday")), "'yesterday' is not an RFC 3339 timestamp"),
    # ISO 8601, but not RFC 3339: fromisoformat takes both.
    ("bad_attribute", raw(form(time="20261201T100000+0000")), "is not an RFC 3339 timestamp"),
    ("bad_attribute", raw(form(time="2026-12-01T10:00+00:00")), "is not an RFC 3339 timestamp"),
    ("bad_attribute", raw(form(My_Ext="1")), "attribute name 'My_Ext' is not a CloudEvents attribute name"),
    ("bad_attribute", raw(form(**{"e" * 30: "1"})), "use 1-20 lower-case letters a-z and digits 0-9"),
    ("bad_attribute", raw(form(region={"eu": 1})), "extension region is a JSON object"),
    ("bad_attribute", raw(form(subject="")), "subject must be a non-empty string"),
    ("missing_tenant", raw(form(tenantid=...)), "tenantid extension is missing"),
    ("bad_tenant", raw(form(tenantid="ACME Corp")), "'ACME Corp' is not a valid tenant id"),
    ("unknown_tenant", raw(form(tenantid="initech")), "'initech' is not a tenant of this crmflow"),
    ("reserved_type", raw(form(type="LeadConverted")), "'LeadConverted' is a crmflow domain event"),
    ("bad_content_type", raw(form(datacontenttype="text/xml")), "'text/xml' is not JSON"),
    ("bad_content_type", raw(form(data=..., data_base64="aGk=")), "data_base64"),
    (
        "reserved_keys",
        raw(form(data={"email": "a@b.c", "x": {"_type_": "uuid_hex", "_data_": "0"}})),
        "_type_ and _data_",
    ),
    (
        "schema_violation",
        raw(form(data={"name": "Ada"})),
        "FormSubmitted schema at (root): 'email' is a required property",
    ),
]


@pytest.mark.parametrize(
    ("code", "message", "reason"), BAD_MESSAGES, ids=[f"{c}-{i}" for i, (c, _, _) in enumerate(BAD_MESSAGES)]
)
def test_a_bad_message_is_refused_with_a_code_and_a_reason(code: str, message: bytes, reason: str) -> None:
    with pytest.raises(Rejected) as refused:
        check_inbound(message, POLICY)
    assert refused.value.code == code
    assert reason in refused.value.reason


def test_at_least_twelve_kinds_of_bad_message_are_told_apart() -> None:
    assert len({code for code, _, _ in BAD_MESSAGES}) >= 12


def test_a_well_formed_event_of_a_known_tenant_is_accepted_as_sent() -> None:
    tenant, document = check_inbound(
        raw(form(datacontenttype="application/cloudevents+json; charset=utf-8")), POLICY
    )
    assert tenant == "acme"
    assert document["data"] == {"email": "ada@ae.example"}


def test_without_a_tenant_list_any_well_formed_tenant_is_accepted() -> None:
    tenant, _ = check_inbound(raw(form(tenantid="initech")), InboundPolicy())
    assert tenant == "initech"


def test_a_type_without_a_registered_schema_is_accepted_with_any_data() -> None:
    _, document = check_inbound(raw(form(type="WebinarAttended", data={"minutes": 47})), POLICY)
    assert document["type"] == "WebinarAttended"


# Hostile messages: each was found to crash the intake (or be stored and then be unpublishable).
# They are checked with crmflow's own limits (InboundPolicy's defaults), not the small test policy above.
ANY_TENANT = InboundPolicy()


def with_data(data_json: str) -> bytes:
    """A good event with this JSON text as data, written by hand (json.dumps cannot nest 2,000 deep)."""
    return ('{"specversion": "1.0", "id": "h-1", "source": "/hostile", "type": "FormSubmitted", '
            f'"tenantid": "acme", "data": {data_json}}}').encode()  # fmt: skip


HOSTILE = [
    # 100,000 "[" are 100,000 bytes, under the 262,144-byte message limit: the parser meets them.
    ("open_brackets", b"[" * 100_000, "json_depth"),
    ("data_2000_deep", with_data('{"a": ' * 2000 + "1" + "}" * 2000), "json_depth"),
    # orjson, the relay's encoder, stops at 255 levels; crmflow's limit is 32.
    ("data_300_deep", with_data("[" * 300 + "]" * 300), "json_depth"),
    # The document is one level, so 32 arrays inside each other make 1 + 32 = 33 levels.
    ("thirty_three_levels", with_data("[" * 32 + "]" * 32), "json_depth"),
    ("integer_of_5000_digits", with_data("1" * 5000), "integer_range"),
    ("integer_2_to_the_64", with_data(str(2**64)), "integer_range"),  # 18446744073709551616
    ("integer_below_minus_2_to_the_63", with_data(str(-(2**63) - 1)), "integer_range"),
    ("string_over_65536_chars", with_data(json.dumps("x" * (64 * 1024 + 1))), "string_chars"),
    ("object_of_1001_keys", with_data(json.dumps({f"k{i}": i for i in range(1001)})), "object_keys"),
    ("array_of_10001_items", with_data(json.dumps([0] * 10_001)), "array_items"),
]


@pytest.mark.parametrize(("name", "message", "limit"), HOSTILE, ids=[name for name, _, _ in HOSTILE])
def test_a_hostile_message_is_refused_naming_the_limit_it_is_over(
    name: str, message: bytes, limit: str
) -> None:
    with pytest.raises(Rejected) as refused:
        check_inbound(message, ANY_TENANT)
    assert refused.value.code == "limit_exceeded"
    assert refused.value.limit is not None and refused.value.limit.name == limit
    assert f"the limit is {limit} (" in refused.value.reason


def test_an_event_of_exactly_32_levels_is_accepted_and_so_are_the_largest_64_bit_integers() -> None:
    # The document and 31 arrays inside each other: 1 + 31 = 32 levels, the limit.
    _, document = check_inbound(with_data("[" * 31 + "]" * 31), ANY_TENANT)
    depth, value = 0, document["data"]
    while isinstance(value, list):
        depth, value = depth + 1, value[0] if value else None
    assert depth == 31
    _, document = check_inbound(with_data(f"[{2**63 - 1}, {-(2**63)}]"), ANY_TENANT)
    assert document["data"] == [9223372036854775807, -9223372036854775808]


@pytest.mark.parametrize(
    ("number", "shown"),
    [("NaN", "NaN"), ("-Infinity", "-Infinity"), ("1e400", "inf")],
    ids=["nan", "minus_infinity", "1e400"],
)
def test_numbers_json_cannot_carry_are_refused_as_not_json(number: str, shown: str) -> None:
    with pytest.raises(Rejected) as refused:
        check_inbound(with_data(f"[{number}]"), ANY_TENANT)
    assert refused.value.code == "not_json" and shown in refused.value.reason


def test_a_lone_surrogate_escape_is_refused_as_not_unicode_and_a_pair_is_accepted() -> None:
    with pytest.raises(Rejected) as refused:
        check_inbound(with_data('{"name": "\\ud800"}'), ANY_TENANT)
    assert (refused.value.code, "data.name" in refused.value.reason) == ("not_utf8", True)
    _, document = check_inbound(with_data('{"name": "\\ud83d\\ude00"}'), ANY_TENANT)
    assert document["data"]["name"] == "\N{GRINNING FACE}"


@pytest.mark.parametrize("tenant", ["acme\n", "acme\n\n", "\nacme", "acme "], ids=repr)
def test_a_tenant_id_with_anything_around_it_is_refused(tenant: str) -> None:
    with pytest.raises(Rejected) as refused:
        check_inbound(raw(form(tenantid=tenant)), InboundPolicy())
    assert refused.value.code == "bad_tenant"


def test_a_json_content_type_with_a_trailing_newline_is_refused() -> None:
    with pytest.raises(Rejected) as refused:
        check_inbound(raw(form(datacontenttype="application/json\n")), POLICY)
    assert refused.value.code == "bad_content_type"


def test_a_message_over_the_byte_limit_is_refused_before_it_is_decoded() -> None:
    # 262,145 bytes that are not UTF-8: the size is checked first, so the reason is the size.
    with pytest.raises(Rejected) as refused:
        check_inbound(b"\xff" * (256 * 1024 + 1), ANY_TENANT)
    assert refused.value.code == "oversize"
    assert refused.value.reason == "the message is 262,145 bytes; the limit is message_bytes (262,144 bytes)"


def test_a_policy_cannot_raise_the_byte_limit_above_crmflows() -> None:
    generous = InboundPolicy(max_bytes=10 * 1024 * 1024)
    with pytest.raises(Rejected) as refused:
        check_inbound(with_data(json.dumps("x" * 60_000) + ", " + json.dumps({"n": "y" * 250_000})), generous)
    assert refused.value.limit is not None and refused.value.limit.value == 256 * 1024


def test_a_reason_quotes_at_most_a_short_piece_of_a_bad_value() -> None:
    with pytest.raises(Rejected) as refused:
        check_inbound(raw(form(specversion="9" * 50_000)), ANY_TENANT)
    assert len(refused.value.reason) < 200 and "50,002 characters" in refused.value.reason


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.binary(max_size=512) | st.builds(lambda s: s.encode("utf-8", "surrogatepass"), st.text(max_size=256))
)
def test_any_bytes_give_a_checked_document_or_a_refusal_and_nothing_else(value: bytes) -> None:
    try:
        tenant, document = check_inbound(value, ANY_TENANT)
    except Rejected as rejected:
        assert rejected.code and rejected.reason
    else:
        assert isinstance(document, dict) and document["tenantid"] == tenant


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=40,
)


@settings(max_examples=2000, deadline=None)
@given(
    data=JSON_VALUES,
    extra=st.dictionaries(
        st.sampled_from(["id", "time", "subject", "tenantid", "specversion", "datacontenttype", "x"]),
        JSON_VALUES,
        max_size=3,
    ),
)
def test_any_event_shaped_json_gives_a_checked_document_or_a_refusal_and_nothing_else(
    data: Any, extra: dict
) -> None:
    document = {**form(data=data), **extra}
    try:
        message = json.dumps(document).encode()
    except ValueError:
        return  # json.dumps itself refuses it (a circular value cannot arise here; NaN keys and the like)
    try:
        check_inbound(message, ANY_TENANT)
    except Rejected as rejected:
        assert rejected.code and rejected.reason
