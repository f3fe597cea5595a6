"""The sla report's figures per priority, from rm_cases rows: times, shares within SLA, breaches, backlog.

Whether a case was answered (resolved) within its SLA is the verdict of the
process that keeps its SLA, when one gave a verdict: the shipped case-sla
definition counts business hours on the support-emea calendar, emits
CaseSlaMet or CaseSlaBreached and escalates each breach, so the report agrees
with the escalations. Without a verdict (no such process deployed, or it has
not judged yet) the Case aggregate's own flag counts: its default due dates in
calendar hours (aggregates.case.DEFAULT_SLA_HOURS), moved by time on hold.
Response and resolution times themselves are calendar hours.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from crmflow.projections.figures import hours, money, percentile, ratio

PRIORITIES = ("urgent", "high", "medium", "low")
MEDIAN, P90 = Decimal("0.5"), Decimal("0.9")  # nearest-rank percentiles (projections.figures)
VERDICT_COLUMNS = ("first_response_verdict", "resolution_verdict")


def within_sla(verdict: str | None, aggregate_within: int | bool | None) -> bool:
    """The process's verdict ('met' / 'breached') if there is one, else the aggregate's calendar-hour flag."""
    if verdict is not None:
        return verdict == "met"
    return bool(aggregate_within)


def sla_figures(rows: Sequence[dict[str, Any]], moment: datetime) -> list[dict[str, Any]]:
    """One row per priority that has cases, most urgent first; ``moment`` is now, for the backlog's age."""
    out = []
    for priority in PRIORITIES:
        cases = [c for c in rows if c["priority"] == priority]
        if not cases:
            continue
        responded = [c for c in cases if c["first_responded_at"]]
        resolved = [c for c in cases if c["resolved_at"]]
        open_cases = [c for c in cases if c["status"] not in ("resolved", "closed")]
        first = [hours(c["opened_at"], c["first_responded_at"]) for c in responded]
        resolution = [hours(c["opened_at"], c["resolved_at"]) for c in resolved]
        ages = [hours(c["opened_at"], moment) for c in open_cases]
        answered_in_time = sum(within_sla(c["first_response_verdict"], c["first_response_within_sla"])
                               for c in responded)  # fmt: skip
        resolved_in_time = sum(within_sla(c["resolution_verdict"], c["resolution_within_sla"])
                               for c in resolved)  # fmt: skip
        out.append(
            {
                "priority": priority,
                "cases": len(cases),
                "open": len(open_cases),
                "first_response_median_h": percentile(first, MEDIAN),  # type: ignore[arg-type]
                "first_response_p90_h": percentile(first, P90),  # type: ignore[arg-type]
                "first_response_within_sla": ratio(answered_in_time, len(responded)),
                "resolution_median_h": percentile(resolution, MEDIAN),  # type: ignore[arg-type]
                "resolution_p90_h": percentile(resolution, P90),  # type: ignore[arg-type]
                "resolution_within_sla": ratio(resolved_in_time, len(resolved)),
                # Every breach verdict, answered or not yet: what the SLA process announced and escalated.
                "breaches": sum(c[column] == "breached" for c in cases for column in VERDICT_COLUMNS),
                "escalations": sum(c["escalations"] or 0 for c in cases),
                "backlog_max_age_h": money(max(ages)) if ages else None,  # type: ignore[type-var]
            }
        )
    return out
