"""CloudEvents attribute names, extension values and RFC 3339 times, and how the Kafka binding reads a record."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest

from crmflow.aggregates.inbound import InboundEvent
from crmflow.workers.cloudevent_attributes import (
    MAX_NAME_CHARS,
    extension_value_problem,
    is_rfc3339,
    name_problem,
)
from crmflow.workers.inbound_checks import InboundPolicy, Rejected
from crmflow.workers.kafka.binding import check_record

POLICY = InboundPolicy(tenants=frozenset({"acme"}), max_bytes=2048)
INVOICE = {"invoice": "inv-1", "amount": "12.50"}


def binary_headers(**attributes: str) -> list[tuple[str, bytes]]:
    base = {"specversion": "1.0", "id": "inv-1", "source": "/spring/billing", "type": "InvoicePaid",
            "tenantid": "acme", **attributes}  # fmt: skip
    return [(f"ce_{name}", value.encode()) for name, value in base.items()] + [("content-type", b"application/json")]


def refused(value: Any, headers: Any, key: Any = None) -> Rejected:
    with pytest.raises(Rejected) as raised:
        check_record(value, headers, key, POLICY)
    return raised.value


@pytest.mark.parametrize("name", ["tenantid", "partitionkey", "abc123", "a" * MAX_NAME_CHARS])
def test_lower_case_letters_and_digits_up_to_twenty_make_an_attribute_name(name: str) -> None:
    assert name_problem(name) is None


@pytest.mark.parametrize("name", ["My_Ext", "my_ext", "my-ext", "MYEXT", "", "a" * (MAX_NAME_CHARS + 1), "ext\u00e9",
                                  "\u0661\u0662", "e" * 30])  # fmt: skip
def test_capitals_punctuation_other_scripts_or_over_twenty_characters_are_no_attribute_name(name: str) -> None:
    assert f"attribute name {name!r}" in (name_problem(name) or "")


@pytest.mark.parametrize("text", [
    "2026-12-01T10:00:00Z", "2026-12-01t10:00:00Z", "2026-12-01T10:00:00.5+01:00", "2026-12-01T10:00:00.123456789-05:30",
    "2028-02-29T00:00:00Z", "2026-12-31T23:59:59-00:00",
])  # fmt: skip
def test_rfc_3339_times_in_each_of_their_forms_are_accepted_and_python_reads_them_as_kept(text: str) -> None:
    assert is_rfc3339(text)
    assert datetime.fromisoformat(text).tzinfo is not None  # whatif, simulate and the reports read them so


@pytest.mark.parametrize("text", ["2026-12-01T10:00:00z", "2026-12-01t10:00:00z", "2026-12-31T23:59:60Z"])
def test_a_lower_case_z_and_a_leap_second_are_refused_as_python_cannot_read_them(text: str) -> None:
    assert not is_rfc3339(text)
    with pytest.raises(ValueError):
        datetime.fromisoformat(text)


@pytest.mark.parametrize("text", [
    "20261201T100000+0000",  # ISO 8601 basic format
    "2026-12-01T10:00+00:00",  # no seconds
    "2026-12-01T10:00:00",  # no zone
    "2026-12-01 10:00:00Z",  # a space for the T
    "2026-12-01T10:00:00+0100",  # an offset without its colon
    "2026-02-29T10:00:00Z", "2026-13-01T10:00:00Z", "2026-12-01T24:00:00Z", "2026-12-01T10:00:00+24:00",
    "\u0662\u0660\u0662\u0666-12-01T10:00:00Z",  # Arabic-Indic digits, which \\d would take
    "2026-12-01", "2026-W48-2T10:00:00Z", "",
])  # fmt: skip
def test_times_that_are_not_rfc_3339_are_refused_even_where_fromisoformat_takes_them(text: str) -> None:
    assert not is_rfc3339(text)


@pytest.mark.parametrize(("value", "problem"), [
    ("eu1", None), (True, None), (2**31 - 1, None), (-(2**31), None),
    (2**31, "an integer outside 32 bits"), (1.5, "a JSON number"), ([1], "a JSON array"), ({"a": 1}, "a JSON object"),
])  # fmt: skip
def test_an_extension_is_a_string_a_boolean_or_a_32_bit_integer(value: Any, problem: str | None) -> None:
    found = extension_value_problem("region", value)
    assert found is None if problem is None else problem in found


def test_a_binary_mode_record_is_the_event_its_ce_headers_and_value_say_with_the_key_as_partitionkey() -> None:
    tenant, document = check_record(json.dumps(INVOICE).encode(),
                                    binary_headers(time="2026-12-01T10:00:00Z", region="eu1"), b"billing-eu", POLICY)  # fmt: skip
    assert tenant == "acme"
    assert document == {"specversion": "1.0", "id": "inv-1", "source": "/spring/billing", "type": "InvoicePaid",
                        "tenantid": "acme", "time": "2026-12-01T10:00:00Z", "region": "eu1",
                        "datacontenttype": "application/json", "partitionkey": "billing-eu", "data": INVOICE}  # fmt: skip


def test_a_ce_partitionkey_header_wins_over_the_kafka_key_and_a_binary_event_may_have_no_data() -> None:
    _, document = check_record(b"", binary_headers(partitionkey="inv-1"), b"billing-eu", POLICY)
    assert document["partitionkey"] == "inv-1"
    assert "data" not in document


def test_the_content_type_header_decides_the_mode() -> None:
    structured = json.dumps({"specversion": "1.0", "id": "s-1", "source": "/web", "type": "FormSubmitted",
                             "tenantid": "acme", "data": {}}).encode()  # fmt: skip
    for headers in ([("content-type", b"application/cloudevents+json")],
                    [("content-type", b"Application/CloudEvents+JSON; charset=utf-8")], []):  # fmt: skip
        assert check_record(structured, headers, b"k", POLICY)[1]["id"] == "s-1"
    # application/json is binary mode: the value is data, and the ce_ headers that are not there are missing.
    missing = refused(structured, [("content-type", b"application/json")])
    assert missing.code == "missing_attribute"
    assert "'application/json' means binary mode, with attributes as ce_ headers, and there are none" in missing.reason
    assert missing.reason.endswith("application/cloudevents+json): specversion, id, source, type")
    absent = refused(json.dumps(INVOICE).encode(), [("ce_id", b"inv-1"), ("content-type", b"application/json")])
    assert absent.reason == ("required CloudEvents attribute(s) missing (binary mode: as ce_ headers): "
                             "specversion, source, type")  # fmt: skip


@pytest.mark.parametrize(("headers", "code", "reason"), [
    (binary_headers(My_Ext="1"), "bad_attribute", "attribute name 'My_Ext'"),
    (binary_headers(time="2026-12-01T10:00+00:00"), "bad_attribute", "not an RFC 3339 timestamp"),
    (binary_headers() + [("ce_id", b"again")], "bad_attribute", "'ce_id' is given more than once"),
    (binary_headers() + [("ce_data", b"{}")], "bad_attribute", "not allowed in binary mode"),
    (binary_headers() + [("ce_region", b"\xff")], "not_utf8", "header 'ce_region' is not UTF-8"),
    (binary_headers() + [("ce_region", None)], "bad_attribute", "header 'ce_region' has no value"),
    (binary_headers(tenantid="initech"), "unknown_tenant", "'initech' is not a tenant"),
    ([*binary_headers()[:-1], ("content-type", b"text/plain")], "bad_content_type", "'text/plain' is not JSON"),
    ([("content-type", b"application/cloudevents-batch+json")], "bad_content_type", "is a batch"),
    ([("content-type", b"application/cloudevents+avro")], "bad_content_type", "a structured format, not JSON"),
    (binary_headers() + [("content-type", b"application/json")], "bad_content_type", "more than one content-type"),
])  # fmt: skip
def test_a_bad_binary_mode_record_is_refused_with_one_clear_reason(headers: Any, code: str, reason: str) -> None:
    rejection = refused(json.dumps(INVOICE).encode(), headers)
    assert rejection.code == code
    assert reason in rejection.reason


def test_binary_mode_headers_count_against_the_message_size_limit() -> None:
    rejection = refused(b"{}", binary_headers(note="x" * 3000))
    assert (rejection.code, rejection.limit.name if rejection.limit else None) == ("oversize", "message_bytes")


def test_an_accepted_event_goes_out_with_its_time_as_received_and_without_null_attributes() -> None:
    document = {"specversion": "1.0", "id": "f-1", "source": "/web/forms", "type": "FormSubmitted",
                "time": "2026-12-01T10:00:00.5Z", "subject": None, "region": None, "data": {"a": 1}}  # fmt: skip
    accepted = InboundEvent.accept(document, "acme")
    (created,) = accepted.collect_events()
    wire = created.to_wire()
    assert wire["time"] == "2026-12-01T10:00:00.5Z"
    assert "subject" not in wire and "region" not in wire
    assert None not in wire.values()
