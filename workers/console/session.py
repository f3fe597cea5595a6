"""The console's session cookie and its CSRF token: pure functions, no FastAPI.

The session is a JWT of its own (audience ``crmflow-console``, so the API refuses it as a bearer token)
with the claims of the token the user signed in with, an expiry, and a random CSRF nonce. It is stateless:
any replica of `crmflow serve` with the same secret reads it. The nonce goes into every state-changing
form as a hidden field and must come back equal to the cookie's (the synchronizer-token pattern: a page
of another site can make the browser send the cookie, never read the nonce).
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import jwt

from crmflow.aggregates.errors import InvalidValueError
from crmflow.workers.api.auth import Principal
from crmflow.workers.api.tokens import ALGORITHM, Claims, check_claims
from crmflow.workers.console.links import decode

COOKIE = "crmflow_session"
AUDIENCE = "crmflow-console"
LIFETIME = timedelta(hours=8)
CSRF_FIELD = "csrf_token"


@dataclass(frozen=True)
class Session:
    principal: Principal
    csrf: str
    expires: datetime


class InvalidSession(Exception):
    """No session, or one this server did not issue or that has expired; the message says which."""


def open_session(
    secret: str, claims: Claims, *, token_expires: datetime | None = None, now: datetime | None = None
) -> str:
    """The cookie's value for someone whose token proved these claims; never outlives the token."""
    issued = now or datetime.now(timezone.utc)
    expires = issued + LIFETIME
    if token_expires is not None and token_expires < expires:
        expires = token_expires
    payload = {
        "sub": claims.subject,
        "tenant": claims.tenant,
        "role": claims.role.name,
        "aud": AUDIENCE,
        "iat": int(issued.timestamp()),
        "exp": int(expires.timestamp()),
        "csrf": secrets.token_urlsafe(24),
    }
    return jwt.encode(payload, secret, algorithm=ALGORITHM)


def read_session(secret: str, value: str | None) -> Session:
    if not value:
        raise InvalidSession("you are not signed in")
    claims = decode(
        secret, value, audience=AUDIENCE, claim="csrf", error=InvalidSession,
        expired="your session has expired: sign in again",
        invalid="your session is not valid here: sign in again",
    )  # fmt: skip
    try:
        # The API's own rule for which claims make a caller: a role that no longer exists ends the session.
        role = check_claims(claims["tenant"], claims["role"], claims["sub"])
    except InvalidValueError:
        raise InvalidSession(
            "your session names a role or tenant no longer accepted: sign in again"
        ) from None
    expires = datetime.fromtimestamp(claims["exp"], timezone.utc)
    return Session(Principal(claims["sub"], claims["tenant"], role), str(claims["csrf"]), expires)


def csrf_matches(session: Session, sent: str | None) -> bool:
    """The form's hidden field is the session's nonce (compared in constant time)."""
    return bool(sent) and hmac.compare_digest(session.csrf.encode(), str(sent).encode())


def cookie_flags(*, over_tls: bool, max_age: int | None = None) -> dict[str, Any]:
    """Starlette set_cookie arguments: never readable by scripts, never sent by another site's page,
    Secure whenever the browser reached us over TLS (directly or through a proxy that says so)."""
    flags: dict[str, Any] = {
        "httponly": True,
        "samesite": "strict",
        "secure": over_tls,
        "path": "/console",
    }
    if max_age is not None:
        flags["max_age"] = max_age
    return flags
