"""GET /healthz, /readyz and /metrics: for the orchestrator and Prometheus, without a token."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import APIRouter, Response

from crmflow.workers.api.errors import error_response, error_responses
from crmflow.workers.api.services import Service, Services
from crmflow.workers.metrics import exposition

log = structlog.get_logger("crmflow.api")
router = APIRouter(tags=["operations"])


@router.get(
    "/healthz",
    summary="Alive: the process answers HTTP",
    responses={200: {"content": {"application/json": {"example": {"status": "ok"}}}}},
)
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Ready: the event store and the reports database answer a trivial query",
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": {"status": "ready", "checks": {"event_store": "ok", "reports_database": "ok"}}
                }
            }
        },
        **error_responses(503),
    },
)
def readyz(services: Service) -> Any:
    checks = {
        "event_store": _check(_ping_store, services),
        "reports_database": _check(_ping_reports, services),
    }
    failed = {name: outcome for name, outcome in checks.items() if outcome != "ok"}
    if failed:
        log.warning("not_ready", **failed)
        message = "; ".join(f"{name} does not answer: {outcome}" for name, outcome in failed.items())
        return error_response(503, "not_ready", message, {"checks": checks})
    return {"status": "ready", "checks": checks}


@router.get(
    "/metrics",
    summary="Prometheus metrics (text exposition format)",
    responses={200: {"content": {"text/plain": {"example": "crmflow_http_requests_total{...} 3.0"}}}},
)
def metrics() -> Response:
    body, content_type = exposition()
    return Response(body, media_type=content_type)


def _check(ping: Any, services: Services) -> str:
    try:
        ping(services)
    except Exception as error:  # noqa: BLE001 - any failure means not ready; its text says why
        return f"{type(error).__name__}: {error}"
    return "ok"


def _ping_store(services: Services) -> None:
    services.app.recorder.max_notification_id()


def _ping_reports(services: Services) -> None:
    services.read_models(lambda db: db.query("SELECT 1 AS ok"))
