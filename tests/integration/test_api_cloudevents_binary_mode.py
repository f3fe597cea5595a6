"""Another service sends its events as the CloudEvents SDK writes them: binary mode (ce- headers, the data as
the body, the default of Knative and most SDKs) or structured mode, and both meet the intake's checks."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
from cloudevents.core.bindings.http import HTTPMessage, to_binary_event, to_structured_event
from cloudevents.core.v1.event import CloudEvent
from cloudevents.v1.conversion import to_binary, to_structured
from cloudevents.v1.http import CloudEvent as LegacyCloudEvent

from crmflow.aggregates.inbound import inbound_id
from tests.integration.api_harness import Api, User


@pytest.fixture
def billing(api: Api) -> User:
    return api.user("acme", "sales", subject="billing")


def invoice_paid(tenant: str = "acme", **attributes: Any) -> CloudEvent:
    return CloudEvent(
        {"id": "inv-42-paid", "source": "billing", "type": "InvoicePaid", "tenantid": tenant,
         "datacontenttype": "application/json", **attributes},
        {"invoice_id": "inv-42", "amount": "4800.00", "currency": "EUR"},
    )  # fmt: skip


def send(user: User, message: HTTPMessage, **headers: str) -> Any:
    return user.post("/v1/events", content=message.body, headers={**message.headers, **headers})


def test_an_event_sent_in_binary_mode_is_stored_and_the_same_event_in_structured_mode_is_its_duplicate(
    api: Api, billing: User
) -> None:
    binary = to_binary_event(invoice_paid())
    assert "ce-id" in binary.headers and binary.body.startswith(b'{"invoice_id"')  # the SDK's binary mode

    first = send(billing, binary)
    assert (first.status_code, first.json()) == (202, {"stored": True}), first.text
    stored = api.stored()

    again = send(billing, to_structured_event(invoice_paid()))
    assert (again.status_code, again.json()) == (202, {"stored": False, "duplicate": True}), again.text
    assert api.stored() == stored


def test_the_attributes_from_the_headers_and_the_data_from_the_body_are_what_is_stored(
    api: Api, billing: User
) -> None:
    paid_at = datetime(2026, 3, 2, 9, 15, tzinfo=timezone.utc)
    message = to_binary_event(invoice_paid(subject="inv-42", time=paid_at))
    assert send(billing, message).status_code == 202
    (accepted,) = api.app.history(inbound_id("acme", "billing", "inv-42-paid"), "acme")
    assert accepted.type == "InboundEventAccepted"
    assert {k: accepted.data[k] for k in ("event_type", "subject", "datacontenttype", "data")} == {
        "event_type": "InvoicePaid",
        "subject": "inv-42",
        "datacontenttype": "application/json",
        "data": {"invoice_id": "inv-42", "amount": "4800.00", "currency": "EUR"},
    }
    assert datetime.fromisoformat(str(accepted.data["event_time"])) == paid_at


@pytest.mark.parametrize(
    ("header", "value", "error"),
    [
        ("ce-specversion", "0.3", "bad_attribute"),
        ("ce-time", "yesterday", "bad_attribute"),
        ("ce-Not_A_Name", "x", "bad_attribute"),
        ("content-type", "text/plain", "bad_content_type"),
    ],
)
def test_a_binary_mode_event_with_a_bad_header_is_refused_with_the_reason_and_nothing_is_stored(
    api: Api, billing: User, header: str, value: str, error: str
) -> None:
    stored = api.stored()
    response = send(billing, to_binary_event(invoice_paid()), **{header: value})
    assert (response.status_code, response.json()["error"]) == (422, error), response.text
    assert api.stored() == stored


def test_a_binary_mode_event_without_an_id_is_refused_in_the_intakes_words_not_given_a_made_up_one(
    api: Api, billing: User
) -> None:
    message = to_binary_event(invoice_paid())
    headers = {name: value for name, value in message.headers.items() if name != "ce-id"}
    response = billing.post("/v1/events", content=message.body, headers=headers)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "missing_attribute"
    assert response.json()["message"] == "required CloudEvents attribute(s) missing: id"
    assert api.stored() == 0


def test_a_binary_mode_event_for_another_tenant_is_403_as_in_structured_mode(api: Api, billing: User) -> None:
    response = send(billing, to_binary_event(invoice_paid(tenant="globex")))
    assert (response.status_code, response.json()["error"]) == (403, "wrong_tenant"), response.text
    assert api.stored() == 0


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b'{"invoice_id": ', "not_json"),
        (b'{"a": ' * 2000 + b"1" + b"}" * 2000, "limit_exceeded"),
        (b'{"invoice_id": "\xff"}', "invalid_request"),  # refused as every body with bytes that are no text
        (b'{"invoice_id": "inv-42"}, "tenantid": "globex"', "not_json"),  # data cannot add attributes
    ],
    ids=["bad_json", "nested_2000_deep", "not_utf8", "data_smuggling_an_attribute"],
)
def test_binary_mode_data_that_is_not_json_within_the_limits_is_refused(
    api: Api, billing: User, body: bytes, error: str
) -> None:
    message = to_binary_event(invoice_paid())
    response = billing.post("/v1/events", content=body, headers=message.headers)
    assert (response.status_code, response.json()["error"]) == (422, error), response.text
    assert api.stored() == 0


def test_a_structured_event_with_ce_headers_is_read_from_its_body(api: Api, billing: User) -> None:
    """The structured media type wins over stray ce- headers, as the HTTP binding says."""
    message = to_structured_event(invoice_paid())
    response = send(billing, message, **{"ce-id": "something-else"})
    assert (response.status_code, response.json()) == (202, {"stored": True}), response.text


def test_the_sdks_older_api_in_both_modes_is_read_too(api: Api, billing: User) -> None:
    """cloudevents.v1.conversion (the SDK's 1.x API, still what most code calls): binary mode with no
    Content-Type at all, whose data is then JSON, and structured mode."""
    attributes = {"id": "inv-7-paid", "source": "billing", "type": "InvoicePaid", "tenantid": "acme"}
    event = LegacyCloudEvent(attributes, {"invoice_id": "inv-7"})
    headers, body = to_binary(event)
    assert "content-type" not in {name.lower() for name in headers}
    first = billing.post("/v1/events", content=body, headers=headers)
    assert (first.status_code, first.json()) == (202, {"stored": True}), first.text

    headers, body = to_structured(event)
    again = billing.post("/v1/events", content=body, headers=headers)
    assert (again.status_code, again.json()) == (202, {"stored": False, "duplicate": True}), again.text
    (accepted,) = api.app.history(inbound_id("acme", "billing", "inv-7-paid"), "acme")
    assert accepted.data["data"] == {"invoice_id": "inv-7"}
