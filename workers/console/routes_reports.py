"""The analysts' dashboard: a chart per report with its table, since/until filters, CSV downloads.

Rows come from the API's own report endpoint function (workers.api.reads.get_report), called with the
signed-in caller: the same role check, the same date check and message, the same rows as GET /v1/reports.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from crmflow.aggregates.errors import DomainError
from crmflow.projections.reports import REPORTS
from crmflow.workers.api.errors import status_of
from crmflow.workers.api.reads import get_report
from crmflow.workers.console import charts
from crmflow.workers.console.page import may_read, page, script_json, services_of
from crmflow.workers.console.session import Session

router = APIRouter(include_in_schema=False)


def _blank(value: str | None) -> str | None:
    return value.strip() or None if value is not None else None


def report_view(body: dict[str, Any], since: str | None, until: str | None) -> dict[str, Any]:
    """A report as the templates show it: chart option (as JSON for the page's script), table, CSV link."""
    query = "&".join(f"{k}={v}" for k, v in (("since", since), ("until", until)) if v)
    option = charts.option(body["report"], body["rows"])
    return {
        "name": body["report"],
        "title": charts.TITLES.get(body["report"], body["report"]),
        "summary": REPORTS[body["report"]].summary,
        "columns": body["columns"],
        "rows": body["rows"],
        "chart": script_json(option) if option else None,
        "csv": f"/console/reports/{body['report']}.csv" + (f"?{query}" if query else ""),
    }


@router.get("/console/reports")
def dashboard(request: Request, since: str | None = None, until: str | None = None) -> Response:
    since, until = _blank(since), _blank(until)
    services = services_of(request)

    def build(session: Session) -> tuple[str, dict[str, Any]] | tuple[str, dict[str, Any], int]:
        caller = session.principal
        caller.tenant_for("the dashboard")
        shown = [n for n in charts.CHARTED if may_read(caller, n)]
        if not shown:
            caller.require_report(charts.CHARTED[0])  # the API's refusal, with what the role may read
        values: dict[str, Any] = {"since": since or "", "until": until or "", "reports": [], "error": None}
        try:
            values["reports"] = [
                report_view(get_report(n, caller, services, since, until), since, until) for n in shown
            ]
        except DomainError as error:  # a malformed date: the API's message, beside the filters it came from
            values["error"] = error.message
            return "dashboard.html", values, status_of(error)
        return "dashboard.html", values

    return page(request, build)


@router.get("/console/reports/{name}.csv")
def report_csv(request: Request, name: str, since: str | None = None, until: str | None = None) -> Response:
    since, until = _blank(since), _blank(until)
    services = services_of(request)

    def build(session: Session) -> Response:
        body = get_report(name, session.principal, services, since, until)
        return Response(
            to_csv(body["columns"], body["rows"]),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="{name}.csv"',
                "Cache-Control": "no-store",
            },
        )

    return page(request, build)


@router.get("/console/reports/{name}")
def one_report(request: Request, name: str, since: str | None = None, until: str | None = None) -> Response:
    since, until = _blank(since), _blank(until)
    services = services_of(request)

    def build(session: Session) -> tuple[str, dict[str, Any]]:
        body = get_report(name, session.principal, services, since, until)
        return "report.html", {
            "report": report_view(body, since, until),
            "since": since or "",
            "until": until or "",
        }

    return page(request, build)


def to_csv(columns: list[str], rows: list[dict[str, Any]]) -> str:
    """The API's rows as CSV: its columns in its order, its values as it writes them (None: empty)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else row[c] for c in columns])
    return out.getvalue()
