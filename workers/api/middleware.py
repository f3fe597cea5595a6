"""One log line and one counter per request, labelled by route template, not raw path.

A pure ASGI middleware (not BaseHTTPMiddleware): it sees the route the
router matched (``scope["route"]``, whose template labels the metric) and the tenant the token named
(``scope["state"]``), and it adds no task of its own between the request and
the handler.
"""

from __future__ import annotations

import time
from typing import Any

import structlog
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crmflow.workers.metrics import HTTP_REQUESTS

log = structlog.get_logger("crmflow.api")
UNMATCHED = "(unmatched)"  # one label for every unknown path: raw paths would grow the metric without bound


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
            route = _template(scope, status)
            HTTP_REQUESTS.labels(method=scope["method"], route=route, status=str(status)).inc()
            log.info(
                "http_request",
                method=scope["method"],
                route=route,
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
                tenant=scope.get("state", {}).get("tenant"),
                correlation_id=correlation_id,
            )
            structlog.contextvars.clear_contextvars()


def _template(scope: Scope, status: int) -> str:
    route: Any = scope.get("route")
    template = getattr(route, "path_format", None)
    if template:
        return str(template)
    # FastAPI marks only its API routes in the scope; the others (/openapi.json, /docs) have fixed
    # paths. A failed request without a route may carry any path at all.
    return str(scope["path"]) if status < 400 else UNMATCHED
