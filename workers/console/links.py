"""One-time sign-in links (`crmflow token issue --console`): a short-lived token only the console accepts.

The link's token has the audience ``crmflow-console-sign-in`` (the API refuses it: PyJWT rejects an audience
it was not told to expect), lives ``LINK_LIFETIME`` and carries a random ``jti`` that the server remembers
once used, so a link works once per server, and not at all after 15 minutes. No FastAPI here: the CLI uses it.
"""

from __future__ import annotations

import secrets
import threading
from datetime import datetime, timedelta, timezone
from typing import Any

import jwt

from crmflow.workers.api.tokens import ALGORITHM, CLOCK_SKEW, Claims, InvalidToken, check_claims

AUDIENCE = "crmflow-console-sign-in"
LINK_LIFETIME = timedelta(minutes=15)


def issue_link_token(
    secret: str, *, tenant: str, role: str, subject: str, now: datetime | None = None
) -> str:
    check_claims(tenant, role, subject)
    issued = now or datetime.now(timezone.utc)
    claims: dict[str, Any] = {
        "sub": subject,
        "tenant": tenant,
        "role": role,
        "aud": AUDIENCE,
        "iat": int(issued.timestamp()),
        "exp": int((issued + LINK_LIFETIME).timestamp()),
        "jti": secrets.token_urlsafe(16),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def sign_in_link(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/console/sign-in?token={token}"


def decode(secret: str, token: str, *, audience: str, claim: str, error: type[Exception], expired: str,
           invalid: str) -> dict[str, Any]:  # fmt: skip
    """The claims of one of the console's own JWTs (a link's or a session's: ``audience`` tells them apart,
    ``claim`` is the one only it carries); ``error(expired)`` or ``error(invalid)`` when it does not hold."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token, secret, algorithms=[ALGORITHM], audience=audience, leeway=CLOCK_SKEW,
            options={"require": ["sub", "tenant", "role", "exp", claim]},
        )  # fmt: skip
    except jwt.ExpiredSignatureError:
        raise error(expired) from None
    except jwt.InvalidTokenError:
        raise error(invalid) from None
    return claims


class UsedLinks:
    """The jti of every link used on this server, kept until the link would have expired anyway."""

    def __init__(self) -> None:
        self._used: dict[str, float] = {}
        self._lock = threading.Lock()

    def claim(self, secret: str, token: str) -> tuple[Claims, datetime]:
        """The link's claims and expiry, marking it used; InvalidToken if it is not (or no longer) good."""
        claims = decode(
            secret, token, audience=AUDIENCE, claim="jti", error=InvalidToken,
            expired="the sign-in link has expired (links last 15 minutes): ask for a new one",
            invalid="this is not a sign-in link this server issued",
        )  # fmt: skip
        now = datetime.now(timezone.utc).timestamp()
        with self._lock:
            self._used = {
                jti: exp for jti, exp in self._used.items() if exp > now - CLOCK_SKEW.total_seconds()
            }
            if claims["jti"] in self._used:
                raise InvalidToken(
                    "this sign-in link was used already: a link signs in once; ask for a new one"
                )
            self._used[claims["jti"]] = float(claims["exp"])
        role = check_claims(claims["tenant"], claims["role"], claims["sub"])
        return Claims(claims["sub"], claims["tenant"], role), datetime.fromtimestamp(
            claims["exp"], timezone.utc
        )
