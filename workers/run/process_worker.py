"""The process worker and the timer worker: the engine, live.

``crmflow worker process`` consumes ``<prefix>.events`` (domain events and
accepted inbound events, as the relay publishes them) in the consumer group
``<prefix>.process`` and runs them through the engine; offsets are committed
after the batch's instance changes are stored. ``crmflow worker timer`` fires
due timers. Both pick up newly deployed definitions without a restart.

An event may arrive before the instance it concerns has been saved by another
worker (another partition, another copy); such an event is held for a while
(``hold_s``) and tried again after the next refresh, instead of being lost.

Through an outage of the database or the broker both workers wait and try
again (``crmflow.workers.run.resilience``). A batch that failed half-way is
handled again from its first offset on what the store holds: the events its
saved part handled are in their instances' ``seen`` ids (a trigger starts no
second instance of its key), and its commands carry idempotency keys, so
nothing is done twice. The same makes a replay from the earliest offset safe.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

import structlog

from crmflow.aggregates.application import CrmApplication
from crmflow.processes.instance_record import RUN_TYPES
from crmflow.processes.runtime import InstanceConflictError, ProcessRuntime
from crmflow.workers.kafka.clients import GroupMember, KafkaClients, decoded_events
from crmflow.workers.metrics import EVENTS_HANDLED, record_instances, timed_command
from crmflow.workers.run.resilience import TRANSIENT, run_steps
from crmflow.workers.shutdown import StopSignal

log = structlog.get_logger("crmflow.process_worker")


class ProcessWorker(GroupMember):
    group_kind = "process"
    auto_offset_reset = "none"  # out-of-range positions reach GroupMember.poll's replay policy

    def __init__(self, app: CrmApplication, kafka: KafkaClients, runtime: ProcessRuntime | None = None,
                 *, hold_s: float = 30.0, hold_max: int = 10_000) -> None:  # fmt: skip
        self.runtime = runtime or ProcessRuntime(app, timed=timed_command)
        self.kafka = kafka
        self.hold_s = hold_s
        self.held: deque[tuple[float, dict[str, Any]]] = deque(maxlen=hold_max)
        self.handled = 0  # records committed since start

    def group_topic(self) -> str:
        return self.kafka.topics.events

    def poll_once(self, timeout_ms: int = 200) -> int:
        batches = self.poll(timeout_ms)
        held = self.held.copy()
        try:
            return self._handle(batches)
        except TRANSIENT:
            # The store (or the broker) went away mid-batch: forget what was believed but maybe not
            # saved, and read the batch again, with the held events, once it is back.
            self.runtime.forget()
            self.held = held
            assigned = self.consumer.assignment()
            for partition, batch in batches.items():
                if partition in assigned:
                    self.consumer.seek(partition, batch[0].offset)
            raise

    def _handle(self, batches: dict[Any, list[Any]]) -> int:
        records = [r for batch in batches.values() for r in batch]
        # The engine's own run records come back from the relay for the read models; the worker knows
        # what it saved, so they are dropped before any engine work.
        events = [event for event in decoded_events(records) if "type" in event and event["type"] not in RUN_TYPES]
        # Held events go first (they arrived earlier), but only when instances
        # changed since: otherwise nothing new could match them. Each keeps its first deadline.
        now = time.monotonic()
        fresh_states = self.runtime.refresh()
        live = [(deadline, e) for deadline, e in self.held if deadline > now]
        retry = [e for _, e in live] if fresh_states else []
        deadlines = {e["id"]: deadline for deadline, e in live}
        self.held = deque(live if not fresh_states else [], maxlen=self.held.maxlen)
        try:
            _, idle = self.runtime.handle(retry + events)
        except InstanceConflictError:
            log.info("process_batch_conflict", events=len(events))
            for partition, batch in batches.items():
                self.consumer.seek(partition, batch[0].offset)
            self.held.extend((deadlines[e["id"]], e) for e in retry)
            return 0
        waited = self.runtime.engine.waited_types()
        for event in idle:
            # Nothing happened, but some definition waits for this type: the
            # instance may not be saved yet. Hold it for a later refresh.
            if event["type"] in waited:
                self.held.append((deadlines.get(event["id"], now + self.hold_s), event))
        if records:
            self.commit(len(records))
            self.handled += len(records)
            EVENTS_HANDLED.labels(worker="process").inc(len(records))
        return len(records)

    def run(self, stop: StopSignal) -> None:
        log.info("process_worker_started", topic=self.kafka.topics.events)
        try:
            run_steps(self.poll_once, stop, worker="process", doing="handling events")
        finally:
            self.close()
        log.info("process_worker_stopped")


class TimerWorker:
    def __init__(self, app: CrmApplication, runtime: ProcessRuntime | None = None, *, interval_s: float = 0.5) -> None:
        self.runtime = runtime or ProcessRuntime(app, timed=timed_command)
        self.interval_s = interval_s
        self.ticks = 0  # completed ticks (the demo waits for one after moving its clock)

    def tick(self) -> int:
        """Fire what is due now; return how many effects that had."""
        try:
            fired = len(self.runtime.fire_due())
            EVENTS_HANDLED.labels(worker="timer").inc(fired)
        except InstanceConflictError:
            log.info("timer_conflict")  # another worker moved the instance: next tick sees it
            fired = 0
        except TRANSIENT:
            self.runtime.forget()  # the store went away mid-tick: what is due is read again from it
            raise
        record_instances(self.runtime.instances.instances.values(), self.runtime.clock())
        self.ticks += 1
        return fired

    def run(self, stop: StopSignal) -> None:
        log.info("timer_worker_started")

        def tick_and_wait() -> None:
            self.tick()
            stop.wait(self.interval_s)

        run_steps(tick_and_wait, stop, worker="timer", doing="firing timers")
        log.info("timer_worker_stopped")
