"""Within SLA, in the sla report: the SLA process's verdict when it gave one, else the aggregate's calendar flag.

Rows are rm_cases rows as the database returns them. support-emea works
08:00-18:00 in Berlin (07:00-17:00Z in March); the aggregate's defaults are
calendar hours (high: 4 h to answer, 24 h to resolve).
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal as D
from typing import Any

from crmflow.projections.sla import sla_figures, within_sla

NOW = datetime(2026, 3, 6, 12, 0, tzinfo=timezone.utc)  # Friday noon


def case(priority: str = "high", **columns: Any) -> dict[str, Any]:
    row = {"priority": priority, "status": "resolved", "opened_at": "2026-03-02T16:00:00+00:00",
           "first_responded_at": None, "first_response_within_sla": None, "first_response_verdict": None,
           "resolved_at": None, "resolution_within_sla": None, "resolution_verdict": None, "escalations": 0}  # fmt: skip
    return {**row, **columns}


def test_a_verdict_decides_and_without_one_the_aggregates_flag_does() -> None:
    assert within_sla("met", 0) is True
    assert within_sla("breached", 1) is False
    assert within_sla(None, 1) is True
    assert within_sla(None, 0) is False
    assert within_sla(None, None) is False  # a row written before the flag existed: not counted as kept


def test_a_high_priority_case_answered_the_next_morning_is_within_by_the_definitions_business_hours() -> None:
    # Opened Mon 16:00Z (17:00 Berlin), answered Tue 08:00Z (09:00 Berlin): 16 calendar hours, late for the
    # aggregate's 4 h; 1 business hour on Monday + 1 on Tuesday = 2 of 4: the definition says met.
    overnight = case(first_responded_at="2026-03-03T08:00:00+00:00", first_response_within_sla=0,
                     first_response_verdict="met")  # fmt: skip
    [row] = sla_figures([overnight], NOW)
    assert row["first_response_within_sla"] == D("1.0000")
    assert row["first_response_median_h"] == D("16.00")
    assert row["breaches"] == 0


def test_a_breach_verdict_beats_an_aggregate_within() -> None:
    # Answered after 3 h (the aggregate: within 4 h) but breached by the process (a hold the definition did
    # not pause for, a calendar that closed early: the verdict is the process's to give). Resolved after
    # 20 h with no verdict yet: the aggregate's within counts. Shares: 0/1 answered in time, 1/1 resolved.
    late = case(first_responded_at="2026-03-02T19:00:00+00:00", first_response_within_sla=1,
                first_response_verdict="breached", resolved_at="2026-03-03T12:00:00+00:00",
                resolution_within_sla=1, escalations=1)  # fmt: skip
    [row] = sla_figures([late], NOW)
    assert (row["first_response_within_sla"], row["resolution_within_sla"]) == (D("0.0000"), D("1.0000"))
    assert (row["breaches"], row["escalations"]) == (1, 1)


def test_breaches_count_every_breach_verdict_even_of_cases_not_yet_answered() -> None:
    # Three high cases: one answered in time (met), one breached and still unanswered, one breached on both
    # SLAs and resolved. Answered: 2, in time 1 → 0.5; breaches 0 + 1 + 2 = 3 (the escalations the process made).
    rows = [
        case(status="working", first_responded_at="2026-03-02T17:00:00+00:00", first_response_within_sla=1,
             first_response_verdict="met"),
        case(status="escalated", first_response_verdict="breached", escalations=1),
        case(first_responded_at="2026-03-03T10:00:00+00:00", first_response_within_sla=0,
             first_response_verdict="breached", resolved_at="2026-03-05T10:00:00+00:00", resolution_within_sla=0,
             resolution_verdict="breached", escalations=2),
    ]  # fmt: skip
    [row] = sla_figures(rows, NOW)
    assert row["first_response_within_sla"] == D("0.5000")
    assert row["resolution_within_sla"] == D("0.0000")
    assert (row["breaches"], row["escalations"]) == (3, 3)
    # Two open, both opened Mon 16:00Z: the oldest is 3 × 24 + 20 = 92 h old at Fri 12:00Z.
    assert (row["open"], row["backlog_max_age_h"]) == (2, D("92.00"))
