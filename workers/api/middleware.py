"""The request log (one line and one counter per request) and the body limits every request meets.

RequestLog labels by route template, not raw path.

A pure ASGI middleware (not BaseHTTPMiddleware): it sees the route the
router matched (``scope["route"]``, whose template labels the metric) and the tenant the token named
(``scope["state"]``), and it adds no task of its own between the request and
the handler.
"""

from __future__ import annotations

import email.message
import json
import time
from typing import Any

import structlog
from starlette.datastructures import Headers
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crmflow.aggregates.limits import MAX_MESSAGE_BYTES, Limit, LimitExceeded, parse_json
from crmflow.workers.api.errors import error_response
from crmflow.workers.metrics import HTTP_REQUESTS, http_method_label

log = structlog.get_logger("crmflow.api")
UNMATCHED = "(unmatched)"  # one label for every unknown path: raw paths would grow the metric without bound
SHOWN_METHOD_CHARS = 32  # of the method in the log line: a client may send a method of any length


class RequestLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        correlation_id = Headers(scope=scope).get("x-correlation-id")
        structlog.contextvars.clear_contextvars()
        if correlation_id:
            structlog.contextvars.bind_contextvars(correlation_id=correlation_id)
        status = 500  # unless a response starts: an exception escaped to the server error handler

        async def send_and_note_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note_status)
        finally:
            route = _template(scope)
            method = http_method_label(scope["method"])
            HTTP_REQUESTS.labels(method=method, route=route, status=str(status)).inc()
            log.info(
                "http_request",
                method=scope["method"][:SHOWN_METHOD_CHARS],
                route=route,
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
                tenant=scope.get("state", {}).get("tenant"),
                correlation_id=correlation_id,
            )
            structlog.contextvars.clear_contextvars()


def _template(scope: Scope) -> str:
    route: Any = scope.get("route")
    template = getattr(route, "path_format", None)
    if template:
        return str(template)
    # FastAPI marks only its API routes in the scope; the others (/openapi.json, /docs) have fixed
    # paths, each its own template. Any other path (a refusal before routing, a 404) may be anything.
    app: Any = scope.get("app")
    routes = getattr(getattr(app, "router", None), "routes", ())
    fixed = {getattr(r, "path", None) for r in routes}
    # A mounted folder (the console's static files): one template for all its files, so labels stay bounded.
    for mount in (r for r in routes if isinstance(r, Mount)):
        if str(scope["path"]).startswith(mount.path + "/"):
            return f"{mount.path}/{{path}}"
    return str(scope["path"]) if scope["path"] in fixed else UNMATCHED


class BodyLimits:
    """Every request body within crmflow's limits before any route sees it.

    Over ``max_bytes`` (by Content-Length, or counted while reading) is 413; a
    JSON body (``application/json`` or ``application/*+json``, what FastAPI
    parses itself) is parsed once here with ``aggregates.limits.parse_json``
    and refused with 422 naming the limit, so that FastAPI's own parser, which
    raises RecursionError on deep nesting and ValueError on huge integers, only
    ever sees bodies it can read. Syntax errors are left to the routes, which
    name them in their own words. The body is read whole here (it is at most
    ``max_bytes``) and handed on unchanged.
    """

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self.app = app
        self.limit = Limit("message_bytes", min(max_bytes, MAX_MESSAGE_BYTES), "bytes")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit.value):
            size = f"{int(declared):,} bytes" if declared.isdigit() else f"declared as {declared!r}"
            await self._too_large(scope, receive, send, f"the request body is {size}")
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: let the app see it
                await self.app(scope, _replay(bytes(body), message, receive), send)
                return
            body += message.get("body", b"")
            if len(body) > self.limit.value:
                await self._too_large(
                    scope, receive, send, f"the request body is more than {self.limit.value:,} bytes"
                )
                return
            if not message.get("more_body", False):
                break
        if body and _is_json(headers.get("content-type")):
            refusal = _json_refusal(bytes(body))
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self.app(scope, _replay(bytes(body), None, receive), send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send, what: str) -> None:
        message = f"{what}; the limit is {self.limit.describe()}"
        if str(scope.get("path", "")).startswith("/console/"):
            # A browser's form: the same refusal, as a page the person who sent it can read.
            from starlette.requests import Request

            from crmflow.workers.console.page import refusal

            await refusal(Request(scope), 413, "oversize", message)(scope, receive, send)
            return
        response = error_response(
            413, "oversize", message, {"limit": self.limit.name, "limit_value": self.limit.value},
        )  # fmt: skip
        await response(scope, receive, send)


def _is_json(content_type: str | None) -> bool:
    """What FastAPI reads as JSON, by its own rule (``fastapi.routing``): application/json and
    application/<anything>+json as the email parser reads the header. Any difference would let FastAPI
    parse a body this never checked (and answer its own 400)."""
    if not content_type:
        return False
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    json_subtype = subtype == "json" or subtype.endswith("+json")
    return message.get_content_maintype() == "application" and json_subtype


def _json_refusal(body: bytes) -> Any:
    try:
        parse_json(body)
    except LimitExceeded as error:
        return error_response(
            422, "limit_exceeded", f"the request body is over a limit: {error}",
            {"limit": error.limit.name, "limit_value": error.limit.value},
        )  # fmt: skip
    except json.JSONDecodeError:
        return None  # the route says what is wrong with it
    except ValueError as error:  # NaN, Infinity, 1e400, or bytes that are not text
        return error_response(
            422, "invalid_request", f"the request body is not JSON crmflow accepts: {error}"
        )
    return None


def _replay(body: bytes, pending: Message | None, receive: Receive) -> Receive:
    """A receive that gives the body already read as one message, then whatever comes next."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            if pending is None:
                return {"type": "http.request", "body": body, "more_body": False}
        if pending is not None:
            return pending
        return await receive()

    return replay
