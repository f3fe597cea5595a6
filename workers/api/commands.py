"""POST /v1/commands/{name} and POST /v1/events: the two ways in.

Thin on purpose: decode, check the caller, hand over to the application
service (commands) or the intake's own checks (events). No business rule
lives here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import structlog
from fastapi import APIRouter, Body, Header, Request, Response
from starlette.concurrency import run_in_threadpool

from crmflow.aggregates.application import CommandRequest
from crmflow.aggregates.catalog import command_spec
from crmflow.aggregates.limits import parse_json
from crmflow.workers.api.auth import Caller
from crmflow.workers.api.binary_events import is_binary, structured_from_binary
from crmflow.workers.api.errors import ApiError, error_responses
from crmflow.workers.api.examples import COMMAND_EXAMPLE, PAYLOAD_EXAMPLES
from crmflow.workers.api.services import Service
from crmflow.workers.inbound_checks import Rejected, check_inbound, message_bytes_limit
from crmflow.workers.inbound_references import check_references
from crmflow.workers.metrics import timed_command

log = structlog.get_logger("crmflow.api")
router = APIRouter(tags=["commands and events"])
T = TypeVar("T")
CONFLICT_RETRIES = 3  # another writer won the race: run the command again on fresh state this many times


@router.post(
    "/v1/commands/{name}",
    status_code=201,
    summary="Run a command for the token's tenant",
    description="The body is the command's payload (`crmflow catalog` lists every command and its "
    "JSON Schema). The same `Idempotency-Key` (per tenant) runs once: a repeat answers the first result "
    "with 200 and `Idempotent-Replayed: true`.",
    responses={
        201: {
            "description": "stored; the events as CloudEvents",
            "content": {"application/json": {"example": COMMAND_EXAMPLE}},
        },
        200: {
            "description": "a replay of an idempotency key: the first result",
            "headers": {"Idempotent-Replayed": {"description": "true", "schema": {"type": "string"}}},
        },
        **error_responses(401, 403, 404, 409, 422),
    },
)
def run_command(
    name: str,
    payload: Annotated[dict[str, Any], Body(openapi_examples=PAYLOAD_EXAMPLES)],
    caller: Caller,
    services: Service,
    response: Response,
    idempotency_key: Annotated[
        str | None,
        Header(alias="Idempotency-Key", max_length=255, description="the same key twice runs once"),
    ] = None,
    correlation_id: Annotated[
        str | None,
        Header(
            alias="X-Correlation-Id",
            max_length=255,
            description="stamped on the events (default: the command id)",
        ),
    ] = None,
) -> dict[str, Any]:
    tenant = caller.tenant_for(f"running {name}")
    command_spec(name)  # unknown: 404 with suggestions (and no metric label for a name that does not exist)
    caller.require_command(name)
    request = CommandRequest(
        name,
        tenant,
        payload,
        caller=caller.caller,
        correlation_id=correlation_id,
        idempotency_key=idempotency_key,
    )
    with timed_command(name):
        result = services.app.execute(request, conflict_retries=CONFLICT_RETRIES)
    if result.replayed:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    log.info(
        "command_executed", command=name, aggregate_id=str(result.aggregate_id), replayed=result.replayed
    )
    return {
        "command": name,
        "tenant": tenant,
        "aggregate_id": str(result.aggregate_id),
        "events": result.events,
        "replayed": result.replayed,
    }


@router.post(
    "/v1/events",
    status_code=202,
    summary="Send an event from another service (a CloudEvent, structured or binary mode)",
    description="Checked exactly as the Kafka intake checks `crmflow.inbound`; `tenantid` must be the "
    "token's tenant. A refused event is answered 422 with the intake's error code: nothing is stored, and "
    "nothing goes to the dead-letter topic (the caller has the error). Structured mode: the body is the "
    "event (`application/cloudevents+json`, or `application/json`). Binary mode (CloudEvents HTTP "
    "binding): the attributes are `ce-` headers (`ce-specversion`, `ce-id`, `ce-source`, `ce-type`, "
    "`ce-tenantid`, ...), Content-Type is the data's content type (JSON) and the body is the data.",
    responses={
        202: {
            "description": "accepted: stored now, or a duplicate of one stored before",
            "content": {"application/json": {"example": {"stored": True}}},
        },
        **error_responses(401, 403, 413, 422),
    },
)
async def post_event(request: Request, caller: Caller, services: Service) -> dict[str, Any]:
    tenant = caller.tenant_for("sending an event")
    caller.require_inbound()
    body = await _read_at_most(request, services.policy)
    if is_binary(request.headers):
        body = _refused_as_the_intake_refuses(structured_from_binary, request.headers, body)
    claimed = _claimed_tenant(body)
    if claimed is not None and claimed != tenant:
        raise _wrong_tenant(claimed, tenant)
    event_tenant, document = _refused_as_the_intake_refuses(check_inbound, body, services.policy)
    if event_tenant != tenant:
        raise _wrong_tenant(event_tenant, tenant)
    # Usage for another tenant's account (or an unknown product) is refused as the intake refuses it.
    await run_in_threadpool(_refused_as_the_intake_refuses, check_references, services.app, tenant, document)
    (stored,) = await run_in_threadpool(services.app.accept_inbound, [(tenant, document)])
    log.info(
        "inbound_accepted",
        event_id=document["id"],
        source=document["source"],
        type=document["type"],
        duplicate=not stored,
    )
    return {"stored": True} if stored else {"stored": False, "duplicate": True}


def _refused_as_the_intake_refuses(check: Callable[..., T], *args: Any) -> T:
    """``check(*args)``, with its Rejected answered as the intake's code and reason."""
    try:
        return check(*args)
    except Rejected as rejected:
        log.info("inbound_refused", error=rejected.code, reason=rejected.reason)
        limit = {"limit": rejected.limit.name, "limit_value": rejected.limit.value} if rejected.limit else {}
        raise ApiError(
            413 if rejected.code == "oversize" else 422, rejected.code, rejected.reason, **limit
        ) from None


async def _read_at_most(request: Request, policy: Any) -> bytes:
    """The body, read no further than the intake's size limit: a huge body is refused, not buffered."""
    limit = message_bytes_limit(policy)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit.value:
            raise ApiError(
                413,
                "oversize",
                f"the message is more than {limit.value:,} bytes; the limit is {limit.describe()}",
                limit=limit.name,
                limit_value=limit.value,
            )
    return bytes(body)


def _claimed_tenant(body: bytes) -> Any:
    """The tenantid the event names, read before any other check: another tenant's event is 403, not 422."""
    try:
        document = parse_json(body)
    except ValueError:  # LimitExceeded too: check_inbound names what is wrong
        return None
    return document.get("tenantid") if isinstance(document, dict) else None


def _wrong_tenant(claimed: Any, tenant: str) -> ApiError:
    return ApiError(
        403,
        "wrong_tenant",
        f"the event's tenantid {claimed!r} is not the token's tenant {tenant!r}: "
        "a token sends events for its own tenant only",
        tenant=tenant,
    )
