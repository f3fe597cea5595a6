"""The HTTP API's composition: routes, auth, errors, request log, built from Settings.

``create_app(settings)`` builds its own event store and read-model database;
tests hand in theirs (``app=``, ``reports_db=``), which the API then leaves
open for them to close.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

from fastapi import FastAPI

from crmflow.aggregates.application import CrmApplication
from crmflow.projections.db import Database
from crmflow.workers.api import commands, health, processes, reads
from crmflow.workers.api.errors import install_error_handlers
from crmflow.workers.api.middleware import BodyLimits, RequestLog
from crmflow.workers.api.openapi import install_openapi
from crmflow.workers.api.rate_limit import RATE_LIMITED_DEPENDENCY, RATE_LIMITED_RESPONSES
from crmflow.workers.api.services import Services
from crmflow.workers.bootstrap import build_application, build_reports_db, inbound_policy
from crmflow.workers.config import Settings
from crmflow.workers.console.app import install_console
from crmflow.workers.rate_limits import TenantBuckets

DESCRIPTION = """\
crmflow over HTTP: run commands, send events from other services, read reports and
record histories, deploy process definitions.

Every endpoint under `/v1` needs `Authorization: Bearer <token>`: an HS256 JWT that names
a tenant and a role (`crmflow token issue --tenant acme --role sales --subject ada`).
The tenant comes from the token only. Errors are always
`{"error": code, "message": ..., "details": ...}`.
"""
TAGS = [
    {"name": "commands and events", "description": "change things: commands, and events from other services"},
    {"name": "reads", "description": "reports and record histories, of the token's tenant only"},
    {"name": "processes", "description": "process definitions (admin) and instances (admin, analyst)"},
    {"name": "operations", "description": "liveness, readiness and metrics; no token needed"},
]


class MissingSecretError(RuntimeError):
    """The API cannot check tokens without the secret that signs them."""


def create_app(
    settings: Settings, *, app: CrmApplication | None = None, reports_db: Database | None = None
) -> FastAPI:
    if settings.api_secret is None:
        raise MissingSecretError(
            "CRMFLOW_API_SECRET is not set: the API signs and checks bearer tokens with it "
            "(at least 32 characters, e.g. `openssl rand -hex 32`)"
        )
    owned: list[CrmApplication | Database] = []  # what this API built, and so closes when it stops
    if app is None:
        app = build_application(settings)
        owned.append(app)
    if reports_db is None:
        reports_db = build_reports_db(settings)
        owned.append(reports_db)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        for resource in owned:
            resource.close()

    api = FastAPI(
        title="crmflow", version=_version(), description=DESCRIPTION, openapi_tags=TAGS, lifespan=lifespan
    )
    api.state.services = Services(
        app, reports_db, inbound_policy(settings), settings.api_secret.get_secret_value(), settings=settings
    )
    api.state.rate_limit = TenantBuckets(settings.api_rate())
    install_error_handlers(api)
    # Inside the request log (added last, so outermost), which then logs the body refusals too.
    api.add_middleware(BodyLimits)
    api.add_middleware(RequestLog)
    for module in (commands, reads, processes):
        api.include_router(
            module.router, dependencies=[RATE_LIMITED_DEPENDENCY], responses=RATE_LIMITED_RESPONSES
        )
    api.include_router(health.router)  # liveness, readiness and metrics are never rate-limited
    # The web console: server-rendered pages on the same services, tokens and role checks (workers/console).
    install_console(api, settings)
    install_openapi(api)
    return api


def _version() -> str:
    try:
        return version("crmflow")
    except PackageNotFoundError:
        return "0.0.0"
