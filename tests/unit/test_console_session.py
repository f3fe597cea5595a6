"""The console's session cookie, CSRF check and sign-in links: pure logic, no server."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

import crmflow.aggregates.commands  # noqa: F401  - the command table the role table is checked against
from crmflow.workers.api.tokens import InvalidToken, issue_token, read_token
from crmflow.workers.console.links import LINK_LIFETIME, UsedLinks, issue_link_token
from crmflow.workers.console.session import (
    LIFETIME,
    InvalidSession,
    cookie_flags,
    csrf_matches,
    open_session,
    read_session,
)

SECRET = "unit-secret-that-is-long-enough-for-hs256"
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def _session(**kwargs: object) -> str:
    claims = read_token(SECRET, issue_token(SECRET, tenant="acme", role="analyst", subject="grace"))
    return open_session(SECRET, claims, **kwargs)  # type: ignore[arg-type]


def test_a_session_names_the_tokens_caller_and_carries_a_csrf_nonce_of_its_own() -> None:
    first, second = read_session(SECRET, _session()), read_session(SECRET, _session())
    assert (first.principal.subject, first.principal.tenant, first.principal.role.name) == (
        "grace",
        "acme",
        "analyst",
    )
    assert first.csrf and first.csrf != second.csrf, "a nonce per session, not per user"


def test_the_csrf_check_takes_only_the_sessions_own_nonce() -> None:
    session = read_session(SECRET, _session())
    assert csrf_matches(session, session.csrf)
    assert not csrf_matches(session, None)
    assert not csrf_matches(session, "")
    assert not csrf_matches(session, read_session(SECRET, _session()).csrf), "another session's nonce"


def test_a_session_is_not_a_bearer_token_and_a_bearer_token_is_not_a_session() -> None:
    with pytest.raises(InvalidToken, match="invalid"):
        read_token(SECRET, _session())
    with pytest.raises(InvalidSession, match="not valid here"):
        read_session(SECRET, issue_token(SECRET, tenant="acme", role="admin", subject="root"))


def test_a_session_expires_after_its_lifetime_and_never_outlives_the_token() -> None:
    with pytest.raises(InvalidSession, match="expired"):
        read_session(SECRET, _session(now=NOW - LIFETIME - timedelta(minutes=5)))
    soon = datetime.now(timezone.utc) + timedelta(minutes=10)
    assert read_session(SECRET, _session(token_expires=soon)).expires == soon.replace(microsecond=0)
    with pytest.raises(InvalidSession, match="not signed in"):
        read_session(SECRET, None)
    with pytest.raises(InvalidSession, match="not valid here"):
        read_session("another-secret-that-is-long-enough-for-it", _session())


def test_the_cookie_is_httponly_strict_and_secure_exactly_when_the_request_came_over_tls() -> None:
    assert cookie_flags(over_tls=True) == {
        "httponly": True,
        "samesite": "strict",
        "secure": True,
        "path": "/console",
    }
    assert cookie_flags(over_tls=False, max_age=60)["secure"] is False
    assert cookie_flags(over_tls=False, max_age=60)["max_age"] == 60


def test_a_sign_in_link_works_once_not_after_it_expires_and_never_as_an_api_token() -> None:
    used = UsedLinks()
    link = issue_link_token(SECRET, tenant="acme", role="sales", subject="ada")
    claims, expires = used.claim(SECRET, link)
    assert (claims.subject, claims.role.name) == ("ada", "sales") and expires > datetime.now(timezone.utc)
    with pytest.raises(InvalidToken, match="used already"):
        used.claim(SECRET, link)
    old = issue_link_token(SECRET, tenant="acme", role="sales", subject="ada", now=NOW - LINK_LIFETIME * 2)
    with pytest.raises(InvalidToken, match="expired"):
        UsedLinks().claim(SECRET, old)
    with pytest.raises(InvalidToken):
        read_token(SECRET, issue_link_token(SECRET, tenant="acme", role="sales", subject="ada"))
    with pytest.raises(InvalidToken, match="not a sign-in link"):
        UsedLinks().claim(SECRET, issue_token(SECRET, tenant="acme", role="sales", subject="ada"))
