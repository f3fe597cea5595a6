"""SLA clocks run in business time: working hours, weekends, holidays, time zones."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from crmflow.processes.calendar import BusinessCalendar, CalendarError
from crmflow.processes.schema import Calendar

BERLIN = ZoneInfo("Europe/Berlin")
WEEKDAYS_9_TO_17 = {day: ["09:00-17:00"] for day in ("mon", "tue", "wed", "thu", "fri")}


def calendar(hours: dict[str, list[str]] = WEEKDAYS_9_TO_17, holidays: list[str] = (), zone: str = "Europe/Berlin") -> BusinessCalendar:  # type: ignore[assignment]
    return BusinessCalendar(Calendar.model_validate({"apiVersion": "crmflow/v1", "kind": "Calendar", "name": "support",
                                                     "timezone": zone, "hours": hours, "holidays": list(holidays)}))  # fmt: skip


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN)


def test_eight_business_hours_from_friday_afternoon_end_on_monday_afternoon() -> None:
    assert calendar().add(at("2026-03-06 16:00"), timedelta(hours=8)) == at("2026-03-09 16:00")


def test_a_case_opened_at_night_starts_its_clock_at_nine() -> None:
    assert calendar().add(at("2026-03-03 22:30"), timedelta(hours=2)) == at("2026-03-04 11:00")


def test_a_weekend_case_is_due_on_monday() -> None:
    assert calendar().add(at("2026-03-07 10:00"), timedelta(hours=1)) == at("2026-03-09 10:00")


def test_holidays_stop_the_clock_like_weekends() -> None:
    christmas = calendar(holidays=["2026-12-24", "2026-12-25"])
    # Wednesday 23 Dec 16:00 + 2h: one hour that day, then Thu and Fri are holidays, then the weekend.
    assert christmas.add(at("2026-12-23 16:00"), timedelta(hours=2)) == at("2026-12-28 10:00")


def test_split_working_hours_skip_the_lunch_break() -> None:
    lunch = calendar(hours={"mon": ["09:00-12:00", "13:00-17:00"]})
    assert lunch.add(at("2026-03-02 11:00"), timedelta(hours=2)) == at("2026-03-02 14:00")


def test_a_daylight_saving_change_counts_real_hours() -> None:
    # Europe/Berlin springs forward on Sunday 29 March 2026 at 02:00; a 24/7 desk loses that hour.
    always = calendar(hours={d: ["00:00-24:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")})
    due = always.add(at("2026-03-28 12:00"), timedelta(hours=24))
    assert due == at("2026-03-29 13:00") and due - at("2026-03-28 12:00") == timedelta(hours=24)


def test_business_time_between_two_moments() -> None:
    assert calendar().between(at("2026-03-06 16:00"), at("2026-03-09 10:30")) == timedelta(hours=2, minutes=30)
    assert calendar().between(at("2026-03-09 10:00"), at("2026-03-09 09:00")) == timedelta(0)


def test_a_calendar_in_another_zone_keeps_its_own_wall_clock() -> None:
    new_york = calendar(zone="America/New_York")
    # 15:00 in Berlin (still winter time) is 10:00 in New York (summer time since 8 March 2026).
    due = new_york.add(at("2026-03-10 15:00"), timedelta(hours=1))
    assert due.astimezone(ZoneInfo("America/New_York")).hour == 11


def test_a_calendar_without_working_hours_is_refused() -> None:
    with pytest.raises(CalendarError, match="has no working hours"):
        calendar(hours={"mon": []})


def test_bad_zones_and_backwards_hours_are_refused_by_the_schema() -> None:
    with pytest.raises(ValueError, match="'Mars/Olympus' is not an IANA time zone"):
        calendar(zone="Mars/Olympus")
    with pytest.raises(ValueError, match="the interval ends before it starts"):
        calendar(hours={"mon": ["17:00-09:00"]})
