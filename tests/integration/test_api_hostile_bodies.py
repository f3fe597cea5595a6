"""Whatever body is sent to any route, the answer is a 4xx JSON error naming what is wrong, never a 5xx."""

from __future__ import annotations

import json

import pytest

from tests.integration.api_harness import Api, User

MESSAGE_BYTES = 256 * 1024  # aggregates.limits.MAX_MESSAGE_BYTES: 262,144


@pytest.fixture
def admin(api: Api) -> User:
    return api.user("acme", "admin")


def invoice_paid(data_json: str) -> bytes:
    """A billing event with this JSON text as data, written by hand (json.dumps cannot nest 2,000 deep)."""
    return ('{"specversion": "1.0", "id": "inv-42-paid", "source": "billing", "type": "InvoicePaid", '
            f'"tenantid": "acme", "data": {data_json}}}').encode()  # fmt: skip


def payload(value_json: str) -> bytes:
    return f'{{"name": "Ada", "notes": {value_json}}}'.encode()


# (name, value as JSON text, the limit it is over)
OVER_A_LIMIT = [
    ("nested_2000_deep", '{"a": ' * 2000 + "1" + "}" * 2000, "json_depth"),
    ("nested_300_deep", "[" * 300 + "]" * 300, "json_depth"),
    ("integer_of_5000_digits", "1" * 5000, "integer_range"),
    ("integer_2_to_the_64", str(2**64), "integer_range"),
    ("string_over_65536_chars", json.dumps("x" * (64 * 1024 + 1)), "string_chars"),
    ("array_of_10001_items", json.dumps([0] * 10_001), "array_items"),
]
ROUTES = ["/v1/events", "/v1/commands/lead.create", "/v1/processes/validate", "/v1/processes/definitions",
          "/v1/no-such-route"]  # fmt: skip
JSON_TYPES = ["application/json", "application/cloudevents+json"]


@pytest.mark.parametrize("content_type", JSON_TYPES)
@pytest.mark.parametrize(("name", "value", "limit"), OVER_A_LIMIT, ids=[n for n, _, _ in OVER_A_LIMIT])
def test_an_event_over_a_limit_is_refused_with_422_naming_the_limit_and_nothing_is_stored(
    api: Api, admin: User, name: str, value: str, limit: str, content_type: str
) -> None:
    response = admin.post("/v1/events", content=invoice_paid(value), headers={"Content-Type": content_type})
    assert response.status_code == 422, response.text
    body = response.json()
    assert (body["error"], body["details"]["limit"]) == ("limit_exceeded", limit)
    assert f"the limit is {limit} (" in body["message"]
    assert api.stored() == 0


def test_the_same_event_over_a_limit_sent_as_plain_text_is_refused_by_the_intakes_checks(
    api: Api, admin: User
) -> None:
    response = admin.post("/v1/events", content=b"[" * 100_000, headers={"Content-Type": "text/plain"})
    assert response.status_code == 422, response.text
    assert (response.json()["error"], response.json()["details"]["limit"]) == ("limit_exceeded", "json_depth")


@pytest.mark.parametrize(("name", "value", "limit"), OVER_A_LIMIT, ids=[n for n, _, _ in OVER_A_LIMIT])
def test_a_command_payload_over_a_limit_is_refused_with_422_naming_the_limit(
    api: Api, admin: User, name: str, value: str, limit: str
) -> None:
    response = admin.post("/v1/commands/lead.create", content=payload(value),
                          headers={"Content-Type": "application/json"})  # fmt: skip
    assert response.status_code == 422, response.text
    body = response.json()
    assert (body["error"], body["details"]["limit"]) == ("limit_exceeded", limit)
    assert body["details"]["limit_value"] > 0
    assert api.stored() == 0


def test_a_command_payload_of_33_levels_is_refused_as_over_json_depth(api: Api, admin: User) -> None:
    # The payload object, its notes array and 31 arrays inside that: 1 + 32 = 33 levels, one over.
    response = admin.post(
        "/v1/commands/lead.create", json={"name": "Ada", "notes": json.loads("[" * 32 + "]" * 32)}
    )
    assert response.status_code == 422 and response.json()["details"]["limit"] == "json_depth"


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000,
        b"{" * 100_000,
        b"1" * 5000,
        b'{"a": NaN}',
        b'{"a": 1e400}',
        b"\xff\xfe\x00",
        b"",
        b"{",
        b"null",
    ],
    ids=[
        "open_brackets",
        "open_braces",
        "digits",
        "nan",
        "infinity",
        "not_utf8",
        "empty",
        "truncated",
        "null",
    ],
)
def test_any_json_body_to_any_route_gets_a_4xx_json_error_or_success_never_a_5xx(
    admin: User, route: str, body: bytes
) -> None:
    response = admin.post(route, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert set(response.json()) == {"error", "message", "details"}


@pytest.mark.parametrize("route", [*ROUTES, "/v1/reports/pipeline", "/healthz"])
def test_a_body_over_the_byte_limit_is_refused_with_413_before_it_is_read(admin: User, route: str) -> None:
    response = admin.post(
        route, content=b"x" * (MESSAGE_BYTES + 1), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413, response.text
    body = response.json()
    assert body["error"] == "oversize"
    assert body["details"] == {"limit": "message_bytes", "limit_value": 262_144}
    assert body["message"] == "the request body is 262,145 bytes; the limit is message_bytes (262,144 bytes)"


def test_a_body_over_the_byte_limit_without_a_length_is_refused_with_413_as_it_is_read(admin: User) -> None:
    chunks = (b"x" * 65_536 for _ in range(5))  # 5 * 65,536 = 327,680 bytes, sent chunked
    response = admin.post(
        "/v1/commands/lead.create", content=chunks, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413, response.text
    assert response.json()["details"]["limit"] == "message_bytes"


def test_a_body_at_the_byte_limit_passes_the_size_check(admin: User) -> None:
    # {"name": "xxx..."} of exactly 262,144 bytes: 12 bytes of JSON around 262,132 characters.
    exact = b'{"name": "' + b"x" * (MESSAGE_BYTES - 12) + b'"}'
    assert len(exact) == MESSAGE_BYTES
    response = admin.post(
        "/v1/commands/lead.create", content=exact, headers={"Content-Type": "application/json"}
    )
    # Past the size check, a 262,132-character name is over string_chars (65,536).
    assert response.status_code == 422 and response.json()["details"]["limit"] == "string_chars"


def test_a_well_formed_event_and_command_are_still_accepted(api: Api, admin: User) -> None:
    response = admin.post("/v1/events", content=invoice_paid('{"invoice_id": "inv-42", "amount": "4800.00"}'),
                          headers={"Content-Type": "application/cloudevents+json"})  # fmt: skip
    assert response.status_code == 202, response.text
    assert admin.created("lead.create", name="Ada")
