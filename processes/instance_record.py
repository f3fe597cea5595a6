"""Process instances in the event store: their story, and the state the engine needs.

One stored event per engine run: ``ProcessInstanceStarted`` for an
instance's first run, ``ProcessInstanceRan`` for each later one (an event
that woke it, a timer). Each holds the run's effects in order (steps entered,
commands issued or refused, waits, clocks paused or resumed, timers fired,
completion or failure), the status and step it ended at, and the engine's
state (vars, what it waits for, its timer, the event ids it has handled), so
`crmflow explain` and the `instances` report tell the story from it, and a
restarted worker continues exactly where the last one stopped. What a process
emits is an event of its own (``ProcessEventEmitted``): the relay publishes
the emitted CloudEvent as it was emitted.

Stores written before one record per run hold one event per effect
(``ProcessStepEntered``, ``ProcessCommandIssued``, ...) and a
``ProcessStateSaved`` at the end of each run; they are still read: the
classes stay, and the state topics include the old one.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import event
from eventsourcing.utils import get_topic

from crmflow.aggregates.base import TenantAggregate
from crmflow.aggregates.topics import legacy_names
from crmflow.processes.engine import Effect


class ProcessInstanceRecord(TenantAggregate):
    kind = "process"

    @staticmethod
    def create_id(instance_id: str, **_: Any) -> UUID:
        return UUID(instance_id)

    class ProcessInstanceStarted(TenantAggregate.Created):
        """The first run. The engine's state stays off the wire: it is for the workers, not for readers."""

        wire_omits = ("state",)
        tenant_id: str
        instance_id: str
        definition: str
        version: int
        key: str
        detail: dict[str, Any]
        effects: list[dict[str, Any]] | None = None
        state: dict[str, Any] | None = None
        status: str = "running"
        step: str | None = None

    @event(ProcessInstanceStarted)
    def __init__(self, tenant_id: str, instance_id: str, definition: str, version: int, key: str,
                 detail: dict[str, Any], effects: list[dict[str, Any]] | None = None,
                 state: dict[str, Any] | None = None, status: str = "running",
                 step: str | None = None) -> None:  # fmt: skip
        # Stored before one record per run, the event held only what started the instance: its
        # effects and state followed as events of their own.
        self.tenant_id = tenant_id
        self.definition = definition
        # Not ``version``: that is the aggregate's own (its events' count), which the next run builds on.
        self.definition_version = version
        if effects is None:
            # Written before one record per run, when this line set ``self.version``: the aggregate's
            # version jumped to the definition's, and the record's later events were numbered from
            # there. Read back the same way, or they do not follow on.
            self.version = version
        self.key = key
        self.status = status
        self.step: str | None = step
        self.state: dict[str, Any] | None = state

    @classmethod
    def first_run(cls, tenant_id: str, instance_id: str, definition: str, version: int, key: str,
                  detail: dict[str, Any], effects: list[Effect], state: dict[str, Any]) -> ProcessInstanceRecord:  # fmt: skip
        return cls(tenant_id=tenant_id, instance_id=instance_id, definition=definition, version=version, key=key,
                   detail=detail, effects=story(effects), state=state, status=state["status"],
                   step=state["step"])  # fmt: skip

    def ran(self, effects: list[Effect], state: dict[str, Any]) -> None:
        """A later run: what it did and where it left the instance."""
        self._ran(effects=story(effects), state=state, status=state["status"], step=state["step"])

    def emitted(self, step: str | None, detail: dict[str, Any], document: dict[str, Any]) -> None:
        """What a step emitted, as the CloudEvent the relay publishes."""
        self._emitted(step=step, detail={**detail, "document": document})

    class ProcessInstanceRan(TenantAggregate.Event):
        wire_omits = ("state",)
        effects: list[dict[str, Any]]
        state: dict[str, Any]
        status: str
        step: str | None

    @event(ProcessInstanceRan)
    def _ran(self, effects: list[dict[str, Any]], state: dict[str, Any], status: str, step: str | None) -> None:
        self.state = state
        self.status = status
        self.step = step

    # Release 0.2's events, one per effect, and its saved state: read from older stores, no longer written.

    @event("ProcessStepEntered")
    def _entered(self, step: str | None, detail: dict[str, Any]) -> None:
        self.step = step

    @event("ProcessCommandIssued")
    def _command(self, step: str | None, detail: dict[str, Any]) -> None:
        pass

    @event("ProcessCommandRefused")
    def _refused(self, step: str | None, detail: dict[str, Any]) -> None:
        pass

    class ProcessEventEmitted(TenantAggregate.Event):
        step: str | None
        detail: dict[str, Any]

        def to_wire(self) -> dict[str, Any]:
            return dict(self.detail["document"])  # what the process emitted, as it emitted it

    @event(ProcessEventEmitted)
    def _emitted(self, step: str | None, detail: dict[str, Any]) -> None:
        pass

    @event("ProcessInstanceWaiting")
    def _waiting(self, step: str | None, detail: dict[str, Any]) -> None:
        self.status = "waiting"

    @event("ProcessClockPaused")
    def _paused(self, step: str | None, detail: dict[str, Any]) -> None:
        pass

    @event("ProcessClockResumed")
    def _resumed(self, step: str | None, detail: dict[str, Any]) -> None:
        pass

    @event("ProcessTimerFired")
    def _timeout(self, step: str | None, detail: dict[str, Any]) -> None:
        pass

    @event("ProcessInstanceCompleted")
    def _completed(self, step: str | None, detail: dict[str, Any]) -> None:
        self.status = "completed"

    @event("ProcessInstanceFailed")
    def _failed(self, step: str | None, detail: dict[str, Any]) -> None:
        self.status = "failed"

    class ProcessStateSaved(TenantAggregate.Event):
        """The engine's snapshot of the instance: internal, never published."""

        published = False
        state: dict[str, Any]
        status: str
        step: str | None

    @event(ProcessStateSaved)
    def _state(self, state: dict[str, Any], status: str, step: str | None) -> None:
        self.state = state
        self.status = status
        self.step = step


def story(effects: list[Effect]) -> list[dict[str, Any]]:
    """A run's effects as stored: kind, step and detail (the instance, process and version are the record's)."""
    return [{"kind": e.kind, "step": e.step, "detail": e.detail} for e in effects if e.kind != "started"]


# The types of the run records on the wire (the process worker drops them: they are its own).
RUN_TYPES = frozenset({"ProcessInstanceStarted", "ProcessInstanceRan"})
# The events that hold an instance's state: one per run, and before that the saved state after each
# run (under its current topic and release 0.1's, until `crmflow store migrate`).
STATE_TOPICS = [
    get_topic(ProcessInstanceRecord.ProcessInstanceStarted),
    get_topic(ProcessInstanceRecord.ProcessInstanceRan),
    *legacy_names(get_topic(ProcessInstanceRecord.ProcessStateSaved)),
]
# What a process emitted: stored after the state of its run, in the same record.
EMITTED_TOPIC = get_topic(ProcessInstanceRecord.ProcessEventEmitted)
# What the workers read to keep their instances in step with the store.
RECORD_TOPICS = [*STATE_TOPICS, EMITTED_TOPIC]
