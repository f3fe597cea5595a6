"""`crmflow segments apply`: place every account of a tenant by its profitability and record the placements
that changed (account.segment → AccountSegmented), so that processes can act on them (docs/domain.md).

The figures are the profitability report's, from the read models, figured with the same settings and the
tenant's deployed segmentation as `crmflow query profitability`. Applying again changes nothing: the
account records a placement it already has only once (aggregates/account.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from crmflow.aggregates.application import CrmApplication
from crmflow.aggregates.unit_of_work import CommandRequest
from crmflow.processes.registry import DefinitionRegistry
from crmflow.projections.account_reports import profitability_rows
from crmflow.projections.db import Database
from crmflow.projections.reports import REPORTS
from crmflow.workers.config import Settings
from crmflow.workers.report_inputs import report_inputs

COLUMNS = ("account", "segment", "usage_tier", "why")


def apply_segments(
    app: CrmApplication,
    reports: Database,
    tenant: str,
    settings: Settings | None = None,
    *,
    now: datetime | None = None,
    caller: str = "cli:segments",
) -> list[dict[str, Any]]:
    """The accounts whose placement changed, each with its new segment, usage tier and why."""
    inputs = report_inputs(REPORTS["profitability"], tenant, settings, DefinitionRegistry(app).documents)
    changed = []
    for row in profitability_rows(reports, tenant, now=now, **inputs):
        result = app.execute(
            CommandRequest(
                "account.segment",
                tenant,
                {
                    "account_id": row["account_id"],
                    "segment": row["segment"],
                    "usage_tier": row["usage_tier"],
                    "why": row["why"],
                },
                caller=caller,
            ),
            conflict_retries=2,
        )
        if result.events:
            changed.append({column: row[column] for column in COLUMNS})
    return changed
