"""Process definitions and instances over HTTP, as `crmflow process validate | deploy | list` do them.

A definition's ``tenant:`` is its scope. A token deploys only definitions of
its own scope: a tenant admin its tenant's, a platform token (tenant "*")
the platform-wide ones (calendars are platform-wide). A tenant sees its own
definitions and the platform-wide ones, never another tenant's.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import structlog
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from crmflow.aggregates.limits import MAX_DEFINITION_BYTES, LimitExceeded
from crmflow.processes.loader import Document, DocumentsInvalid, Issue, parse_documents
from crmflow.processes.registry import DeployedVersion
from crmflow.processes.validation import ring_issues, validate
from crmflow.projections.instance_rows import COLUMNS as INSTANCE_COLUMNS
from crmflow.projections.instance_rows import LIMIT as INSTANCE_LIMIT
from crmflow.projections.instance_rows import instance_rows
from crmflow.projections.reports import REPORTS
from crmflow.workers.api.auth import Caller, Principal
from crmflow.workers.api.errors import ApiError, ErrorBody, error_response, error_responses
from crmflow.workers.api.examples import (
    DEPLOYED_EXAMPLE,
    INSTANCE_ROWS_EXAMPLE,
    INSTANCES_EXAMPLE,
    INVALID_EXAMPLE,
    LISTING_EXAMPLE,
)
from crmflow.workers.api.services import Service, Services
from crmflow.workers.api.tokens import PLATFORM

log = structlog.get_logger("crmflow.api")
router = APIRouter(tags=["processes"])
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "text/plain")
BODY_NAME = "body"  # what issues name as their file


TOO_LARGE_RESPONSE = {
    "model": ErrorBody,
    "description": "the body is over the definition size limit (refused before it is parsed)",
}
INVALID_RESPONSE = {
    "model": ErrorBody,
    "description": "every problem, each with line, field and message",
    "content": {"application/json": {"example": INVALID_EXAMPLE}},
}


@router.get(
    "/v1/processes/definitions",
    summary="The deployed definitions the tenant runs: its own and the platform-wide ones",
    responses={
        200: {"content": {"application/json": {"example": LISTING_EXAMPLE}}},
        **error_responses(401, 403),
    },
)
def list_definitions(
    caller: Caller,
    services: Service,
    all_versions: Annotated[bool, Query(description="every version, not just the latest")] = False,
) -> dict[str, Any]:
    caller.require_definitions()
    versions = [v for v in services.registry.versions() if v.scope in _visible_scopes(caller)]
    if not all_versions:
        latest: dict[tuple[str, str, str], DeployedVersion] = {}
        for v in versions:
            key = (v.kind, v.scope, v.name)
            if key not in latest or v.version > latest[key].version:
                latest[key] = v
        versions = sorted(latest.values(), key=lambda v: (v.kind, v.name, v.scope))
    return {
        "definitions": [
            {
                "kind": v.kind,
                "name": v.name,
                "scope": v.scope,
                "version": v.version,
                "deployed_by": v.deployed_by,
                "deployed_at": v.deployed_at.isoformat(),
                "sha256": v.content_hash[:12],
            }
            for v in versions
        ]
    }


@router.post(
    "/v1/processes/validate",
    summary="Check YAML definitions without deploying them: every problem with line and field",
    responses={
        200: {"content": {"application/json": {"example": {"valid": True, "documents": {"Process": 1}}}}},
        422: INVALID_RESPONSE,
        413: TOO_LARGE_RESPONSE,
        **error_responses(401, 403, 415),
    },
)
async def validate_definitions(request: Request, caller: Caller, services: Service) -> Any:
    caller.require_definitions()
    text = await _yaml_text(request)
    documents, issues = await run_in_threadpool(_checked, text, services, caller, False)
    if issues:
        return _invalid(issues)
    return {"valid": True, "documents": document_kinds(documents)}


def document_kinds(documents: list[Document]) -> dict[str, int]:
    """How many documents of each kind: what a valid body held."""
    kinds: dict[str, int] = {}
    for document in documents:
        kinds[document.kind] = kinds.get(document.kind, 0) + 1
    return kinds


@router.post(
    "/v1/processes/definitions",
    status_code=201,
    summary="Deploy YAML definitions: new versions are picked up by running workers",
    description="Validated first (422 with every problem, nothing deployed). A version once deployed never "
    "changes: the same content again is `unchanged`, other content under the same version is 409.",
    responses={
        201: {"content": {"application/json": {"example": DEPLOYED_EXAMPLE}}},
        422: INVALID_RESPONSE,
        413: TOO_LARGE_RESPONSE,
        **error_responses(401, 403, 409, 415),
    },
)
async def deploy_definitions(request: Request, caller: Caller, services: Service) -> Any:
    caller.require_definitions()
    text = await _yaml_text(request)
    documents, issues = await run_in_threadpool(_checked, text, services, caller, True)
    if issues:
        return _invalid(issues)
    return await run_in_threadpool(deploy, documents, services, caller)


def deploy(documents: list[Document], services: Services, caller: Principal) -> dict[str, Any]:
    """Deploy checked documents as the caller; the answer's body (the API's, and the console's table)."""
    outcomes = services.registry.deploy(documents, caller.caller)
    log.info(
        "definitions_deployed",
        by=caller.caller,
        deployed=[f"{o.name}@{o.version}" for o in outcomes if o.deployed],
    )
    return {
        "deployed_by": caller.caller,
        "outcomes": [
            {
                "kind": o.kind,
                "name": o.name,
                "scope": o.scope,
                "version": o.version,
                "result": "deployed" if o.deployed else "unchanged",
            }
            for o in outcomes
        ],
    }


@router.get(
    "/v1/processes/instances",
    summary="Process instances of the tenant by definition, version, state and step (the instances report)",
    responses={
        200: {"content": {"application/json": {"example": INSTANCES_EXAMPLE}}},
        **error_responses(401, 403),
    },
)
def list_instances(caller: Caller, services: Service) -> dict[str, Any]:
    tenant = caller.tenant_for("reading process instances")
    caller.require_instances()
    report = REPORTS["instances"]
    rows = services.read_models(report.run, tenant)
    return {"report": report.name, "tenant": tenant, "columns": list(report.columns), "rows": rows}


InstanceStatus = Literal["running", "waiting", "completed", "failed"]


@router.get(
    "/v1/processes/instances/each",
    summary="The tenant's process instances one by one, newest activity first: a row of the instances report "
    "opened, with each instance's id (its story: /v1/aggregates/{id}), key and error",
    responses={
        200: {"content": {"application/json": {"example": INSTANCE_ROWS_EXAMPLE}}},
        **error_responses(401, 403),
    },
)
def each_instance(
    caller: Caller,
    services: Service,
    definition: Annotated[str | None, Query(max_length=200, description="only this definition")] = None,
    version: Annotated[int | None, Query(ge=1, le=2**31 - 1, description="only this version")] = None,
    status: Annotated[InstanceStatus | None, Query(description="only instances in this state")] = None,
    step: Annotated[str | None, Query(max_length=200, description="only instances at this step")] = None,
    limit: Annotated[int, Query(ge=1, le=INSTANCE_LIMIT, description="at most this many")] = 100,
) -> dict[str, Any]:
    tenant = caller.tenant_for("reading process instances")
    caller.require_instances()
    rows = services.read_models(instance_rows, tenant, definition=definition, version=version, status=status,
                                step=step, limit=limit)  # fmt: skip
    return {"tenant": tenant, "columns": list(INSTANCE_COLUMNS), "rows": rows}


def _visible_scopes(caller: Principal) -> set[str]:
    return {caller.tenant, PLATFORM}


async def _yaml_text(request: Request) -> str:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in YAML_TYPES:
        raise ApiError(
            415,
            "unsupported_media_type",
            f"send the definitions as YAML with Content-Type application/yaml (or text/plain), "
            f"not {media or 'no content type'}",
            accepted=list(YAML_TYPES),
        )
    body = bytearray()
    async for chunk in request.stream():  # read no further than the limit: a 50 MB body is refused at 256 KB
        body += chunk
        if len(body) > MAX_DEFINITION_BYTES:
            limit = LimitExceeded("definition_bytes", "the body is larger")
            raise ApiError(413, "too_large", f"the definitions are refused before parsing: {limit}")
    try:
        return bytes(body).decode("utf-8")
    except UnicodeDecodeError as error:
        raise ApiError(
            422,
            "invalid_definitions",
            f"the body is not UTF-8 text: {error.reason} at byte {error.start}",
            issues=[],
        ) from None


def _checked(
    text: str, services: Services, caller: Principal, deploying: bool
) -> tuple[list[Document], list[Issue]]:
    """The documents and their problems; when deploying, 403 for a scope the token may not deploy to."""
    try:
        documents = parse_documents(text, BODY_NAME)
    except DocumentsInvalid as invalid:
        return [], invalid.issues
    for document in documents:
        if deploying and document.kind in ("Process", "Calendar"):
            scope = getattr(document.model, "tenant", PLATFORM)
            if scope != caller.tenant:
                raise _foreign_scope(document, scope, caller)
    visible = _visible_scopes(caller)
    everything = services.registry.documents()
    deployed = [d for d in everything if getattr(d.model, "tenant", PLATFORM) in visible]
    inbound = {name: schema.schema for name, schema in services.policy.schemas.items()}  # CRMFLOW_SCHEMA_DIR
    issues = validate(documents, deployed, inbound)
    if caller.is_platform:  # a platform-wide definition runs for every tenant: no ring with any tenant's own
        known = set(map(str, issues))
        issues += [i for i in ring_issues(documents, everything) if str(i) not in known]
    return documents, issues


def _foreign_scope(document: Document, scope: str, caller: Principal) -> ApiError:
    name = document.model.name  # type: ignore[attr-defined]
    where = f"{document.kind.lower()} {name} (line {document.line_of(())}) is for tenant {scope!r}"
    if scope == PLATFORM:
        need = 'platform-wide definitions (tenant "*"; every calendar) need a platform token'
    elif caller.is_platform:
        need = "a platform token deploys platform-wide definitions only; use that tenant's admin token"
    else:
        need = f"a token of tenant {caller.tenant!r} deploys only definitions with tenant: {caller.tenant}"
    return ApiError(403, "wrong_tenant", f"{where}: {need}", name=name, scope=scope)


def _invalid(issues: list[Issue]) -> JSONResponse:
    ordered = sorted(issues, key=lambda i: i.line)
    return error_response(
        422,
        "invalid_definitions",
        f"{len(issues)} problem(s) in the definitions",
        {"issues": [{"line": i.line, "field": i.field, "message": i.message} for i in ordered]},
    )
