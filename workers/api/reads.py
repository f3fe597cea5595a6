"""GET /v1/reports/{name} and GET /v1/aggregates/{id}: the token's tenant's data, nobody else's."""

from __future__ import annotations

import difflib
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Path, Query

from crmflow.aggregates.envelope import jsonable
from crmflow.aggregates.errors import AggregateNotFoundError, InvalidValueError
from crmflow.projections.reports import REPORTS
from crmflow.workers.api.auth import Caller
from crmflow.workers.api.errors import ApiError, error_responses
from crmflow.workers.api.examples import AGGREGATE_EXAMPLE, REPORT_EXAMPLE
from crmflow.workers.api.services import Service
from crmflow.workers.explanation import explain
from crmflow.workers.report_inputs import report_inputs

router = APIRouter(tags=["reads"])
MOMENT = "ISO 8601 date or time, compared with the report's own date column"
# What _check_moment accepts, as the document says it: a date, or a date and time (datetime.fromisoformat
# reads more, RFC 3339 is what clients write). Declared, not validated by FastAPI: the domain's
# invalid_value answers a malformed one, as the CLI does.
MOMENT_SCHEMA = {"anyOf": [{"format": "date"}, {"format": "date-time"}]}


@router.get(
    "/v1/reports/{name}",
    summary="A report from the read models, for the token's tenant",
    description="Reports: " + "; ".join(f"`{r.name}`: {r.summary}" for r in REPORTS.values())
    + ". Money, ratios and hours are exact decimal strings (\"1500.10\"), counts are integers.",
    responses={
        200: {"content": {"application/json": {"example": REPORT_EXAMPLE}}},
        **error_responses(401, 403, 404, 422),
    },
)
def get_report(
    # The enum is for the document only: an unknown name is a 404 with suggestions, not a 422.
    name: Annotated[str, Path(json_schema_extra={"enum": list(REPORTS)})],
    caller: Caller,
    services: Service,
    since: Annotated[
        str,
        Query(description=f"from this {MOMENT}", examples=["2026-01-01"], json_schema_extra=MOMENT_SCHEMA),
    ] = None,  # type: ignore[assignment]  # str, not str | None: absent is None, sent is a string
    until: Annotated[
        str,
        Query(description=f"before this {MOMENT}", examples=["2026-04-01"], json_schema_extra=MOMENT_SCHEMA),
    ] = None,  # type: ignore[assignment]
) -> dict[str, Any]:
    tenant = caller.tenant_for(f"reading the {name} report")
    report = REPORTS.get(name)
    if report is None:
        close = difflib.get_close_matches(name, REPORTS, n=3)
        hint = f"; did you mean {' or '.join(close)}?" if close else f": use one of {', '.join(REPORTS)}"
        raise ApiError(
            404, "unknown_report", f"unknown report {name!r}{hint}", report=name, suggestions=close
        )
    caller.require_report(name)
    _check_moment("since", since)
    _check_moment("until", until)
    inputs = report_inputs(report, tenant, services.settings, services.registry.documents)
    rows = services.read_models(report.run, tenant, since=since, until=until, **inputs)
    # Figures as decimal strings ("1500.10"), as amounts are in events: JSON numbers become floats in most clients.
    return {"report": name, "tenant": tenant, "columns": list(report.columns), "rows": jsonable(rows)}


def _check_moment(field: str, value: str | None) -> None:
    if value is None:
        return
    try:
        datetime.fromisoformat(value)  # a date alone is accepted too
    except ValueError:
        raise InvalidValueError(
            f"{field} {value!r} is not an ISO 8601 date (2026-03-01) or time (2026-03-01T09:00:00+00:00)",
            field=field,
            value=value,
        ) from None


@router.get(
    "/v1/aggregates/{aggregate_id}",
    summary="A record's current state and its history, each event with what caused it",
    description="The id as stored, or the id the tenant chose when it created the record. Another "
    "tenant's id is answered exactly like an unknown one (404).",
    responses={
        200: {"content": {"application/json": {"example": AGGREGATE_EXAMPLE}}},
        **error_responses(401, 403, 404),
    },
)
def get_aggregate(aggregate_id: str, caller: Caller, services: Service) -> dict[str, Any]:
    tenant = caller.tenant_for("reading a record")
    caller.require_some_records()
    try:
        uuid = UUID(aggregate_id)
    except ValueError:
        # Worded as the store words an unknown id: a malformed id tells nothing either.
        raise AggregateNotFoundError(
            f"{aggregate_id} not found in tenant {tenant}", aggregate_id=aggregate_id
        ) from None
    state = services.app.state(uuid, tenant)  # unknown or another tenant's: the same 404
    caller.require_record(state["kind"])
    # The same story as `crmflow explain`: why each event happened in words, and its cause as data.
    history = [
        {"version": e["version"], "type": e["event"], "time": e["time"], "id": e["id"], "data": e["data"],
         "meta": e["meta"], "why": e["why"], "caused_by": e["caused_by"]}
        for e in explain(services.app, UUID(state["id"]), tenant)  # the stored id, whichever id was asked for
    ]
    return {"id": state["id"], "kind": state["kind"], "state": state, "history": history}
