"""A case is answered, maybe escalated or put on hold, resolved and closed, within its SLA."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from crmflow.aggregates.case import Case
from crmflow.aggregates.errors import IllegalTransitionError, InvalidValueError

MONDAY_9 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def new_case(priority: str = "urgent") -> Case:
    return Case.open(tenant_id="acme", subject="Cannot log in", priority=priority, channel="email",
                     opened_at=MONDAY_9)  # fmt: skip


STEPS_TO = {
    "new": [],
    "working": ["respond"],
    "escalated": ["respond", "escalate"],
    "on_hold": ["respond", "hold"],
    "resolved": ["respond", "resolve"],
    "closed": ["respond", "resolve", "close"],
}


def apply(case: Case, step: str, at: datetime = MONDAY_9) -> None:
    actions = {
        "respond": lambda: case.respond("looking into it", at),
        "escalate": lambda: case.escalate("customer is blocked", at),
        "hold": lambda: case.hold("waiting for logs", at),
        "resume": lambda: case.resume(at),
        "resolve": lambda: case.resolve("reset the password", None, at),
        "close": lambda: case.close(),
        "reopen": lambda: case.reopen("still broken"),
    }
    actions[step]()


def case_in(status: str) -> Case:
    case = new_case()
    for step in STEPS_TO[status]:
        apply(case, step)
    assert case.status == status
    return case


@pytest.mark.parametrize(
    ("priority", "respond_hours", "resolve_hours"),
    [("urgent", 1, 8), ("high", 4, 24), ("medium", 8, 72), ("low", 24, 120)],
)
def test_a_new_case_gets_due_times_from_its_priority(priority: str, respond_hours: int, resolve_hours: int) -> None:
    case = new_case(priority)
    assert case.first_response_due == MONDAY_9 + timedelta(hours=respond_hours)
    assert case.resolution_due == MONDAY_9 + timedelta(hours=resolve_hours)


def test_an_urgent_case_answered_in_time_and_resolved_late_records_both_facts() -> None:
    case = new_case("urgent")
    case.respond("on it", MONDAY_9 + timedelta(minutes=30))
    case.resolve("patched", None, MONDAY_9 + timedelta(hours=9))
    responded, resolved = [e for e in case.collect_events()][1:]
    assert (responded.first_response, responded.within_sla) == (True, True)
    assert resolved.within_sla is False
    assert case.first_responded_at == MONDAY_9 + timedelta(minutes=30)


def test_only_the_first_answer_counts_as_first_response() -> None:
    case = new_case()
    case.respond("first", MONDAY_9 + timedelta(minutes=10))
    case.respond("second", MONDAY_9 + timedelta(hours=3))
    assert case.first_responded_at == MONDAY_9 + timedelta(minutes=10)


def test_time_on_hold_does_not_count_against_the_sla() -> None:
    case = new_case("urgent")  # due: respond 10:00, resolve 17:00
    case.respond("need your logs", MONDAY_9 + timedelta(minutes=5))
    case.hold("waiting for logs", MONDAY_9 + timedelta(hours=1))
    case.resume(MONDAY_9 + timedelta(hours=4))  # three hours on hold
    assert case.status == "working"
    assert case.resolution_due == MONDAY_9 + timedelta(hours=11)


def test_a_held_escalation_resumes_as_escalated() -> None:
    case = case_in("escalated")
    case.hold("waiting for vendor", MONDAY_9)
    case.resume(MONDAY_9 + timedelta(hours=1))
    assert case.status == "escalated"


def test_escalating_again_raises_the_level() -> None:
    case = case_in("escalated")
    case.escalate("still blocked after 2h", MONDAY_9)
    assert case.escalation_level == 2


def test_a_resolved_case_can_be_reopened_and_worked_again() -> None:
    case = case_in("resolved")
    case.reopen("customer says it is back")
    assert (case.status, case.resolved_at) == ("working", None)


ALLOWED = {
    ("new", "respond"), ("new", "escalate"),
    ("working", "respond"), ("working", "escalate"), ("working", "hold"), ("working", "resolve"),
    ("escalated", "respond"), ("escalated", "escalate"), ("escalated", "hold"), ("escalated", "resolve"),
    ("on_hold", "resume"),
    ("resolved", "close"), ("resolved", "reopen"),
}  # fmt: skip
STEPS = ("respond", "escalate", "hold", "resume", "resolve", "close", "reopen")
REFUSED = [(s, step) for s in STEPS_TO for step in STEPS if (s, step) not in ALLOWED]


@pytest.mark.parametrize(("status", "step"), REFUSED)
def test_every_move_outside_the_lifecycle_is_refused_and_explained(status: str, step: str) -> None:
    case = case_in(status)
    case.collect_events()
    with pytest.raises(IllegalTransitionError) as refused:
        apply(case, step)
    assert f"case {case.short_id}" in str(refused.value)
    assert status in str(refused.value)
    assert case.collect_events() == [] and case.status == status


def test_a_closed_case_cannot_be_reassigned() -> None:
    with pytest.raises(IllegalTransitionError, match="closed cases are final"):
        case_in("closed").assign("joe")


def test_an_unknown_priority_is_refused_naming_the_priorities() -> None:
    with pytest.raises(InvalidValueError, match="priority 'critical' is not allowed: use one of high, low, medium, urgent"):
        new_case("critical")
