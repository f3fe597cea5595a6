"""✚ ``business_add(start, duration, calendar)``: a due time in business time, for a command's arguments.

A `wait_for` timeout can already run in business time (``{business: 8h, calendar: X}``); a
command sometimes has to carry the same moment, e.g. the due time of the activity a process
schedules (the shipped lead-follow-up-activity: ``due_at: business_add(now, "8h", "sales-emea")``,
then a wait with the same timeout). Both are worked out by the same calendar arithmetic
(processes.calendar), so they fall on the same instant. The function is bound only for steps
whose expressions call it (processes.compiled), as round_robin() is.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime, timezone

from crmflow.processes.calendar import BusinessCalendar
from crmflow.processes.durations import DurationError, parse_duration
from crmflow.processes.expressions import ExpressionError

NAME = "business_add"
# A call whose duration and calendar are literals: validation checks them (processes.validation).
LITERAL_CALL = re.compile(r"""\bbusiness_add\(\s*[^,()]+,\s*["']([^"']*)["']\s*,\s*["']([^"']*)["']\s*\)""")


def business_add(calendars: Mapping[str, BusinessCalendar]) -> Callable[[datetime, str, str], datetime]:
    def add(start: datetime, duration: str, calendar: str) -> datetime:
        if not isinstance(start, datetime):
            raise ExpressionError(f"{NAME}() needs a timestamp to start from (e.g. now), not {start!r}")
        found = calendars.get(calendar)
        if found is None:
            raise ExpressionError(f"{NAME}(): calendar {calendar!r} is not loaded")
        try:
            span = parse_duration(duration)
        except DurationError as error:
            raise ExpressionError(f"{NAME}(): {error}") from None
        moment = start if start.tzinfo else start.replace(tzinfo=timezone.utc)
        return found.add(moment, span)

    return add


def literal_calls(source: str) -> list[tuple[str, str]]:
    """(duration, calendar) of every call in the expression that names both as literals."""
    return LITERAL_CALL.findall(source)
