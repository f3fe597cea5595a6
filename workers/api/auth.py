"""Who is calling, and may they: the bearer token checked on every /v1 request, the role enforced.

The rules themselves (the claims, the role table) are in ``workers.api.tokens``;
this module turns them into HTTP answers: 401 for a token that proves
nothing, 403 for a role or tenant that does not fit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import structlog
from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from crmflow.workers.api.errors import ApiError
from crmflow.workers.api.tokens import PLATFORM, InvalidToken, Role, read_token


@dataclass(frozen=True)
class Principal:
    """The caller a valid token names, and the checks of what its role may do."""

    subject: str
    tenant: str  # "*" for a platform token
    role: Role

    @property
    def caller(self) -> str:
        """What stored events record as their caller."""
        return f"{self.role.name}:{self.subject}"

    @property
    def is_platform(self) -> bool:
        return self.tenant == PLATFORM

    def tenant_for(self, what: str) -> str:
        """The tenant to act for; a platform token has none."""
        if self.is_platform:
            raise ApiError(
                403,
                "no_tenant",
                f"a platform token has no tenant: {what} needs a tenant's token",
                role=self.role.name,
            )
        return self.tenant

    def require_command(self, command: str) -> None:
        if command.split(".", 1)[0] not in self.role.areas:
            self._refuse(f"run {command}", allowed=sorted(f"{a}.*" for a in self.role.areas))

    def require_record(self, kind: str) -> None:
        if not (self.role.reads_every_record or kind in self.role.areas):
            self._refuse(f"read {kind} records", allowed=sorted(self.role.areas))

    def require_some_records(self) -> None:
        if not (self.role.reads_every_record or self.role.areas):
            self._refuse("read records", allowed=[])

    def require_report(self, report: str) -> None:
        if report not in self.role.reports:
            self._refuse(f"read the {report} report", allowed=sorted(self.role.reports))

    def require_inbound(self) -> None:
        if not self.role.inbound:
            self._refuse("send events", allowed=[])

    def require_definitions(self) -> None:
        if not self.role.definitions:
            self._refuse("list, validate or deploy process definitions", allowed=[])

    def require_instances(self) -> None:
        if not self.role.instances:
            self._refuse("read process instances", allowed=[])

    def require_dead_letters(self) -> None:
        if not self.role.dead_letters:
            self._refuse("see or redrive dead letters", allowed=[])

    def _refuse(self, what: str, allowed: list[str]) -> None:
        raise ApiError(
            403, "forbidden", f"role {self.role.name} may not {what}", role=self.role.name, allowed=allowed
        )


bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    bearerFormat="JWT",
    description="An HS256 JWT with the claims sub, tenant, role, iat (and exp): `crmflow token issue`.",
)


async def authenticate(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]
) -> Principal:
    """The FastAPI dependency: the caller, or 401."""
    if credentials is None:
        if request.headers.get("authorization"):
            raise _unauthorized("the Authorization header must be 'Bearer <token>'", invalid=True)
        raise _unauthorized(
            "this endpoint needs a bearer token: Authorization: Bearer <token>", invalid=False
        )
    try:
        claims = read_token(request.app.state.services.secret, credentials.credentials)
    except InvalidToken as error:
        raise _unauthorized(str(error), invalid=True) from None
    principal = Principal(claims.subject, claims.tenant, claims.role)
    # Async on purpose: it runs in the request's own context, so the request log
    # and every log line of the handler carry the tenant.
    request.state.tenant = principal.tenant
    structlog.contextvars.bind_contextvars(tenant=principal.tenant, caller=principal.caller)
    return principal


def _unauthorized(message: str, *, invalid: bool) -> ApiError:
    # RFC 6750: a request without credentials gets the bare challenge; a bad token, error="invalid_token".
    challenge = 'Bearer realm="crmflow"'
    if invalid:
        challenge += f', error="invalid_token", error_description="{message.replace(chr(34), chr(39))}"'
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": challenge})


Caller = Annotated[Principal, Security(authenticate)]
