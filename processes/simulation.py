"""Running definitions offline on a simulated clock: for `process simulate`, `process test` and `whatif`.

Commands are checked against the catalogue (name and payload) and recorded,
not executed; emitted events are recorded and fed back, so one process can
react to another's. Timers fire in order as the clock moves. Nothing is
written anywhere. The engine times every wait from the event's own ``time``
(docs/process-language.md, Time), so a simulation and a live worker that
handles the same events late compute the same due times.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog

from crmflow.aggregates.catalog import command_spec
from crmflow.aggregates.unit_of_work import CommandRequest, validate_payload
from crmflow.processes.calendar import BusinessCalendar
from crmflow.processes.compiled import CompiledProcess
from crmflow.processes.engine import Effect, Engine, MemoryInstances
from crmflow.processes.expressions import ExpressionError
from crmflow.processes.loader import Document

log = structlog.get_logger("crmflow.processes")


class RecordingCommands:
    """Checks each command as the service would (known, payload fits), then records it."""

    def __init__(self) -> None:
        self.issued: list[CommandRequest] = []
        self.keys: set[str] = set()

    def execute(self, request: CommandRequest) -> None:
        validate_payload(command_spec(request.name).payload, request)
        if request.idempotency_key in self.keys:
            return  # the service would replay the first result
        self.keys.add(request.idempotency_key or "")
        self.issued.append(request)


@dataclass
class RecordingEmits:
    emitted: list[dict[str, Any]] = field(default_factory=list)
    pending: deque[dict[str, Any]] = field(default_factory=deque)

    def emit(self, document: dict[str, Any]) -> None:
        self.emitted.append(document)
        self.pending.append(document)


class Simulation:
    def __init__(self, documents: list[Document], start: datetime) -> None:
        calendars = {d.model.name: BusinessCalendar(d.model) for d in documents if d.kind == "Calendar"}  # type: ignore[attr-defined, arg-type]
        processes = []
        for document in (d for d in documents if d.kind == "Process"):
            try:
                processes.append(CompiledProcess(document.model, calendars))  # type: ignore[arg-type]
            except ExpressionError as error:
                # Only a definition deployed before today's limits (whatif replays those): left out, as
                # the workers leave it out. What designers give is validated before it gets here.
                log.warning("definition_refused", definition=document.file, reason=str(error))
        self.now = start
        self.instances = MemoryInstances()
        self.commands = RecordingCommands()
        self.emits = RecordingEmits()
        self.engine = Engine(processes, self.instances, self.commands, self.emits)
        self.effects: list[tuple[datetime, Effect]] = []

    def publish(self, event: dict[str, Any]) -> list[Effect]:
        """An event arrives now; emitted events are delivered in turn."""
        produced = self._record(self.engine.handle(event, self.now))
        while self.emits.pending:
            produced += self._record(self.engine.handle(self.emits.pending.popleft(), self.now))
        return produced

    def advance_to(self, moment: datetime) -> list[Effect]:
        """Move the clock, firing each timer at its own due time, in order."""
        produced: list[Effect] = []
        while (due := self.instances.next_due()) is not None and due <= moment:
            self.now = max(self.now, due)
            produced += self._record(self.engine.fire_due(self.now))
            while self.emits.pending:
                produced += self._record(self.engine.handle(self.emits.pending.popleft(), self.now))
        self.now = max(self.now, moment)
        return produced

    def advance(self, delta: timedelta) -> list[Effect]:
        return self.advance_to(self.now + delta)

    def _record(self, effects: list[Effect]) -> list[Effect]:
        self.effects += [(self.now, e) for e in effects]
        return effects
