"""The process worker and the timer worker: the engine, live.

``crmflow worker process`` consumes ``<prefix>.events`` (domain events and
accepted inbound events, as the relay publishes them) in the consumer group
``<prefix>.process`` and runs them through the engine; offsets are committed
after the batch's instance changes are stored. ``crmflow worker timer`` fires
due timers. Both pick up newly deployed definitions without a restart.

An event may arrive before the instance it concerns has been saved by another
worker (another partition, another copy); such an event is held for a while
(``hold_s``) and tried again after the next refresh, instead of being lost. No
partition's offset is committed past an event held from it, so a crash during
the hold loses nothing either (``crmflow.workers.run.held_events``).

Through an outage of the database or the broker both workers wait and try
again (``crmflow.workers.run.resilience``). A batch that failed half-way is
handled again from its first offset on what the store holds: the events its
saved part handled are in their instances' ``seen`` ids (a trigger starts no
second instance of its key), and its commands carry idempotency keys, so
nothing is done twice. The same makes a replay from the earliest offset safe.
"""

from __future__ import annotations

from typing import Any

import structlog

from crmflow.aggregates.application import CrmApplication
from crmflow.processes.instance_record import RUN_TYPES
from crmflow.processes.runtime import InstanceConflictError, ProcessRuntime
from crmflow.workers.kafka.clients import GroupMember, KafkaClients, decoded_events
from crmflow.workers.metrics import EVENTS_HANDLED, record_instances, timed_command
from crmflow.workers.run.held_events import HeldEvent, HeldEvents
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
        self.held = HeldEvents(hold_s, hold_max)
        # Per partition: the next offset after the records handled, and the offset last committed (they part
        # while an event read before is held).
        self.consumed: dict[Any, int] = {}
        self.committed: dict[Any, int] = {}
        self.handled = 0  # records handled since start (committed too, but for those behind a held event)

    def group_topic(self) -> str:
        return self.kafka.topics.events

    def poll_once(self, timeout_ms: int = 200) -> int:
        batches = self.poll(timeout_ms)
        held = self.held.snapshot()
        try:
            return self._handle(batches)
        except TRANSIENT:
            # The store (or the broker) went away, or stayed locked, mid-batch: forget what was believed but
            # maybe not saved, and read the batch again, with the held events, once it answers.
            self.runtime.forget()
            self.held.restore(held)
            assigned = self.consumer.assignment()
            for partition, batch in batches.items():
                if partition in assigned:
                    self.consumer.seek(partition, batch[0].offset)
            raise

    def on_revoked(self, partitions: list[Any]) -> None:
        # Their new owner reads them from the committed offset, which no held event of theirs was passed.
        self.held.drop_partitions(partitions)
        for tp in partitions:
            self.consumed.pop(tp, None)
            self.committed.pop(tp, None)

    def on_replay(self, tp: Any, offset: int) -> None:
        self.consumed.pop(tp, None)  # read again from ``offset``: committed from there once handled
        self.committed.pop(tp, None)

    def _handle(self, batches: dict[Any, list[Any]]) -> int:
        records = [r for batch in batches.values() for r in batch]
        # Where each event was read (the first copy of an id read twice), should it have to be held.
        # The engine's own run records come back from the relay for the read models; the worker knows
        # what it saved, so they are dropped before any engine work.
        read_at: dict[str, tuple[Any, int]] = {}
        events = []
        for tp, batch in batches.items():
            for record in batch:
                for event in decoded_events([record]):
                    if "type" in event and event["type"] not in RUN_TYPES:
                        events.append(event)
                        read_at.setdefault(event["id"], (tp, record.offset))
        # Held events go first (they arrived earlier), but only when instances
        # changed since: otherwise nothing new could match them. Each keeps its first deadline.
        fresh_states = self.runtime.refresh()
        retry = self.held.take_for_retry(bool(fresh_states))
        first_held: dict[str, HeldEvent] = {held.event["id"]: held for held in retry}
        try:
            _, idle = self.runtime.handle([held.event for held in retry] + events)
        except InstanceConflictError:
            log.info("process_batch_conflict", events=len(events))
            for partition, batch in batches.items():
                self.consumer.seek(partition, batch[0].offset)
            self.held.put_back(retry)
            return 0
        waited = self.runtime.engine.waited_types()
        for event in idle:
            # Nothing happened, but some definition waits for this type: the
            # instance may not be saved yet. Hold it for a later refresh.
            if event["type"] not in waited:
                continue
            if event["id"] in first_held:
                held = first_held[event["id"]]
                self.held.hold(event, held.partition, held.offset, held.deadline)
            else:
                self.held.hold(event, *read_at[event["id"]])
        for tp, batch in batches.items():
            self.consumed[tp] = batch[-1].offset + 1
        self._commit(len(records))
        if records:
            self.handled += len(records)
            EVENTS_HANDLED.labels(worker="process").inc(len(records))
        return len(records)

    def _commit(self, records: int) -> None:
        """Commit each partition up to what was handled, but never past an event still held from it.

        Called after every batch, records or not: a held event handled or given up lets its partition's
        offset move on. Only what changed is sent; what the broker did not take is sent again next time.
        """
        floor = self.held.commit_floor()
        assigned = self.consumer.assignment()
        offsets = {}
        for tp, consumed in self.consumed.items():
            target = min(consumed, floor.get(tp, consumed))
            if tp in assigned and self.committed.get(tp) != target:
                offsets[tp] = target
        if offsets and self.commit(records, offsets):
            self.committed.update(offsets)

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
