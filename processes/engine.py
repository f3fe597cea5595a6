"""The process engine: events in; instances started, advanced, waiting, completed or failed.

Pure and deterministic: the time comes in with each call (only the run-time
guards read a real, monotonic clock, which tests replace), commands go out
through a ``CommandPort`` (the worker's runs them through the application
service; the designer tools only record them), emitted events through an
``EmitPort``, and instances live in an ``InstanceStore``. The same engine runs
the live worker, ``process simulate``, ``process test`` and ``process whatif``.

Two times per run (``When``): ``at``, when what the engine acts on happened
(the event's CloudEvents ``time``, a timer's due time), from which due times,
paused clocks and CEL ``now`` are worked out; and ``handled``, the caller's
clock, for what is a real-time matter (a retry's backoff after a refusal, the
stamp on an emitted event). In a simulation the two are the same; a live
worker catching up on a backlog computes the timers simulate computes.

Guards on every run (docs/process-language.md, Limits): an instance runs at
most MAX_STEPS_PER_EVENT steps and MAX_EVENT_HANDLING_MS for one event or
timer, and all instances of one event MAX_EVENT_TOTAL_MS, checked between
steps (one CEL evaluation cannot be interrupted; its static cost bound,
checked at validation, is what limits it); an emit that would follow
MAX_PROCESS_HOPS process hops in a row (emits, or commands whose events the
next process acts on) is not made; variables and emitted
events stay within the JSON limits. Over any of these the instance
fails with the reason, and the engine goes on with the next one.
"""

from __future__ import annotations

import copy
import json
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, NamedTuple, Protocol
from uuid import NAMESPACE_URL, uuid5

from crmflow.aggregates.application import CommandRequest
from crmflow.aggregates.envelope import jsonable
from crmflow.aggregates.errors import DomainError
from crmflow.aggregates.limits import (
    LIMITS,
    MAX_EVENT_BYTES,
    MAX_EVENT_HANDLING_MS,
    MAX_EVENT_TOTAL_MS,
    MAX_PROCESS_HOPS,
    MAX_STEPS_PER_EVENT,
    LimitExceeded,
    check_json_value,
)
from crmflow.processes.business_time import NAME as BUSINESS_ADD
from crmflow.processes.business_time import business_add
from crmflow.processes.compiled import CompiledProcess, MissingCalendarError
from crmflow.processes.event_reads import NOTHING, EventReads
from crmflow.processes.event_time import occurred_at
from crmflow.processes.expressions import ExpressionError, Scope
from crmflow.processes.instance import Instance, Waiting, instance_id, uuid5_text
from crmflow.processes.schema import ChoiceStep, DoStep, EmitStep, SetStep, WaitForStep, WaitStep

EMIT_NAMESPACE = uuid5(NAMESPACE_URL, "https://crmflow.dev/process-emits")
# A CloudEvents extension attribute on emitted events: how many process emits led to this one.
HOPS = "processhops"


class RunLimitError(Exception):
    """An instance went over a run-time guard; it fails with this reason."""


def hops(event: dict[str, Any]) -> int:
    value = event.get(HOPS)
    try:
        return max(0, int(value)) if value is not None else 0
    except (TypeError, ValueError):
        return 0


def over(name: str, value: float, detail: str) -> str:
    """A run-time guard's refusal, with the value this engine runs with (tests give smaller ones)."""
    return f"{detail}; the limit is {replace(LIMITS[name], value=int(value)).describe()}"


def bounded(value: Any, where: str) -> Any:
    """A value an instance keeps or sends, within the JSON limits (a loop could double a string each turn)."""
    try:
        check_json_value(value, where=where)
    except ValueError as error:  # LimitExceeded is one
        raise RunLimitError(str(error)) from None
    return value


class Effect(NamedTuple):
    """One thing the engine did, in order: for logs, `simulate`, tests and the instance history.

    A named tuple, not a frozen dataclass: an event makes several per instance it runs, and a tuple is
    built in a third of the time. ``detail`` is never changed once made (the empty default is shared).
    """

    kind: str  # started | entered | command | refused | emitted | waiting | timeout | completed | failed
    instance: str
    process: str
    version: int
    step: str | None = None
    detail: dict[str, Any] = {}  # read only


@dataclass(frozen=True)
class When:
    """One run's times: ``at`` its story time (due times, CEL ``now``), ``handled`` the caller's clock."""

    at: datetime
    handled: datetime


class CommandPort(Protocol):
    def execute(self, request: CommandRequest) -> None:
        """Run the command; raise DomainError if the domain refuses it."""


class EmitPort(Protocol):
    def emit(self, document: dict[str, Any]) -> None: ...


class InstanceStore(Protocol):
    def get(self, instance_id: str) -> Instance | None: ...
    def save(self, instance: Instance) -> None: ...
    def waiting_for(self, tenant: str, event_type: str, subject: str | None) -> list[Instance]:
        """Instances waiting for this type in this tenant: those correlated to this subject, and others."""

    def due(self, now: datetime) -> list[Instance]: ...


class MemoryInstances:
    """Instances in memory, indexed by what they wait for (simulate, test, whatif, benchmarks).

    The index makes an event cost in proportion to the instances waiting for
    its type in its tenant, not to every instance.
    """

    def __init__(self) -> None:
        self.instances: dict[str, Instance] = {}
        self._waiting: dict[tuple[str, str, str | None], dict[str, Instance]] = defaultdict(dict)
        self._indexed: dict[str, list[tuple[str, str, str | None]]] = {}

    def get(self, instance_id: str) -> Instance | None:
        return self.instances.get(instance_id)

    def clear(self) -> None:
        self.instances.clear()
        self._waiting.clear()
        self._indexed.clear()

    def save(self, instance: Instance) -> None:
        self.instances[instance.id] = instance
        for slot in self._indexed.pop(instance.id, []):
            self._waiting[slot].pop(instance.id, None)
        if instance.waiting is not None and instance.waiting.on:
            slots = [
                (instance.tenant, event_type, instance.waiting.subject) for event_type in instance.waiting.on
            ]
            for slot in slots:
                self._waiting[slot][instance.id] = instance
            self._indexed[instance.id] = slots

    def waiting_for(self, tenant: str, event_type: str, subject: str | None) -> list[Instance]:
        # A copy: handling one instance may change the index.
        found = (
            list(self._waiting.get((tenant, event_type, subject), {}).values()) if subject is not None else []
        )
        found += self._waiting.get((tenant, event_type, None), {}).values()
        return [i for i in found if i.waiting is not None]

    def due(self, now: datetime) -> list[Instance]:
        due = [i for i in self.instances.values() if i.waiting and i.waiting.due and i.waiting.due <= now]
        return sorted(due, key=lambda i: (i.waiting.due, i.id))  # type: ignore[union-attr]

    def next_due(self) -> datetime | None:
        dues = [i.waiting.due for i in self.instances.values() if i.waiting and i.waiting.due]
        return min(dues) if dues else None


class Rotations:
    """Round-robin positions per (tenant, process, step), in memory.

    Each instance keeps the slot it was given, so a replayed step (a
    redelivered event, a restarted worker) picks the same owner again.
    """

    def __init__(self) -> None:
        self.positions: dict[tuple[str, str, str], int] = defaultdict(int)
        self.given: dict[tuple[str, str, str, str], int] = {}

    def slot(self, tenant: str, process: str, step: str, instance: str, size: int) -> int:
        key = (tenant, process, step, instance)
        if key not in self.given:
            rotation = (tenant, process, step)
            self.given[key] = self.positions[rotation]
            self.positions[rotation] += 1
        return self.given[key] % size


class TriggerIndex:
    """The definitions one (tenant, event type) triggers, found by what their conditions require.

    A definition whose trigger condition starts with ``event.data.X == "c"`` or
    ``event.data.X in [...]`` (CompiledProcess.when_guard) cannot start on an
    event whose X holds another string: it is not evaluated. Any other X (missing,
    a number, a list) and it is, as are definitions without such a guard, so
    errors are reported as before. Candidates keep their deployed order.
    """

    def __init__(self, processes: list[CompiledProcess]) -> None:
        self.processes = processes
        self.always: list[int] = []
        # path → (value → positions, every position guarded on that path)
        self.guarded: dict[tuple[str, ...], tuple[dict[str, list[int]], list[int]]] = {}
        for position, process in enumerate(processes):
            guard = process.when_guard
            if guard is None:
                self.always.append(position)
                continue
            by_value, every = self.guarded.setdefault(guard[0], ({}, []))
            every.append(position)
            for value in guard[1]:
                by_value.setdefault(value, []).append(position)

    def candidates(self, event: dict[str, Any]) -> list[CompiledProcess]:
        if not self.guarded:
            return self.processes
        data = event.get("data")
        positions = list(self.always)
        for path, (by_value, every) in self.guarded.items():
            value = _at(data, path)
            positions += by_value.get(value, ()) if type(value) is str else every
        return [self.processes[i] for i in sorted(positions)]


def _at(data: Any, path: tuple[str, ...]) -> Any:
    """The value at ``path`` in the event's data, or None when something on the way is not a map."""
    for name in path:
        if not isinstance(data, dict):
            return None
        data = data.get(name)
    return data


class Engine:
    def __init__(self, processes: Iterable[CompiledProcess], instances: InstanceStore,
                 commands: CommandPort, emits: EmitPort, rotations: Rotations | None = None, *,
                 max_steps: int = MAX_STEPS_PER_EVENT, budget_ms: float = MAX_EVENT_HANDLING_MS,
                 total_ms: float = MAX_EVENT_TOTAL_MS, monotonic: Any = time.monotonic) -> None:  # fmt: skip
        self.max_steps = max_steps
        self.budget_ms = budget_ms
        self.total_ms = total_ms
        self._event_started = 0.0  # when handling the current event (or round of timers) began
        self.monotonic = monotonic  # the run-time guard measures real time, whatever the engine's clock says
        self.instances = instances
        self.commands = commands
        self.emits = emits
        self.rotations = rotations or Rotations()
        self.versions: dict[tuple[str, int], CompiledProcess] = {}
        # (tenant or "*", event type) → the latest version of each process it triggers.
        self.triggers: dict[tuple[str, str], list[CompiledProcess]] = defaultdict(list)
        self._indexes: dict[tuple[str, str], TriggerIndex] = {}  # built from triggers when first needed
        self._waited: set[str] = set()
        self._triggered: set[str] = set()
        # Event type → what of such an event the versions it starts or wakes read (processes/event_reads.py).
        self.event_fields: dict[str, EventReads] = {}
        for process in processes:
            self.deploy(process)

    def with_ports(self, *, commands: CommandPort, rotations: Rotations) -> Engine:
        """This engine (the same deployed processes, the same instances) with other ports: one batch's."""
        bound = copy.copy(self)
        bound.commands, bound.rotations = commands, rotations
        return bound

    def deploy(self, process: CompiledProcess) -> None:
        """Add a version: new instances start on the latest; running ones keep theirs."""
        self.versions[(process.name, process.version)] = process
        acted_on = set(process.definition.trigger.on)
        for step in process.definition.steps:
            if isinstance(step, WaitForStep):
                acted_on.update(step.wait_for.on, step.pause_on, step.resume_on)
                self._waited.update(step.wait_for.on, step.pause_on, step.resume_on)
        for event_type in acted_on:
            self.event_fields[event_type] = self.event_fields.get(event_type, NOTHING) | process.event_fields
        self._triggered.update(process.definition.trigger.on)
        for event_type in process.definition.trigger.on:
            self._indexes.pop((process.definition.tenant, event_type), None)
            slot = self.triggers[(process.definition.tenant, event_type)]
            current = next((p for p in slot if p.name == process.name), None)
            if current is None:
                slot.append(process)
            elif process.version > current.version:
                slot[slot.index(current)] = process

    def _candidates(self, slot: tuple[str, str], event: dict[str, Any]) -> list[CompiledProcess]:
        """The processes of this slot whose trigger condition could be true for this event."""
        if slot not in self.triggers:
            return []
        index = self._indexes.get(slot)
        if index is None:
            index = self._indexes[slot] = TriggerIndex(self.triggers[slot])
        return index.candidates(event)

    def waited_types(self) -> set[str]:
        """Event types some step of some deployed definition waits for."""
        return self._waited

    def triggered_types(self) -> set[str]:
        """Event types that start some deployed definition."""
        return self._triggered

    # Inputs.

    def handle(self, event: dict[str, Any], now: datetime) -> list[Effect]:
        """Advance waiting instances that this event wakes, and start the processes it triggers.

        ``now`` is when the event is handled; timers run from when it happened (its ``time``, else ``now``).
        """
        tenant, event_type, event_id = event.get("tenantid") or "", event["type"], str(event["id"])
        subject = event.get("subject")
        waiting = self.instances.waiting_for(
            tenant, event_type, str(subject) if subject is not None else None
        )
        candidates = self._candidates((tenant, event_type), event) + self._candidates(("*", event_type), event)
        if not waiting and not candidates:
            # Most events concern no definition (the engine's own instance events, for
            # one): skip them before paying for their CEL context.
            return []
        if hops(event) > MAX_PROCESS_HOPS:
            limit = LimitExceeded(
                "process_hops", f"event {event_id} was caused by {hops(event)} process hops in a row"
            )
            return [Effect("skipped", "", "", 0, None, {"error": f"not acted on: {limit}"})]
        when = When(occurred_at(event, now), now)
        scope = Scope(event, when.at, tenant, reads=self.event_fields.get(event_type, NOTHING))
        effects: list[Effect] = []
        self._event_started = self.monotonic()
        for instance in waiting:
            if event_id in instance.seen:
                continue
            if not self._timed_out_first(instance, event_type, when, effects):
                continue
            process = self.versions[(instance.definition, instance.version)]
            step = process.step(instance.waiting.step)  # type: ignore[union-attr]
            if isinstance(step, WaitForStep) and event_type in (*step.pause_on, *step.resume_on):
                if self._same_subject(instance, subject):
                    instance.remember(event_id)
                    pause = event_type in step.pause_on
                    self._pause_or_resume(process, instance, step, pause, when.at, effects)
                continue
            if self._wakes(process, instance, event, scope):
                instance.remember(event_id)
                instance.waiting = None
                self._run(process, instance, process.following(step.id), scope, event_id, when, effects)
        if candidates:
            scope.with_vars({})  # trigger conditions cannot use vars (validation), so one reset serves all
        for process in candidates:
            self._maybe_start(process, event, scope, when, effects)
        return effects

    def fire_due(self, now: datetime) -> list[Effect]:
        """Fire every timer due by ``now``, earliest first: timeouts, waits and retries.

        Each runs at its own due time (what follows it is timed from there, as in a simulation),
        however late the round that fires it.
        """
        effects: list[Effect] = []
        self._event_started = self.monotonic()
        for instance in self.instances.due(now):
            if self._event_spent_ms() > self.total_ms:
                break  # the rest stay due: the next round fires them
            self._fire(instance, now, effects)
        return effects

    def _fire(self, instance: Instance, now: datetime, effects: list[Effect]) -> None:
        waiting = instance.waiting
        assert waiting is not None and waiting.timer_id is not None and waiting.due is not None
        process = self.versions[(instance.definition, instance.version)]
        # The trigger's correlation id, not the timer's own: what the timer causes belongs to the same story.
        timer_event = {"specversion": "1.0", "id": waiting.timer_id, "type": "TimerFired",
                       "source": "/crmflow/timers", "subject": instance.key, "tenantid": instance.tenant,
                       "time": waiting.due.isoformat(), "correlationid": instance.correlation(),
                       "data": {"step": waiting.step, "reason": waiting.reason}}  # fmt: skip
        when = When(waiting.due, now)
        scope = Scope(timer_event, when.at, instance.tenant, instance.vars, reads=process.event_fields)
        instance.waiting = None
        step = process.step(waiting.step)
        if waiting.reason == "retry":
            target = step.id
        elif waiting.reason == "timer":
            target = process.following(step.id)
        else:  # a wait_for timed out
            effects.append(self._effect("timeout", instance, step.id, due=waiting.due.isoformat()))
            target = getattr(step, "on_timeout", None)
            if target is None:
                self._fail(instance, step.id, f"timed out waiting for {', '.join(waiting.on)}", effects)
                return
        self._run(process, instance, target, scope, waiting.timer_id, when, effects)

    def _timed_out_first(self, instance: Instance, event_type: str, when: When,
                         effects: list[Effect]) -> bool:  # fmt: skip
        """Fire the instance's timers that fell due before this event happened; does it still wait for it?

        A worker catching up may handle an event after a timeout that, by the
        event's time, came first (a reply stamped 10:05 to a wait due at 10:00):
        a simulation fires that timer before it delivers the event, and so does
        this. Never before the timer is due by the handling clock too, whatever
        an event stamped in the future says. Bounded like a run, in case a
        chain of past waits has no end in sight.
        """
        until = min(when.at, when.handled)
        for _ in range(self.max_steps):
            waiting = instance.waiting
            if waiting is None or waiting.due is None or waiting.due > until:
                break
            self._fire(instance, when.handled, effects)
        return instance.waiting is not None and event_type in instance.waiting.on

    def _event_spent_ms(self) -> float:
        return (self.monotonic() - self._event_started) * 1000

    # Starting.

    def _maybe_start(self, process: CompiledProcess, event: dict[str, Any], scope: Scope, when: When,
                     effects: list[Effect]) -> None:  # fmt: skip
        tenant = event.get("tenantid") or ""
        if not process.applies_to(tenant):
            return
        try:
            if not process.triggered_by(scope):
                return
            key = str(process.key.evaluate(scope))
        except ExpressionError as error:
            effects.append(Effect("skipped", "", process.name, process.version, None, {"error": str(error)}))
            return
        iid = instance_id(tenant, process.name, key)
        existing = self.instances.get(iid)
        if existing is not None and (
            existing.status in ("running", "waiting") or event["id"] in existing.seen
        ):
            return  # one live instance per key; a redelivered trigger starts nothing
        instance = Instance(iid, process.name, process.version, tenant, key, str(event["id"]),
                            correlation_id=event.get("correlationid") or str(event["id"]))  # fmt: skip
        instance.remember(str(event["id"]))
        effects.append(
            self._effect("started", instance, None, key=key, trigger=event["type"], event=str(event["id"]))
        )
        try:
            instance.vars = {
                name: bounded(jsonable(e.evaluate(scope)), f"vars.{name}") for name, e in process.vars.items()
            }
        except (ExpressionError, RunLimitError) as error:
            self._fail(instance, None, str(error), effects)
            return
        self._run(process, instance, process.first_step(), scope, str(event["id"]), when, effects)

    # Running: step after step until the instance waits, ends or fails.

    def _run(self, process: CompiledProcess, instance: Instance, step_id: str, scope: Scope, cause: str,
             when: When, effects: list[Effect]) -> None:  # fmt: skip
        visits: dict[str, int] = defaultdict(int)
        instance.status = "running"
        started = self.monotonic()
        for _ in range(self.max_steps):
            at = self.monotonic()
            spent_ms, event_ms = (at - started) * 1000, (at - self._event_started) * 1000
            if spent_ms > self.budget_ms:
                detail = f"spent {spent_ms:,.0f} ms on one event, up to step {step_id!r}"
                self._fail(instance, step_id, over("event_handling_ms", self.budget_ms, detail), effects)
                return
            if event_ms > self.total_ms:
                detail = f"this event's instances had spent {event_ms:,.0f} ms on it, up to step {step_id!r}"
                self._fail(instance, step_id, over("event_total_ms", self.total_ms, detail), effects)
                return
            if process.is_end(step_id):
                instance.status, instance.step = "completed", None
                effects.append(self._effect("completed", instance, None))
                self.instances.save(instance)
                return
            step = process.step(step_id)
            instance.step = step_id
            visits[step_id] += 1
            effects.append(self._effect("entered", instance, step_id))
            if scope.vars is not instance.vars:
                # Converting vars costs more than most steps: only when another instance's were bound since.
                # The steps that change vars (set) rebind them themselves.
                scope.with_vars(instance.vars)
            try:
                next_step = self._execute(
                    process, instance, step, scope, f"{cause}/{visits[step_id]}", when, effects
                )
            except (ExpressionError, MissingCalendarError, RunLimitError) as error:
                self._fail(instance, step_id, str(error), effects)
                return
            if next_step is None:  # waiting, or failed
                self.instances.save(instance)
                return
            step_id = next_step
        detail = f"ran {self.max_steps:,} steps for one event without waiting (a loop?)"
        self._fail(instance, step_id, over("steps_per_event", self.max_steps, detail), effects)

    def _execute(self, process: CompiledProcess, instance: Instance, step: Any, scope: Scope, cause: str,
                 when: When, effects: list[Effect]) -> str | None:  # fmt: skip
        """Run one step; return the next step id, or None when the instance waits or failed."""
        if process.uses_round_robin(step.id):

            def round_robin(choices: list[Any]) -> Any:
                if not choices:
                    raise ExpressionError("round_robin() needs a non-empty list")
                return choices[
                    self.rotations.slot(instance.tenant, process.name, step.id, instance.id, len(choices))
                ]

            scope.context.add_function("round_robin", round_robin)
        if process.uses_business_add(step.id):
            scope.context.add_function(BUSINESS_ADD, business_add(process.calendars))
        if isinstance(step, SetStep):
            for name, source in step.set.items():
                instance.vars[name] = bounded(jsonable(process.evaluate(source, scope)), f"vars.{name}")
                scope.with_vars(instance.vars)
            return process.following(step.id)
        if isinstance(step, ChoiceStep):
            for branch in step.choice:
                if process.evaluate(branch.when, scope) is True:
                    return branch.next
            return step.otherwise or process.following(step.id)
        if isinstance(step, DoStep):
            return self._do(process, instance, step, scope, cause, when, effects)
        if isinstance(step, EmitStep):
            data = {name: jsonable(process.evaluate(source, scope)) for name, source in step.data.items()}
            document = self._emitted(process, instance, step.emit, data, cause, when.handled, scope)
            self._check_emit(step.emit, document)
            self.emits.emit(document)
            effects.append(
                self._effect("emitted", instance, step.id, type=step.emit, data=data, id=document["id"])
            )
            return process.following(step.id)
        if isinstance(step, WaitForStep):
            due = process.due(when.at, step.timeout) if step.timeout is not None else None
            timer = _timer(instance, step.id, cause) if due else None
            subject = process.correlation(step, instance.vars, instance.key)
            on = list(dict.fromkeys([*step.wait_for.on, *step.pause_on, *step.resume_on]))
            self._wait(instance, Waiting(step.id, on, timer, due, "event", subject), effects)
            return None
        if isinstance(step, WaitStep):
            self._wait(
                instance,
                Waiting(step.id, [], _timer(instance, step.id, cause), process.due(when.at, step.wait),
                        "timer"),
                effects,
            )
            return None
        raise AssertionError(f"unknown step kind {type(step).__name__}")

    def _do(self, process: CompiledProcess, instance: Instance, step: DoStep, scope: Scope, cause: str,
            when: When, effects: list[Effect]) -> str | None:  # fmt: skip
        args = {name: jsonable(process.evaluate(source, scope)) for name, source in step.args.items()}
        event = scope.event
        hop = hops(event) + 1
        if hop > MAX_PROCESS_HOPS:
            limit = LimitExceeded("process_hops", f"{step.do} would make the {hop}th process hop in a row")
            raise RunLimitError(f"{limit}: does a definition trigger on what its own commands record?")
        request = CommandRequest(
            step.do, instance.tenant, args,
            caller=f"process:{process.name}@{process.version}",
            correlation_id=event.get("correlationid") or str(event.get("id")),
            causation_id=str(event.get("id")),
            # Derived from instance, step and cause: a redelivered event replays, never repeats.
            idempotency_key=f"process/{instance.id}/{step.id}/{cause}",
            # The hop travels with the command's events (their processhops attribute on the wire), so a
            # definition that triggers on what its own commands record stops after MAX_PROCESS_HOPS.
            cause={"process": process.name, "version": process.version, "step": step.id,
                   "instance": instance.id, "key": instance.key, "trigger": event.get("type"), "hops": hop},
        )  # fmt: skip
        try:
            self.commands.execute(request)
        except DomainError as error:
            instance.attempt += 1
            effects.append(self._effect("refused", instance, step.id, command=step.do, args=args,
                                        error=error.message, attempt=instance.attempt))  # fmt: skip
            if step.retry is not None and instance.attempt <= step.retry.max:
                # From when the refusal happened, not from the event: a retry waits for the world to change.
                due = when.handled + process.retry_delay(step.retry.backoff, instance.attempt)
                timer = _timer(instance, step.id, f"{cause}/retry{instance.attempt}")
                self._wait(instance, Waiting(step.id, [], timer, due, "retry"), effects)
                return None
            self._fail(instance, step.id, f"{step.do} refused: {error.message}", effects)
            return None
        instance.attempt = 0
        effects.append(self._effect("command", instance, step.id, command=step.do, args=args))
        return process.following(step.id)

    # State changes.

    def _pause_or_resume(self, process: CompiledProcess, instance: Instance, step: WaitForStep, pause: bool,
                         now: datetime, effects: list[Effect]) -> None:  # fmt: skip
        """Stop the timeout clock (keeping what is left), or start it again: at ``now``, the event's time."""
        waiting = instance.waiting
        assert waiting is not None and step.timeout is not None
        if pause and waiting.due is not None:
            left = process.remaining(now, waiting.due, step.timeout)
            waiting.paused_remaining_s, waiting.due, waiting.timer_id = left.total_seconds(), None, None
            effects.append(self._effect("paused", instance, step.id, remaining_s=waiting.paused_remaining_s))
        elif not pause and waiting.paused_remaining_s is not None:
            waiting.due = process.due_after(now, timedelta(seconds=waiting.paused_remaining_s), step.timeout)
            waiting.timer_id = _timer(instance, step.id, f"resume/{now.isoformat()}")
            waiting.paused_remaining_s = None
            effects.append(self._effect("resumed", instance, step.id, due=waiting.due.isoformat()))
        self.instances.save(instance)

    @staticmethod
    def _same_subject(instance: Instance, subject: Any) -> bool:
        expected = instance.waiting.subject if instance.waiting and instance.waiting.subject else instance.key
        return subject is not None and str(subject) == expected

    def _wait(self, instance: Instance, waiting: Waiting, effects: list[Effect]) -> None:
        instance.status, instance.waiting = "waiting", waiting
        detail: dict[str, Any] = {"for": waiting.reason}
        if waiting.on:
            detail["on"] = waiting.on
        if waiting.due:
            detail["due"] = waiting.due.isoformat()
        effects.append(self._effect("waiting", instance, waiting.step, **detail))

    def _fail(self, instance: Instance, step: str | None, reason: str, effects: list[Effect]) -> None:
        instance.status, instance.error, instance.waiting = "failed", reason, None
        effects.append(self._effect("failed", instance, step, error=reason))
        self.instances.save(instance)

    def _wakes(
        self, process: CompiledProcess, instance: Instance, event: dict[str, Any], scope: Scope
    ) -> bool:
        step = process.step(instance.waiting.step)  # type: ignore[union-attr]
        assert isinstance(step, WaitForStep)
        if step.wait_for.when is None:
            return event.get("subject") == instance.key  # no condition: the instance key correlates
        try:
            return process.evaluate(step.wait_for.when, scope.with_vars(instance.vars)) is True
        except ExpressionError:
            return False

    @staticmethod
    def _emitted(process: CompiledProcess, instance: Instance, event_type: str, data: dict[str, Any],
                 cause: str, now: datetime, scope: Scope) -> dict[str, Any]:  # fmt: skip
        event = scope.event
        return {
            "specversion": "1.0",
            "id": uuid5_text(EMIT_NAMESPACE, f"{instance.id}/{event_type}/{cause}"),
            "source": f"/crmflow/{instance.tenant}/process/{process.name}",
            "type": event_type,
            "subject": instance.key,
            "time": now.isoformat(),
            "datacontenttype": "application/json",
            "data": data,
            "tenantid": instance.tenant,
            "correlationid": event.get("correlationid") or str(event.get("id")),
            "causationid": str(event.get("id")),
            HOPS: hops(event) + 1,
        }

    @staticmethod
    def _check_emit(event_type: str, document: dict[str, Any]) -> None:
        """What the relay and every consumer can carry; and no emit chain without end."""
        if document[HOPS] > MAX_PROCESS_HOPS:
            limit = LimitExceeded(
                "process_hops",
                f"emitting {event_type} would make the {document[HOPS]}th process emit in a row",
            )
            raise RunLimitError(f"{limit}: do definitions trigger each other round?")
        bounded(document["data"], "data")
        size = len(json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
        if size > MAX_EVENT_BYTES:
            raise RunLimitError(
                str(LimitExceeded("event_bytes", f"the emitted {event_type} would be {size:,} bytes"))
            )

    @staticmethod
    def _effect(kind: str, instance: Instance, step: str | None, **detail: Any) -> Effect:
        return Effect(kind, instance.id, instance.definition, instance.version, step, detail)


def _timer(instance: Instance, step: str, cause: str) -> str:
    return uuid5_text(EMIT_NAMESPACE, f"timer/{instance.id}/{step}/{cause}")
