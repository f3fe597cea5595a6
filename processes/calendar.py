"""Business time: clocks that run only within a calendar's working hours.

An SLA of "8 business hours" opened on Friday at 16:00 in a 09:00–17:00
calendar is due on Monday at 16:00 (or Tuesday, if Monday is a holiday).
Working hours are wall-clock times in the calendar's time zone; the sums are
done in UTC, so a daylight-saving change inside a working day counts the real
elapsed time.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from crmflow.processes.schema import Calendar

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_DAYS = 3 * 366  # how far ahead a due time may lie before we call the calendar broken


class CalendarError(ValueError):
    """The calendar cannot produce a due time (no working hours at all)."""


class BusinessCalendar:
    def __init__(self, calendar: Calendar) -> None:
        self.name = calendar.name
        self.zone = ZoneInfo(calendar.timezone)
        self.holidays = frozenset(calendar.holidays)
        self.hours: dict[int, list[tuple[time, time]]] = {
            WEEKDAYS.index(day): [_interval(text) for text in intervals] for day, intervals in calendar.hours.items()
        }
        if not any(self.hours.values()):
            raise CalendarError(f"calendar {self.name} has no working hours")

    def working_intervals(self, day: date) -> list[tuple[datetime, datetime]]:
        """The day's working intervals in UTC (none on holidays and days off)."""
        if day in self.holidays:
            return []
        out = []
        for start, end in self.hours.get(day.weekday(), []):
            local_end = datetime.combine(day + timedelta(days=1), time(0), self.zone) if end == time(0) \
                else datetime.combine(day, end, self.zone)  # fmt: skip
            out.append((datetime.combine(day, start, self.zone).astimezone(timezone.utc), local_end.astimezone(timezone.utc)))
        return out

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The moment ``duration`` of business time after ``start``."""
        remaining = duration
        moment = start.astimezone(timezone.utc)
        day = moment.astimezone(self.zone).date()
        for _ in range(MAX_DAYS):
            for open_at, close_at in self.working_intervals(day):
                if close_at <= moment:
                    continue
                begin = max(moment, open_at)
                available = close_at - begin
                if remaining <= available:
                    return begin + remaining
                remaining -= available
            day += timedelta(days=1)
        raise CalendarError(f"calendar {self.name}: no due time within {MAX_DAYS} days")

    def between(self, start: datetime, end: datetime) -> timedelta:
        """Business time elapsed from ``start`` to ``end`` (zero if end is earlier)."""
        start_utc, end_utc = start.astimezone(timezone.utc), end.astimezone(timezone.utc)
        total = timedelta(0)
        day = start_utc.astimezone(self.zone).date()
        while day <= end_utc.astimezone(self.zone).date():
            for open_at, close_at in self.working_intervals(day):
                overlap = min(close_at, end_utc) - max(open_at, start_utc)
                if overlap > timedelta(0):
                    total += overlap
            day += timedelta(days=1)
        return total


def _interval(text: str) -> tuple[time, time]:
    start, end = text.split("-")
    return time.fromisoformat(start), (time(0) if end == "24:00" else time.fromisoformat(end))
