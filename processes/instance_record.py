"""Process instances in the event store: their history, and the state the engine needs.

Each engine effect becomes an event of its own kind (step entered, command
issued or refused, event emitted, waiting, clock paused or resumed, timer
fired, completed, failed), so `crmflow explain` and the `instances` report can
tell an instance's story. The last event of every run, ProcessStateSaved,
holds the engine's state (vars, what it waits for, its timer, the event ids it
has handled), so a restarted worker continues exactly where the last one
stopped.
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

    @event("ProcessInstanceStarted")
    def __init__(self, tenant_id: str, instance_id: str, definition: str, version: int, key: str, detail: dict[str, Any]) -> None:
        self.tenant_id = tenant_id
        self.definition = definition
        self.version = version
        self.key = key
        self.status = "running"
        self.step: str | None = None
        self.state: dict[str, Any] | None = None

    def record(self, effect: Effect, document: dict[str, Any] | None = None) -> None:
        detail = dict(effect.detail)
        if document is not None:
            detail["document"] = document  # the emitted CloudEvent, for the relay to publish
        RECORDERS[effect.kind](self, step=effect.step, detail=detail)

    def save_state(self, state: dict[str, Any]) -> None:
        self._state(state=state, status=state["status"], step=state["step"])

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


RECORDERS = {
    "entered": ProcessInstanceRecord._entered,
    "command": ProcessInstanceRecord._command,
    "refused": ProcessInstanceRecord._refused,
    "emitted": ProcessInstanceRecord._emitted,
    "waiting": ProcessInstanceRecord._waiting,
    "paused": ProcessInstanceRecord._paused,
    "resumed": ProcessInstanceRecord._resumed,
    "timeout": ProcessInstanceRecord._timeout,
    "completed": ProcessInstanceRecord._completed,
    "failed": ProcessInstanceRecord._failed,
}
# The saved states, under the current topic and release 0.1's (until `crmflow store migrate`).
STATE_TOPICS = legacy_names(get_topic(ProcessInstanceRecord.ProcessStateSaved))
