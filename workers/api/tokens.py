"""Bearer tokens and the role table: what a token says, and what each role may do.

A token is an HS256 JWT signed with ``CRMFLOW_API_SECRET``, with the claims
``sub`` (who), ``tenant`` (whose data), ``role``, ``iat`` and optionally
``exp``. The tenant comes only from the token, never from the request, so a
caller cannot act for a tenant it holds no token for. A token with tenant
``"*"`` is a platform token: role admin, for platform-wide process
definitions only; it has no tenant, so it runs no commands and reads no data.

The role table (``ROLES``; the README shows it too):

- marketing: lead.* and campaign.* commands and records; reports funnel, campaigns; inbound events.
- sales: lead.*, opportunity.*, account.*, contact.*, activity.*; reports pipeline, forecast, win-rate,
  funnel, accounts, activities, profile, profitability; inbound events.
- service: case.*, article.* and activity.*; reports sla, faq, activities; inbound events.
- analyst: no commands, no records; every report, process instances.
- admin: every command and record, every report, inbound events, process definitions and instances,
  dead letters (the console's page and redrive).

No FastAPI here: the CLI (`crmflow token issue`) uses this module too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import jwt

from crmflow.aggregates.commanding import COMMANDS
from crmflow.aggregates.errors import InvalidValueError
from crmflow.aggregates.tenants import check_tenant
from crmflow.projections.reports import REPORTS

PLATFORM = "*"
ALGORITHM = "HS256"
CLOCK_SKEW = timedelta(seconds=30)  # between the issuer's clock and ours
REQUIRED_CLAIMS = ("sub", "tenant", "role", "iat")
AREAS = frozenset(name.split(".", 1)[0] for name in COMMANDS)


@dataclass(frozen=True)
class Role:
    name: str
    summary: str
    areas: frozenset[str] = frozenset()  # command areas: runs their commands, reads their records
    reports: frozenset[str] = frozenset()
    inbound: bool = True  # may send events from other services
    reads_every_record: bool = False
    definitions: bool = False  # list, validate and deploy process definitions
    instances: bool = False  # the process instances report
    dead_letters: bool = False  # the console's dead letters: see them (its own tenant's) and redrive them


ROLES: dict[str, Role] = {
    role.name: role
    for role in (
        Role(
            "marketing",
            "campaigns and the leads they bring",
            areas=frozenset({"lead", "campaign"}),
            reports=frozenset({"funnel", "campaigns"}),
        ),
        Role(
            "sales",
            "leads, accounts, contacts and the pipeline",
            areas=frozenset({"lead", "opportunity", "account", "contact", "activity"}),
            reports=frozenset({"pipeline", "forecast", "win-rate", "funnel", "accounts", "activities",
                               # The customer view: what an account owns and uses, and what it is worth.
                               "profile", "profitability"}),
        ),
        Role(
            "service",
            "cases and the knowledge base",
            areas=frozenset({"case", "article", "activity"}),
            reports=frozenset({"sla", "faq", "activities"}),
        ),
        Role(
            "analyst",
            "reads every report, changes nothing",
            reports=frozenset(REPORTS),
            inbound=False,
            instances=True,
        ),
        Role(
            "admin",
            "everything, process definitions included",
            areas=AREAS,
            reports=frozenset(REPORTS),
            reads_every_record=True,
            definitions=True,
            instances=True,
            dead_letters=True,
        ),
    )
}
# The table names areas and reports by hand: fail at import if the catalogue moved under it.
_UNKNOWN = {name: (role.areas - AREAS) | (role.reports - set(REPORTS)) for name, role in ROLES.items()}
if any(_UNKNOWN.values()):
    raise RuntimeError(f"the role table names command areas or reports that do not exist: {_UNKNOWN}")


@dataclass(frozen=True)
class Claims:
    """What a valid token says."""

    subject: str
    tenant: str  # "*" for a platform token
    role: Role


class InvalidToken(Exception):
    """The token is missing a claim, expired, badly signed or not a JWT; the message says which."""


def check_claims(tenant: str, role: str, subject: str) -> Role:
    """The role, if the claims make a token crmflow accepts; InvalidValueError naming the bad one."""
    if role not in ROLES:
        raise InvalidValueError(
            f"role {role!r} is not a role: use one of {', '.join(ROLES)}",
            field="role",
            value=role,
            allowed=list(ROLES),
        )
    if tenant == PLATFORM:
        if role != "admin":
            raise InvalidValueError(
                f'a platform token (tenant "*") must have role admin, not {role}', field="role", value=role
            )
    else:
        check_tenant(tenant)
    if not subject.strip():
        raise InvalidValueError(
            "the subject (who the token is for) must not be empty", field="sub", value=subject
        )
    return ROLES[role]


def issue_token(
    secret: str,
    *,
    tenant: str,
    role: str,
    subject: str,
    expires_in: timedelta | None = None,
    now: datetime | None = None,
) -> str:
    check_claims(tenant, role, subject)
    issued = now or datetime.now(timezone.utc)
    claims: dict[str, Any] = {"sub": subject, "tenant": tenant, "role": role, "iat": int(issued.timestamp())}
    if expires_in is not None:
        claims["exp"] = int((issued + expires_in).timestamp())
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def read_token(secret: str, token: str) -> Claims:
    """The token's claims; InvalidToken saying what is wrong with it."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            leeway=CLOCK_SKEW,
            options={"require": list(REQUIRED_CLAIMS)},
        )
    except jwt.ExpiredSignatureError:
        raise InvalidToken("the token has expired: ask for a new one") from None
    except jwt.InvalidSignatureError:
        raise InvalidToken(
            "the token's signature does not match: it was not issued with this server's secret"
        ) from None
    except jwt.MissingRequiredClaimError as error:
        raise InvalidToken(
            f"the token lacks the {error.claim!r} claim ({', '.join(REQUIRED_CLAIMS)} are required)"
        ) from None
    except jwt.InvalidAlgorithmError:
        raise InvalidToken(f"the token is not signed with {ALGORITHM}") from None
    except jwt.DecodeError:
        raise InvalidToken("the token is not a well-formed JWT") from None
    except jwt.InvalidTokenError as error:
        raise InvalidToken(f"the token is invalid: {error}") from None
    tenant, role, subject = claims["tenant"], claims["role"], claims["sub"]
    if not all(isinstance(v, str) for v in (tenant, role, subject)):
        raise InvalidToken("the token's sub, tenant and role claims must be strings")
    try:
        return Claims(subject, tenant, check_claims(tenant, role, subject))
    except InvalidValueError as error:
        raise InvalidToken(f"the token's claims are not accepted: {error.message}") from None
