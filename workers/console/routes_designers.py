"""The designers' pages: each deployed definition drawn as a diagram, and a pasted one validated,
compared with what is deployed (whatif) or deployed.

Validation is the API's (workers.api.processes._checked: the same issues with lines, the same scope rule for
deploying), a body over the size limit is refused by the API's BodyLimits before it is read (on a page
for the console's paths), whatif the CLI's (processes.whatif.replayed and compare, over the tenant's own
history only), and every action is behind Principal.require_definitions, as the API's definition
endpoints are.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from crmflow.processes.loader import DocumentsInvalid, parse_documents
from crmflow.processes.whatif import compare, replayed
from crmflow.workers.api.errors import ApiError
from crmflow.workers.api.processes import _checked, _visible_scopes, deploy, document_kinds, list_definitions
from crmflow.workers.api.reads import _check_moment
from crmflow.workers.console.forms import check_csrf, posted
from crmflow.workers.console.mermaid import flowchart
from crmflow.workers.console.page import page, services_of
from crmflow.workers.console.session import Session
from crmflow.workers.history import stored_history

router = APIRouter(include_in_schema=False)
log = structlog.get_logger("crmflow.console")
ACTIONS = ("validate", "whatif", "deploy")


def diagrams(text: str, file: str) -> list[dict[str, str]]:
    """Each process in the YAML as Mermaid text (calendars have no diagram); [] if it does not parse."""
    try:
        documents = parse_documents(text, file)
    except DocumentsInvalid:
        return []
    processes = [d.model for d in documents if d.kind == "Process"]
    return [
        {"name": f"{p.name} v{p.version}", "mermaid": flowchart(p)}  # type: ignore[union-attr, arg-type]
        for p in processes
    ]


@router.get("/console/definitions")
def definitions(request: Request) -> Response:
    services = services_of(request)

    def build(session: Session) -> tuple[str, dict[str, Any]]:
        listing = list_definitions(session.principal, services, all_versions=True)["definitions"]
        return "definitions.html", {"definitions": listing}

    return page(request, build)


@router.get("/console/definitions/{scope}/{name}/{version}")
def definition(request: Request, scope: str, name: str, version: int) -> Response:
    services = services_of(request)

    def build(session: Session) -> tuple[str, dict[str, Any]]:
        session.principal.require_definitions()
        wanted, visible = (scope, name, version), _visible_scopes(session.principal)
        versions = services.registry.versions()
        found = next(
            (v for v in versions if (v.scope, v.name, v.version) == wanted and v.scope in visible), None
        )
        if found is None:  # another tenant's is answered like one that does not exist
            raise ApiError(
                404, "not_found", f"no deployed definition {name} version {version} in scope {scope}"
            )
        shown = {
            "kind": found.kind,
            "name": found.name,
            "scope": found.scope,
            "version": found.version,
            "deployed_by": found.deployed_by,
            "deployed_at": found.deployed_at.isoformat(),
        }
        values = {
            "definition": shown,
            "content": found.content,
            "diagrams": diagrams(found.content, f"deployed:{name}@{version}"),
        }
        return "definition.html", values

    return page(request, build)


@router.get("/console/designer")
def designer_form(request: Request) -> Response:
    def build(session: Session) -> tuple[str, dict[str, Any]]:
        session.principal.require_definitions()
        return "designer.html", {"text": "", "since": "", "result": None}

    return page(request, build)


@router.post("/console/designer")
async def designer(request: Request) -> Response:
    fields = await posted(request)
    services = services_of(request)

    def build(session: Session) -> Any:
        check_csrf(session, fields)
        caller = session.principal
        caller.require_definitions()
        action = fields.get("action", "validate")
        text = fields.get("file") or fields.get("definition", "")
        since = (fields.get("since") or "").strip() or None
        values: dict[str, Any] = {
            "text": text,
            "since": since or "",
            "action": action,
            "result": None,
            "issues": [],
            "error": None,
            "diagrams": [],
        }
        if action not in ACTIONS:
            raise ApiError(
                422, "invalid_request", f"unknown action {action!r}: use one of {', '.join(ACTIONS)}"
            )
        if not text.strip():
            values["error"] = "paste a definition (YAML) or choose a file"
            return "designer.html", values, 422
        documents, issues = _checked(text, services, caller, action == "deploy")
        if issues:
            ordered = sorted(issues, key=lambda i: i.line)
            values.update(error=f"{len(issues)} problem(s) in the definitions", issues=ordered)
            return "designer.html", values, 422
        values["diagrams"] = diagrams(text, "body")
        if action == "validate":
            values["result"] = {"valid": document_kinds(documents)}
        elif action == "whatif":
            _check_moment("since", since)  # the API's message for a malformed date
            moment = datetime.fromisoformat(since) if since else None
            moment = moment.replace(tzinfo=moment.tzinfo or timezone.utc) if moment else None
            tenant = caller.tenant_for("a what-if over the tenant's history")
            history, deployed = replayed(
                stored_history(services.app), services.registry.documents(), since=moment, tenant=tenant
            )
            outcome = compare(history, deployed, documents, services.app.clock())
            values["result"] = {
                "whatif": outcome.rows(),
                "events": outcome.events,
                "changed": outcome.changed,
                "running_now": sorted(outcome.running_now.items()),
            }
        else:
            values["result"] = {"deployed": deploy(documents, services, caller)["outcomes"]}
        return "designer.html", values

    return await run_in_threadpool(page, request, build)
