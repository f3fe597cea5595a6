"""The operators' pages: process instances, a record's history with its causes, dead letters and redrive,
and how far each worker is behind.

Instances and histories come from the API's own endpoint functions (workers.api.processes.list_instances,
workers.api.reads.get_aggregate), so the role checks, the tenant wall and the 404 for another tenant's id
are the API's. Dead letters reuse workers.kafka.deadletters, behind Principal.require_dead_letters.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from crmflow.workers.api.processes import each_instance, list_instances
from crmflow.workers.api.reads import get_aggregate
from crmflow.workers.console.forms import check_csrf, posted
from crmflow.workers.console.page import page, services_of
from crmflow.workers.console.session import Session

router = APIRouter(include_in_schema=False)
INSTANCE_STATES = ("running", "waiting", "completed", "failed")
log = structlog.get_logger("crmflow.console")


def attention_first(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stuck instances first, then failed ones, then the rest in the report's order."""

    def rank(row: dict[str, Any]) -> int:
        return 0 if row.get("stuck") else 1 if row.get("status") == "failed" else 2

    return sorted(rows, key=rank)  # stable: the report's own order within each rank


@router.get("/console/instances")
def instances(request: Request) -> Response:
    services = services_of(request)

    def build(session: Session) -> tuple[str, dict[str, Any]]:
        body = list_instances(session.principal, services)
        return "instances.html", {"columns": body["columns"], "rows": attention_first(body["rows"])}

    return page(request, build)


@router.get("/console/instances/each")
def instances_each(
    request: Request, definition: str | None = None, version: int | None = None, status: str | None = None,
    step: str | None = None,
) -> Response:  # fmt: skip
    services = services_of(request)

    def build(session: Session) -> tuple[str, dict[str, Any]]:
        body = each_instance(session.principal, services, definition=definition, version=version,
                             status=status if status in INSTANCE_STATES else None, step=step)  # fmt: skip
        shown = {"definition": definition, "version": version, "status": status, "step": step}
        return "instances_each.html", {"columns": body["columns"], "rows": body["rows"], "shown": shown}

    return page(request, build)


@router.get("/console/records")
def find_record(request: Request, id: str = "") -> Response:
    def build(session: Session) -> Any:
        session.principal.require_some_records()
        if id.strip():
            return RedirectResponse(f"/console/records/{quote(id.strip(), safe='')}", status_code=303)
        return "records.html", {}

    return page(request, build)


@router.get("/console/records/{aggregate_id}")
def record(request: Request, aggregate_id: str) -> Response:
    services = services_of(request)

    def build(session: Session) -> tuple[str, dict[str, Any]]:
        body = get_aggregate(aggregate_id, session.principal, services)
        history = [{**e, "data_json": json.dumps(e["data"], default=str, indent=1)} for e in body["history"]]
        return "record.html", {"record": body, "history": history}

    return page(request, build)


def _kafka_or_message(request: Request) -> Any:
    from crmflow.workers.bootstrap import build_kafka

    settings = request.app.state.settings
    try:
        return build_kafka(settings, "console"), None
    except Exception as error:  # any failure to reach the broker is the page's news, not a 500
        log.warning("console_kafka_unreachable", error=str(error))
        return None, (
            f"Kafka at {settings.kafka_bootstrap_servers} does not answer ({type(error).__name__}: {error}); "
            "set KAFKA_BOOTSTRAP_SERVERS for crmflow serve"
        )


@router.get("/console/dead-letters")
def dead_letters(request: Request) -> Response:
    def build(session: Session) -> tuple[str, dict[str, Any]]:
        from crmflow.workers.kafka import deadletters

        session.principal.require_dead_letters()
        tenant = session.principal.tenant_for("seeing dead letters")
        kafka, problem = _kafka_or_message(request)
        letters: list[dict[str, Any]] = []
        if kafka is not None:
            with kafka:
                letters = [d.summary() for d in deadletters.list_dead_letters(kafka) if d.tenant == tenant]
        return "dead_letters.html", {
            "letters": letters,
            "problem": problem,
            "redriven": None,
            "dry_run": False,
        }

    return page(request, build)


@router.post("/console/dead-letters/redrive")
async def redrive(request: Request) -> Response:
    fields = await posted(request)

    def build(session: Session) -> tuple[str, dict[str, Any]]:
        from crmflow.workers.kafka import deadletters

        check_csrf(session, fields)
        session.principal.require_dead_letters()
        tenant = session.principal.tenant_for("redriving dead letters")
        kafka, problem = _kafka_or_message(request)
        redriven: list[dict[str, Any]] = []
        error, dry_run = fields.get("error") or None, fields.get("dry_run") == "on"
        if kafka is not None:
            with kafka:
                chosen = deadletters.redrive(kafka, error=error, dry_run=dry_run, tenant=tenant)
                redriven = [d.summary() for d in chosen]
            log.info(
                "console_redrive", tenant=tenant, count=len(redriven), dry_run=dry_run, error=error or "any"
            )
        values = {"letters": [], "problem": problem, "redriven": redriven, "dry_run": dry_run}
        return "dead_letters.html", values

    return await run_in_threadpool(page, request, build)


@router.get("/console/workers")
def workers(request: Request) -> Response:
    services = services_of(request)

    def build(session: Session) -> tuple[str, dict[str, Any]]:
        from crmflow.workers.worker_lag import worker_lags

        session.principal.require_instances()  # the operators' page; counts only, no tenant's records
        kafka, problem = _kafka_or_message(request)
        settings = request.app.state.settings
        if kafka is None:
            rows = worker_lags(settings, services.app, services.read_models, None, problem)
        else:
            with kafka:
                rows = worker_lags(settings, services.app, services.read_models, kafka, None)
        return "workers.html", {"rows": [r.as_dict() for r in rows], "problem": problem}

    return page(request, build)
