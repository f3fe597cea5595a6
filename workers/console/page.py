"""Rendering a console page: the session it needs, the Jinja2 templates, and refusals as pages.

A route hands ``page`` a function of the session that returns the template and its values; ``page``
reads the session (or sends the browser to sign in), and turns the API's own refusals (ApiError: 403
forbidden, 404 unknown report, ...; DomainError: a malformed date, an unknown record) into the same
status with the same message, on a page instead of in JSON.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import structlog
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from crmflow.aggregates.errors import DomainError
from crmflow.workers.api.auth import Principal
from crmflow.workers.api.errors import ApiError, status_of
from crmflow.workers.api.rate_limit import charge
from crmflow.workers.api.services import Services
from crmflow.workers.console.session import COOKIE, CSRF_FIELD, InvalidSession, Session, read_session

log = structlog.get_logger("crmflow.console")
HERE = Path(__file__).parent
templates = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]))
# Scripts and styles from this server only: no CDN, and no inline script a stored value could become.
# Mermaid writes its SVG's styles inline, hence 'unsafe-inline' for styles (never for scripts).
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # a sign-in link's token never leaks to another site
    "Cache-Control": "no-store",
}

Build = Callable[[Session], Any]  # (template, values), (template, values, status), or a Response


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def html(
    request: Request, template: str, values: dict[str, Any], status: int = 200, session: Session | None = None
) -> HTMLResponse:
    context = {
        "request": request,
        "session": session,
        "csrf_field": CSRF_FIELD,
        "nav": navigation(session.principal) if session else [],
        **values,
    }
    body = templates.get_template(template).render(context)
    return HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)


def refusal(
    request: Request, status: int, code: str, message: str, session: Session | None = None,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:  # fmt: skip
    answer = html(request, "error.html", {"status": status, "code": code, "message": message}, status, session)
    answer.headers.update(headers or {})
    return answer


def page(request: Request, build: Build) -> Response:
    try:
        session = read_session(services_of(request).secret, request.cookies.get(COOKIE))
    except InvalidSession as why:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(
            f"/console/sign-in?next={quote(target)}&why={quote(str(why))}", status_code=303
        )
    request.state.tenant = session.principal.tenant  # the request log names the tenant, as for the API
    structlog.contextvars.bind_contextvars(tenant=session.principal.tenant, caller=session.principal.caller)
    try:
        charge(request, session.principal.tenant)  # the API's per-tenant rate: 429 with Retry-After
        built = build(session)
    except ApiError as error:
        return refusal(request, error.status, error.code, error.message, session, error.headers)
    except DomainError as error:
        return refusal(request, status_of(error), error.code, error.message, session)
    if isinstance(built, Response):
        return built
    template, values, *status = built
    return html(request, template, values, status[0] if status else 200, session)


def script_json(value: Any) -> str:
    """JSON to embed in a <script type="application/json">: no value can close the tag or open a comment."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def allowed(check: Callable[[], None]) -> bool:
    """Whether one of the API's own checks (Principal.require_*) lets the caller through."""
    try:
        check()
    except ApiError:
        return False
    return True


def may_read(principal: Principal, report: str) -> bool:
    return allowed(lambda: principal.require_report(report))


def navigation(principal: Principal) -> list[tuple[str, str]]:
    """The pages this role may open: each decided by the check its page makes, never by a list of roles."""
    from crmflow.projections.reports import REPORTS

    tenant = allowed(lambda: principal.tenant_for("the console"))
    items = [("/console", "Home")]
    if tenant and any(may_read(principal, r) for r in REPORTS):
        items.append(("/console/reports", "Dashboard"))
    if tenant and allowed(principal.require_instances):
        items.append(("/console/instances", "Instances"))
    if tenant and allowed(principal.require_some_records):
        items.append(("/console/records", "Records"))
    if allowed(principal.require_instances):
        items.append(("/console/workers", "Workers"))
    if allowed(principal.require_dead_letters):
        items.append(("/console/dead-letters", "Dead letters"))
    if allowed(principal.require_definitions):
        items.append(("/console/definitions", "Definitions"))
        items.append(("/console/designer", "Designer"))
    return items
