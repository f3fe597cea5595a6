"""Timers run on event time: a worker that handles an event late computes the due times simulate computes.

The engine is given the time it handles an event at (``now``); due times, paused
clocks and CEL ``now`` come from when the event happened (its CloudEvents
``time``), a timer's continuation from its due time. Retries after a refusal
and the stamps on emitted events are real time: the handling clock.
"""

from __future__ import annotations

import textwrap
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from crmflow.aggregates.errors import IllegalTransitionError
from crmflow.processes.calendar import BusinessCalendar
from crmflow.processes.compiled import CompiledProcess
from crmflow.processes.engine import Engine, MemoryInstances
from crmflow.processes.event_time import occurred_at
from crmflow.processes.instance import Instance
from crmflow.processes.loader import load_files, parse_documents
from crmflow.processes.simulation import RecordingCommands, RecordingEmits, Simulation

DEFINITIONS = Path(__file__).parents[3] / "processes" / "definitions"
SHIPPED = load_files([DEFINITIONS / "calendars.yaml", DEFINITIONS / "case-sla.yaml"])
CASE = str(uuid.UUID(int=0xCA5E))
LEAD = str(uuid.UUID(int=1))
UTC = timezone.utc
# support-emea works 08:00-18:00 Berlin, which is 07:00-17:00Z until the clocks change on 29 March.
FRIDAY_1630Z = datetime(2026, 3, 6, 16, 30, tzinfo=UTC)  # 17:30 in Berlin: half an hour before closing
MONDAY_1000Z = datetime(2026, 3, 9, 10, 0, tzinfo=UTC)


def at(when: datetime) -> str:
    return when.isoformat()


def cloud_event(type_: str, time: Any, subject: str = CASE, **data: Any) -> dict[str, Any]:
    event = {"specversion": "1.0", "id": str(uuid.uuid4()), "source": "/t", "type": type_,
             "subject": subject, "tenantid": "acme", "data": data}  # fmt: skip
    if time is not None:
        event["time"] = time
    return event


class Live:
    """The engine as the live runtime drives it: events handled at the worker's clock, timers in rounds."""

    def __init__(self, documents: list[Any], commands: RecordingCommands | None = None) -> None:
        calendars = {d.model.name: BusinessCalendar(d.model) for d in documents if d.kind == "Calendar"}
        processes = [CompiledProcess(d.model, calendars) for d in documents if d.kind == "Process"]
        self.instances, self.emits = MemoryInstances(), RecordingEmits()
        self.commands = commands or RecordingCommands()
        self.engine = Engine(processes, self.instances, self.commands, self.emits)

    def only(self) -> Instance:
        (instance,) = self.instances.instances.values()
        return instance


def simulated(documents: list[Any], events: list[dict[str, Any]], until: datetime) -> Simulation:
    """What `process simulate` does with the same events (crmflow/workers/cli/process.py run_simulate)."""
    sim = Simulation(documents, datetime.fromisoformat(events[0]["time"]))
    for event in events:
        sim.advance_to(datetime.fromisoformat(event["time"]))
        sim.publish(event)
    sim.advance_to(until)
    return sim


def timeouts(effects: list[Any]) -> list[tuple[str | None, str]]:
    return [(e.step, e.detail["due"]) for e in effects if e.kind == "timeout"]


def test_an_urgent_case_seen_on_monday_morning_is_escalated_when_simulate_says() -> None:
    opened = cloud_event("CaseOpened", at(FRIDAY_1630Z), priority="urgent")
    live = Live(SHIPPED)

    live.engine.handle(opened, MONDAY_1000Z)  # the worker was down all weekend

    # One business hour from Friday 17:30 Berlin: 30 minutes to 18:00, 30 from Monday 08:00 → 08:30 Berlin,
    # 07:30Z. (From when the worker saw it, Monday 11:00 Berlin, it would be 12:00 Berlin: 11:00Z.)
    assert live.only().waiting.due == datetime(2026, 3, 9, 7, 30, tzinfo=UTC)
    fired = live.engine.fire_due(MONDAY_1000Z)  # already due: fires at once
    assert timeouts(fired) == [("respond-urgent", "2026-03-09T07:30:00+00:00")]
    assert [c.name for c in live.commands.issued] == ["case.escalate"]
    # The resolution clock runs from the breach's due time: 8 business hours from 08:30 Berlin end 16:30
    # Berlin, 15:30Z, as in the simulation; not from 10:00Z, when the round happened to run.
    assert live.only().waiting.due == datetime(2026, 3, 9, 15, 30, tzinfo=UTC)
    assert live.engine.fire_due(MONDAY_1000Z) == [], "each timer fires once"

    sim = simulated(SHIPPED, [opened], MONDAY_1000Z)
    assert timeouts([e for _, e in sim.effects]) == timeouts(fired)
    assert next(iter(sim.instances.instances.values())).waiting.due == live.only().waiting.due


def test_cases_overdue_when_the_worker_is_back_are_escalated_in_the_order_they_fell_due() -> None:
    monday_0900z = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # 10:00 in Berlin
    later, earlier = str(uuid.UUID(int=0xB)), str(uuid.UUID(int=0xA))
    live = Live(SHIPPED)
    back = monday_0900z + timedelta(hours=1, minutes=30)

    # Handled in the order they reached the worker, not the order they were opened in.
    live.engine.handle(cloud_event("CaseOpened", at(monday_0900z + timedelta(minutes=10)), later,
                                   priority="urgent"), back)  # fmt: skip
    live.engine.handle(cloud_event("CaseOpened", at(monday_0900z), earlier, priority="urgent"), back)

    # An urgent hour each: 09:00Z → 10:00Z, 09:10Z → 10:10Z; both overdue at 10:30Z, fired earliest first.
    fired = live.engine.fire_due(back)
    assert timeouts(fired) == [("respond-urgent", "2026-03-02T10:00:00+00:00"),
                               ("respond-urgent", "2026-03-02T10:10:00+00:00")]  # fmt: skip
    assert [c.data["case_id"] for c in live.commands.issued] == [earlier, later]


def test_a_reply_stamped_before_the_deadline_but_handled_after_it_stops_the_clock() -> None:
    opened = cloud_event("CaseOpened", at(FRIDAY_1630Z), priority="urgent")
    # Friday 17:50 Berlin: 20 of the 60 business minutes used, so in time (due Monday 07:30Z).
    replied = cloud_event("CaseResponded", at(datetime(2026, 3, 6, 16, 50, tzinfo=UTC)))
    live = Live(SHIPPED)

    live.engine.handle(opened, MONDAY_1000Z)
    live.engine.handle(replied, MONDAY_1000Z + timedelta(seconds=1))

    assert live.only().step == "resolve-urgent"
    assert live.engine.fire_due(MONDAY_1000Z + timedelta(seconds=1)) == []
    assert live.commands.issued == []
    # 8 business hours from Friday 17:50 Berlin: 10 minutes on Friday, 7h50 on Monday from 08:00 → 15:50
    # Berlin, 14:50Z.
    assert live.only().waiting.due == datetime(2026, 3, 9, 14, 50, tzinfo=UTC)
    assert simulated(SHIPPED, [opened, replied], MONDAY_1000Z).commands.issued == []


def test_a_reply_stamped_after_the_deadline_loses_to_the_timeout_even_when_handled_first() -> None:
    opened = cloud_event("CaseOpened", at(FRIDAY_1630Z), priority="urgent")
    replied = cloud_event("CaseResponded", at(datetime(2026, 3, 9, 9, 0, tzinfo=UTC)))  # after 07:30Z
    live = Live(SHIPPED)

    live.engine.handle(opened, MONDAY_1000Z)
    effects = live.engine.handle(replied, MONDAY_1000Z)  # before any timer round has run

    # The simulation fires the 07:30Z timeout before it delivers the 09:00Z reply; so does the engine.
    assert timeouts(effects) == [("respond-urgent", "2026-03-09T07:30:00+00:00")]
    assert [c.name for c in live.commands.issued] == ["case.escalate"]
    assert live.only().step == "resolve-urgent"
    assert live.engine.fire_due(MONDAY_1000Z) == [], "the timer that fired with the reply does not fire again"
    sim = simulated(SHIPPED, [opened, replied], MONDAY_1000Z)
    assert [c.name for c in sim.commands.issued] == ["case.escalate"]
    assert timeouts([e for _, e in sim.effects]) == timeouts(effects)


def test_time_on_hold_is_counted_from_the_events_own_times() -> None:
    monday_0800z = datetime(2026, 3, 9, 8, 0, tzinfo=UTC)
    opened = cloud_event("CaseOpened", at(monday_0800z), priority="high")  # 4 business hours: due 12:00Z
    on_hold = cloud_event("CaseOnHold", at(monday_0800z + timedelta(hours=1)), reason="logs")
    resumed = cloud_event("CaseResumed", at(monday_0800z + timedelta(hours=3)))
    live = Live(SHIPPED)
    late = monday_0800z + timedelta(hours=5)  # all three handled at 13:00Z, after the backlog cleared

    for event in (opened, on_hold, resumed):
        live.engine.handle(event, late)

    # 1 of 4 business hours used when put on hold at 09:00Z; 3 left from the resumption at 11:00Z → 14:00Z.
    assert live.only().waiting.due == datetime(2026, 3, 9, 14, 0, tzinfo=UTC)
    assert live.engine.fire_due(late) == []
    assert next(iter(simulated(SHIPPED, [opened, on_hold, resumed], late).instances.instances.values())) \
        .waiting.due == live.only().waiting.due  # fmt: skip


WAIT_4H = """\
apiVersion: crmflow/v1
kind: Process
name: p
version: 1
tenant: '*'
trigger: {on: [LeadCreated]}
vars: {lead: event.subject, seen_at: now}
steps:
""" + textwrap.indent(textwrap.dedent("""\
    - id: wait
      wait_for: {on: [LeadQualified]}
      timeout: PT4H
      on_timeout: remind
    - id: remind
      set: {reminded_at: now}
    - id: announce
      emit: LeadReminder
      data: {lead_id: vars.lead}
    """), "  ")  # fmt: skip


def test_now_in_expressions_is_when_the_event_happened_and_a_timers_due_time() -> None:
    created = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    live = Live(parse_documents(WAIT_4H, "p.yaml"))
    handled = created + timedelta(hours=6)

    live.engine.handle(cloud_event("LeadCreated", at(created), subject=LEAD), handled)
    live.engine.fire_due(handled)

    assert live.only().vars["seen_at"] == "2026-03-02T09:00:00+00:00"
    assert live.only().vars["reminded_at"] == "2026-03-02T13:00:00+00:00"  # 09:00 + PT4H, not 15:00
    # What the instance emits is stamped when it was emitted: it is recorded then.
    assert [e["time"] for e in live.emits.emitted] == ["2026-03-02T15:00:00+00:00"]


@pytest.mark.parametrize("time", [None, "", "last tuesday", "2026-03-02T09:00:00", 1772442000],
                         ids=["none", "empty", "malformed", "no time zone", "a number"])  # fmt: skip
def test_an_event_without_a_readable_time_is_timed_from_when_it_is_handled(time: Any) -> None:
    live = Live(parse_documents(WAIT_4H, "p.yaml"))
    handled = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)

    live.engine.handle(cloud_event("LeadCreated", time, subject=LEAD), handled)

    assert live.only().waiting.due == handled + timedelta(hours=4)


def test_an_event_stamped_in_the_future_is_timed_from_its_own_time() -> None:
    live = Live(parse_documents(WAIT_4H, "p.yaml"))
    handled = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    stamped = handled + timedelta(minutes=30)  # a producer whose clock runs half an hour fast

    live.engine.handle(cloud_event("LeadCreated", at(stamped), subject=LEAD), handled)

    assert live.only().waiting.due == stamped + timedelta(hours=4)  # 09:30 + 4h = 13:30
    assert live.engine.fire_due(handled + timedelta(hours=4)) == [], "13:00 is not yet 13:30"
    assert timeouts(live.engine.fire_due(handled + timedelta(hours=4, minutes=30))) == [
        ("wait", "2026-03-02T13:30:00+00:00")]  # fmt: skip


def test_an_event_stamped_in_the_future_does_not_fire_a_timer_before_it_is_due() -> None:
    live = Live(parse_documents(WAIT_4H, "p.yaml"))
    created = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    live.engine.handle(cloud_event("LeadCreated", at(created), subject=LEAD), created)  # due 13:00

    # Handled at 12:00, stamped 14:00 by a clock running two hours fast: the 13:00 timeout has not
    # happened yet, so the qualification answers the wait.
    qualified = cloud_event("LeadQualified", at(created + timedelta(hours=5)), subject=LEAD)
    effects = live.engine.handle(qualified, created + timedelta(hours=3))

    assert timeouts(effects) == []
    assert live.only().status == "completed"
    # The steps after the wait, reached on the event, see its own time as now.
    assert live.only().vars["reminded_at"] == "2026-03-02T14:00:00+00:00"


RETRY = """\
apiVersion: crmflow/v1
kind: Process
name: p
version: 1
tenant: '*'
trigger: {on: [LeadCreated]}
vars: {lead: event.subject}
steps:
  - id: qualify
    do: lead.qualify
    args: {lead_id: vars.lead}
    retry: {max: 2, backoff: PT10M}
"""


class RefusingOnce(RecordingCommands):
    def __init__(self) -> None:
        super().__init__()
        self.refused = False

    def execute(self, request: Any) -> None:
        if not self.refused:
            self.refused = True
            raise IllegalTransitionError("cannot qualify lead from new: allowed from working")
        super().execute(request)


def test_a_retry_after_a_refusal_waits_from_when_the_command_was_refused() -> None:
    live = Live(parse_documents(RETRY, "p.yaml"), RefusingOnce())
    created = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    handled = created + timedelta(hours=1)

    live.engine.handle(cloud_event("LeadCreated", at(created), subject=LEAD), handled)

    # The refusal happened at 10:00; a retry at 09:10 would be due before it was refused.
    assert live.only().waiting.due == handled + timedelta(minutes=10)


def test_what_a_timer_causes_carries_the_correlation_id_of_the_instances_trigger() -> None:
    live = Live(SHIPPED)
    opened = {**cloud_event("CaseOpened", at(FRIDAY_1630Z), priority="urgent"), "correlationid": "story-42"}

    live.engine.handle(opened, FRIDAY_1630Z)
    timer_id = live.only().waiting.timer_id
    live.engine.fire_due(MONDAY_1000Z)

    (escalate,) = live.commands.issued
    assert (escalate.correlation_id, escalate.causation_id) == ("story-42", timer_id)
    (breached,) = live.emits.emitted
    assert (breached["correlationid"], breached["causationid"]) == ("story-42", timer_id)


def test_an_instance_saved_before_correlation_ids_were_kept_uses_its_triggers_id() -> None:
    live = Live(SHIPPED)
    live.engine.handle(cloud_event("CaseOpened", at(FRIDAY_1630Z), priority="urgent"), FRIDAY_1630Z)
    state = live.only().to_dict()
    del state["correlation_id"]  # what a worker of the release before saved
    old = Instance.from_dict(state)
    live.instances.save(old)

    live.engine.fire_due(MONDAY_1000Z)

    assert old.correlation_id is None
    assert [c.correlation_id for c in live.commands.issued] == [old.trigger_event_id]


@pytest.mark.parametrize(("raw", "expected"), [
    ("2026-03-06T16:30:00Z", datetime(2026, 3, 6, 16, 30, tzinfo=UTC)),
    ("2026-03-06T17:30:00+01:00", datetime(2026, 3, 6, 16, 30, tzinfo=UTC)),
    (datetime(2026, 3, 6, 17, 30, tzinfo=timezone(timedelta(hours=1))),
     datetime(2026, 3, 6, 16, 30, tzinfo=UTC)),
])  # fmt: skip
def test_an_events_time_is_read_in_utc(raw: Any, expected: datetime) -> None:
    read = occurred_at({"time": raw}, fallback=MONDAY_1000Z)
    assert read == expected and read.tzinfo == UTC
