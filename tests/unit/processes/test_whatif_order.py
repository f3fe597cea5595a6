"""`whatif` replays history in the order it happened, which is not always the order it was stored in."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from crmflow.processes.loader import parse_documents
from crmflow.processes.whatif import compare, in_time_order

MONDAY_9 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
LEAD = str(uuid.UUID(int=7))
FOLLOW_UP = """\
apiVersion: crmflow/v1
kind: Process
name: webinar-follow-up
version: {version}
tenant: '*'
trigger: {{on: [WebinarAttended]}}
vars: {{lead: event.subject}}
steps:
  - id: wait-contact
    wait_for: {{on: [LeadStatusChanged], when: 'event.subject == vars.lead'}}
    timeout: {timeout}
    on_timeout: overdue
    next: end
  - id: overdue
    emit: LeadFollowUpOverdue
    data: {{lead_id: vars.lead}}
"""


def event(type_: str, time: datetime | None, n: int) -> dict[str, Any]:
    document = {"specversion": "1.0", "id": f"e{n}", "source": "/t", "type": type_, "subject": LEAD,
                "tenantid": "acme", "data": {"status": "working"}}  # fmt: skip
    if time is not None:
        document["time"] = time.isoformat()
    return document


def escalations(history: list[dict[str, Any]]) -> tuple[int, int]:
    deployed = parse_documents(FOLLOW_UP.format(version=1, timeout="PT1H"), "deployed.yaml")
    proposal = parse_documents(FOLLOW_UP.format(version=2, timeout="PT2H"), "proposal.yaml")
    rows = {r["measure"]: (r["deployed"], r["proposed"]) for r in compare(history, deployed, proposal,
                                                                           MONDAY_9 + timedelta(days=1)).rows()}  # fmt: skip
    return rows["escalations"]


def test_an_attendance_stored_after_the_call_it_led_to_is_replayed_before_it() -> None:
    # The webinar platform reported the 09:00 attendance at 09:45; sales had called the lead at 09:30.
    attended = event("WebinarAttended", MONDAY_9, 1)
    called = event("LeadStatusChanged", MONDAY_9 + timedelta(minutes=30), 2)

    stored_order = escalations([called, attended])

    # In time order the call (09:30) answers the wait the attendance (09:00) started: no follow-up is
    # overdue. In stored order the call would come before any instance and each version would escalate.
    assert stored_order == escalations([attended, called]) == (0, 0)


def test_ties_keep_their_stored_order_and_an_event_without_a_time_stays_beside_the_one_before_it() -> None:
    first, second = event("A", MONDAY_9, 1), event("B", MONDAY_9, 2)
    untimed = event("C", None, 3)
    earlier = event("D", MONDAY_9 - timedelta(hours=1), 4)
    malformed = {**event("E", None, 5), "time": "yesterday"}

    ordered = in_time_order([malformed, first, second, untimed, earlier], MONDAY_9 + timedelta(days=9))

    # E has no readable time and nothing before it: it goes with the first time there is (09:00), stored
    # before A and B, so it stays before them. C goes with B (09:00). D (08:00) comes first.
    assert [e["type"] for _, e in ordered] == ["D", "E", "A", "B", "C"]
    assert [moment.hour for moment, _ in ordered] == [8, 9, 9, 9, 9]
