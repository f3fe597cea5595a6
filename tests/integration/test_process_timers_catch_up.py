"""Workers that were down catch up on event time: every SLA falls due when `process simulate` says it does.

The process and timer workers stop for an hour of the test's clock while cases
keep being opened; the relay publishes them. Restarted, the workers compute
each timeout from the time the case was opened, not from when they got to it,
fire the ones already due at once, each once, and the escalations carry the
case's own correlation id.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from crmflow.aggregates.application import CommandRequest, CrmApplication
from crmflow.processes.instance import instance_id
from crmflow.processes.loader import load_files
from crmflow.processes.registry import DefinitionRegistry
from crmflow.processes.runtime import ProcessRuntime
from crmflow.processes.simulation import Simulation
from crmflow.workers.history import stored_history
from crmflow.workers.kafka.clients import KafkaClients
from crmflow.workers.kafka.relay import Relay
from crmflow.workers.run.process_worker import ProcessWorker, TimerWorker
from crmflow.workers.shutdown import StopSignal
from tests.conftest import Clock
from tests.waiting import wait_until

DEFINITIONS = Path(__file__).parents[2] / "processes" / "definitions"
CASE_SLA = load_files([DEFINITIONS / "calendars.yaml", DEFINITIONS / "case-sla.yaml"])


@pytest.fixture
def workers(app: CrmApplication, kafka: KafkaClients, clock: Clock) -> Iterator[list[ProcessWorker]]:
    DefinitionRegistry(app).deploy(CASE_SLA, "ada")
    started: list[ProcessWorker] = []
    yield started
    for worker in started:
        worker.close()


def relay(app: CrmApplication, kafka: KafkaClients) -> None:
    Relay(app, kafka).run(StopSignal(), until_caught_up=True)


def open_case(app: CrmApplication, priority: str) -> str:
    data = {"subject": f"{priority} trouble", "priority": priority}
    result = app.execute(CommandRequest("case.open", "acme", data, caller="support-desk"))
    return str(result.aggregate_id)


def instance_history(app: CrmApplication, case: str) -> list[Any]:
    return app.history(instance_id("acme", "case-sla", case), "acme")


def waiting_at(worker: ProcessWorker, case: str) -> str | None:
    instance = worker.runtime.instances.get(instance_id("acme", "case-sla", case))
    return instance.step if instance is not None and instance.status == "waiting" else None


def simulated_timeouts(events: list[dict[str, Any]], until: datetime) -> list[tuple[str, str, str]]:
    """`process simulate` over the same events (as crmflow/workers/cli/process.py run_simulate drives it)."""
    sim = Simulation(CASE_SLA, min(datetime.fromisoformat(e["time"]) for e in events))
    for event in events:
        sim.advance_to(datetime.fromisoformat(event["time"]))
        sim.publish(event)
    sim.advance_to(until)
    return sorted((e.instance, e.step or "", e.detail["due"]) for _, e in sim.effects if e.kind == "timeout")


def test_cases_seen_an_hour_late_are_escalated_when_simulate_says(
    app: CrmApplication, kafka: KafkaClients, clock: Clock, workers: list[ProcessWorker]
) -> None:
    # support-emea works 08:00-18:00 in Berlin: 07:00-17:00Z in March. The clock starts Monday 09:00Z.
    first = ProcessWorker(app, kafka, ProcessRuntime(app, clock))
    workers.append(first)
    a = open_case(app, "urgent")  # 09:00Z
    relay(app, kafka)
    wait_until(lambda: first.poll_once() >= 0 and waiting_at(first, a) == "respond-urgent", 60, interval_s=0,
               what="case A's first-response clock running")  # fmt: skip
    first.close()  # the node goes down: no process worker, no timer worker

    clock.advance(minutes=10)
    b = open_case(app, "urgent")  # 09:10Z
    clock.advance(minutes=10)
    c = open_case(app, "high")  # 09:20Z
    clock.advance(minutes=10)
    d = open_case(app, "urgent")  # 09:30Z
    clock.advance(minutes=10)
    app.execute(CommandRequest("case.respond", "acme", {"case_id": d, "message": "on it"}))  # 09:40Z: in time
    clock.advance(minutes=30)  # 10:10Z: back up, an hour and ten minutes later
    relay(app, kafka)
    inputs = [e for e in stored_history(app) if e["type"] in ("CaseOpened", "CaseResponded")]

    restarted = ProcessWorker(app, kafka, ProcessRuntime(app, clock))
    workers.append(restarted)
    timers = TimerWorker(app, ProcessRuntime(app, clock))
    wait_until(lambda: restarted.poll_once() >= 0 and waiting_at(restarted, b) and waiting_at(restarted, c)
               and waiting_at(restarted, d) == "resolve-urgent",
               60, interval_s=0, what="the backlog handled")  # fmt: skip
    assert timers.tick() > 0  # 10:10Z: A's and B's first responses are overdue already
    clock.advance(hours=4)  # 14:10Z
    assert timers.tick() > 0  # C's
    assert timers.tick() == 0, "nothing fires twice"
    assert TimerWorker(app, ProcessRuntime(app, clock)).tick() == 0, "not even for a restarted timer worker"

    fired = sorted((instance_id("acme", "case-sla", case), effect["step"], effect["detail"]["due"])
                   for case in (a, b, c, d)
                   for run in instance_history(app, case)
                   for effect in run.data.get("effects") or [] if effect["kind"] == "timeout")  # fmt: skip
    # One business hour for urgent, four for high, from when each case was opened (Berlin = Z + 1):
    # A 10:00 Berlin → 11:00 Berlin = 10:00Z; B 10:10 → 10:10Z; C 10:20 + 4h → 14:20 Berlin = 13:20Z.
    # D was answered at 09:40Z, in time. (From when the worker saw them, 10:10Z, B would be due 11:10Z
    # and C 14:10Z.)
    due = {a: "2026-03-02T10:00:00+00:00", b: "2026-03-02T10:10:00+00:00", c: "2026-03-02T13:20:00+00:00"}
    steps = {a: "respond-urgent", b: "respond-urgent", c: "respond-high"}
    assert fired == sorted((instance_id("acme", "case-sla", case), steps[case], due[case]) for case in due)
    assert fired == simulated_timeouts(inputs, clock.now)

    escalated = Counter(e["subject"] for e in stored_history(app) if e["type"] == "CaseEscalated")
    assert escalated == {a: 1, b: 1, c: 1}
    # Each escalation belongs to its case's story: the correlation id of the CaseOpened that started it.
    opened = {e["subject"]: e["correlationid"] for e in inputs if e["type"] == "CaseOpened"}
    for case in (a, b, c):
        (escalation,) = [h for h in app.history(case, "acme") if h.type == "CaseEscalated"]
        assert escalation.meta["correlation_id"] == opened[case]
