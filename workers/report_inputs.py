"""What a report needs besides the read models: the tenant's segmentation and the settings it is figured with.

A report asks by naming a keyword parameter (projections.account_reports): ``segmentation`` (the tenant's
deployed ``kind: Segmentation``, processes.segmentation.segmentation_for), ``cost_per_case`` and
``lifetime_years`` (CRMFLOW_COST_PER_CASE, CRMFLOW_EXPECTED_LIFETIME_YEARS). The CLI and the API pass the
same inputs, so `crmflow query` and `GET /v1/reports/NAME` print the same figures.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import structlog

from crmflow.processes.loader import Document
from crmflow.processes.segmentation import segmentation_for, shipped_segmentation
from crmflow.projections.reports import Report
from crmflow.workers.config import Settings

log = structlog.get_logger("crmflow.reports")


def report_inputs(
    report: Report, tenant: str, settings: Settings | None, documents: Callable[[], list[Document]] | None
) -> dict[str, Any]:
    """The keyword arguments ``report.run`` accepts beyond since/until; the deployed documents are read only
    for a report that places accounts. Without a store to read them from, the shipped segmentation is used."""
    accepted = inspect.signature(report.run).parameters
    inputs: dict[str, Any] = {}
    if "segmentation" in accepted:
        try:
            if documents is None:
                raise LookupError("no event store to read the deployed documents from")
            inputs["segmentation"] = segmentation_for(tenant, documents())
        except Exception as error:  # noqa: BLE001 - an analyst may reach the read models but not the store
            log.warning("segmentation_unknown", report=report.name, error=str(error))
            inputs["segmentation"] = shipped_segmentation()
    if settings is not None and "cost_per_case" in accepted:
        inputs["cost_per_case"] = settings.cost_per_case
    if settings is not None and "lifetime_years" in accepted:
        inputs["lifetime_years"] = settings.expected_lifetime_years
    return inputs
