"""Commands and tokens meet the same limits and the same tenant rule as inbound events."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import jwt
import pytest

from crmflow.aggregates.application import CommandRequest, CrmApplication
from crmflow.aggregates.errors import InvalidCommandError, InvalidValueError
from crmflow.aggregates.tenants import check_tenant
from crmflow.workers.api.tokens import InvalidToken, issue_token, read_token

AT = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
SECRET = "a-test-secret-that-is-long-enough-for-hs256"


@pytest.fixture
def app() -> CrmApplication:
    return CrmApplication("memory://", clock=lambda: AT)


def stored(app: CrmApplication) -> int:
    return int(app.recorder.max_notification_id() or 0)


@pytest.mark.parametrize("tenant", ["acme\n", "acme\r\n", "\nacme", "ACME", "", "-acme", "a" * 64], ids=repr)
def test_a_tenant_id_is_matched_whole(tenant: str) -> None:
    with pytest.raises(InvalidValueError) as refused:
        check_tenant(tenant)
    assert "is not a valid tenant id" in refused.value.message


def test_a_command_for_a_tenant_with_a_trailing_newline_is_refused_and_nothing_is_stored(
    app: CrmApplication,
) -> None:
    with pytest.raises(InvalidValueError):
        app.execute(CommandRequest("lead.create", "acme\n", {"name": "Ada"}))
    assert stored(app) == 0


def test_a_token_cannot_be_issued_for_a_tenant_with_a_trailing_newline() -> None:
    with pytest.raises(InvalidValueError):
        issue_token(SECRET, tenant="acme\n", role="sales", subject="ada")


def test_a_signed_token_naming_a_tenant_with_a_trailing_newline_is_refused() -> None:
    forged = jwt.encode(
        {"sub": "ada", "tenant": "acme\n", "role": "sales", "iat": int(AT.timestamp())}, SECRET
    )
    with pytest.raises(InvalidToken) as refused:
        read_token(SECRET, forged)
    assert "'acme\\n' is not a valid tenant id" in str(refused.value)


def deep(levels: int) -> object:
    value: object = "leaf"
    for _ in range(levels):
        value = {"x": value}
    return value


OVER_LIMITS = [
    # The payload object is level 1, so 32 objects inside its "notes" make 33 levels.
    ("nested_33_levels", {"name": "Ada", "notes": deep(32)}, "json_depth"),
    ("integer_2_to_the_64", {"name": "Ada", "employees": 2**64}, "integer_range"),  # 18446744073709551616
    ("string_over_65536_chars", {"name": "x" * (64 * 1024 + 1)}, "string_chars"),
]


@pytest.mark.parametrize(("name", "payload", "limit"), OVER_LIMITS, ids=[n for n, _, _ in OVER_LIMITS])
def test_a_command_payload_over_a_limit_is_refused_naming_it_and_nothing_is_stored(
    app: CrmApplication, name: str, payload: dict[str, object], limit: str
) -> None:
    with pytest.raises(InvalidCommandError) as refused:
        app.execute(CommandRequest("lead.create", "acme", payload))
    assert refused.value.code == "limit_exceeded"
    assert refused.value.details["limit"] == limit
    assert f"the limit is {limit} (" in refused.value.message
    assert stored(app) == 0


def test_a_command_payload_with_nan_is_refused_as_invalid(app: CrmApplication) -> None:
    with pytest.raises(InvalidCommandError) as refused:
        app.execute(CommandRequest("lead.create", "acme", {"name": "Ada", "score": float("nan")}))
    assert refused.value.code == "invalid_command" and "nan" in refused.value.message
    assert stored(app) == 0


def test_a_command_payload_that_is_not_an_object_is_refused(app: CrmApplication) -> None:
    with pytest.raises(InvalidCommandError) as refused:
        app.execute(CommandRequest("lead.create", "acme", ["Ada"]))  # type: ignore[arg-type]
    assert "must be a JSON object, not list" in refused.value.message


def test_a_payload_just_inside_the_limits_is_checked_by_the_command_as_usual(app: CrmApplication) -> None:
    # 31 objects inside the payload object: 32 levels, the limit; lead.create then names the unknown field.
    with pytest.raises(InvalidCommandError) as refused:
        app.execute(
            CommandRequest("lead.create", "acme", json.loads(json.dumps({"name": "Ada", "x": deep(31)})))
        )
    assert refused.value.code == "invalid_command" and "x: " in refused.value.message


def test_a_command_payload_with_a_lone_surrogate_anywhere_is_refused_before_it_is_stored(
    app: CrmApplication,
) -> None:
    # Read from JSON "\ud800": neither the store's encoder nor the relay's could write it.
    payload = json.loads('{"name": "Ada", "custom": {"note\\ud800": "x"}}')
    with pytest.raises(InvalidCommandError) as refused:
        app.execute(CommandRequest("lead.create", "acme", payload))
    assert "custom.note" in refused.value.message and "lone UTF-16 surrogate" in refused.value.message
    assert stored(app) == 0
