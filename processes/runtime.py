"""The live engine: definitions from the registry, instances in the event store.

Shared by the process worker (events from Kafka) and the timer worker (due
timers). Instances are kept in memory, indexed by what they wait for, and
refreshed from the store's notification log before each batch, so every
worker sees what the others saved. Commands run through the application
service with the engine's idempotency keys: a batch handled again after a
crash replays their first results instead of acting twice. A batch's commands,
round-robin choices, effects and instance states are saved in one transaction
(a ``UnitOfWork`` that rolls back refused commands, handed to the batch's
ports explicitly); a concurrent change of the same instance or aggregate
by another writer makes the save fail, and the caller handles the batch again
on fresh state. In the rare batch where a refused command had already changed
an aggregate that an earlier command of the batch changed, the batch is run
again with one transaction per command.

The runtime's clock is the handling time: what a batch records is stamped
with it. The engine times waits from each event's own time, so a worker
catching up on a backlog gives every timer the due time it would have had on
time (docs/process-language.md, Time); the timer worker fires by the clock.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any
from uuid import UUID

import structlog
from eventsourcing.persistence import IntegrityError

from crmflow.aggregates.application import CommandRequest, CrmApplication
from crmflow.aggregates.base import TenantAggregate
from crmflow.aggregates.clock import pinned_event_time
from crmflow.aggregates.metadata import event_metadata
from crmflow.aggregates.reading import find, find_many
from crmflow.aggregates.unit_of_work import UnitOfWork, UnitSpoiledError
from crmflow.processes.calendar import BusinessCalendar
from crmflow.processes.compiled import CompiledProcess
from crmflow.processes.engine import Effect, Engine, MemoryInstances, Rotations
from crmflow.processes.expressions import ExpressionError
from crmflow.processes.instance import Instance
from crmflow.processes.instance_record import EMITTED_TOPIC, RECORD_TOPICS, ProcessInstanceRecord
from crmflow.processes.registry import DefinitionRegistry
from crmflow.processes.rotation_record import (
    RotationSlot,
    RotationTurn,
    first_free_turn,
    rotation_slot_id,
    rotation_turn_id,
)

log = structlog.get_logger("crmflow.processes")


class InstanceConflictError(RuntimeError):
    """Another worker changed an instance of this batch first; handle the batch again."""


Timed = Callable[[str], AbstractContextManager[None]]


def untimed(_command: str) -> AbstractContextManager[None]:
    return nullcontext()


class ServiceCommands:
    """Commands through the application service: domain refusals raise DomainError.

    Into the batch's unit of work when there is one (stored when the batch is),
    else each in its own transaction. ``timed(name)`` wraps each command: the
    workers pass their latency metric in.
    """

    def __init__(self, app: CrmApplication, timed: Timed = untimed, unit: UnitOfWork | None = None,
                 alone: Callable[[CommandRequest], None] | None = None) -> None:  # fmt: skip
        self.app = app
        self.timed = timed
        self.unit = unit
        # Called before a command is stored on its own (no unit): the runtime stores the start of a new
        # instance first, so a worker that replays the event after a crash looks the command up.
        self.alone = alone

    def execute(self, request: CommandRequest) -> None:
        with self.timed(request.name):
            if self.unit is not None:
                self.unit.run(request)
            else:
                if self.alone is not None:
                    self.alone(request)
                self.app.execute(request, conflict_retries=3)


class StoredEmits:
    """Emitted events wait here until the batch is saved; the relay publishes them from the store."""

    def __init__(self) -> None:
        self.documents: dict[str, dict[str, Any]] = {}

    def emit(self, document: dict[str, Any]) -> None:
        self.documents[document["id"]] = document


class StoredInstances(MemoryInstances):
    """The memory index, kept in step with the instances saved in the store."""

    def __init__(self, app: CrmApplication) -> None:
        super().__init__()
        self.app = app
        self.position = 0
        self.dirty: dict[str, Instance] = {}
        # The record version each known state was read at: a save must build on it.
        self.versions: dict[str, int] = {}
        # Each running instance's record as this worker last saved it: the next run appends to it
        # without reading it back, as long as nobody else saved the instance since (its version says).
        self.records: dict[str, ProcessInstanceRecord] = {}

    def refresh(self) -> int:
        """Read instance states saved since the last refresh (by this worker or any other)."""
        read = 0
        # Read up to the newest notification as of now, and move past it even when
        # no state is among them: the topic filter scans every notification after
        # ``position``, so a position stuck behind the newest would rescan the log
        # on every refresh. Both stores commit notification ids in order, so
        # nothing below ``newest`` can still appear.
        newest = self.app.recorder.max_notification_id() or 0
        while True:
            notifications = self.app.recorder.select_notifications(
                start=self.position + 1, limit=1000, stop=newest, topics=RECORD_TOPICS
            )
            if not notifications:
                self.position = max(self.position, newest)
                return read
            for notification in notifications:
                if notification.topic == EMITTED_TOPIC:
                    # Stored after its run's state, in the same record: the next run builds on it.
                    instance = str(notification.originator_id)
                    if instance in self.versions and instance not in self.dirty:
                        self.versions[instance] = notification.originator_version
                    continue
                if self.versions.get(str(notification.originator_id)) == notification.originator_version:
                    continue  # saved by this worker: the state in memory is this one
                state = self.app.mapper.to_domain_event(notification).state
                if state is None:
                    # A start stored before its run (the one-by-one path), or before one record per run:
                    # the state comes with a later event; until then the instance is known to be there.
                    instance = str(notification.originator_id)
                    if instance not in self.dirty:
                        self.versions[instance] = notification.originator_version
                    continue
                if state["id"] not in self.dirty:
                    super().save(Instance.from_dict(state))
                    self.versions[state["id"]] = notification.originator_version
            read += len(notifications)
            self.position = notifications[-1].id

    def save(self, instance: Instance) -> None:
        super().save(instance)
        self.dirty[instance.id] = instance

    def forget(self) -> None:
        """Drop everything believed so far; the next refresh reads the store from the start."""
        self.clear()
        self.dirty.clear()
        self.versions.clear()
        self.records.clear()
        self.position = 0

    def is_new(self, instance_id: str) -> bool:
        """Started in the batch in hand: no state of it was read from the store or saved."""
        return instance_id not in self.versions

    def keep(self, record: ProcessInstanceRecord) -> None:
        """Remember a record just saved; a finished instance runs no more, so its record is let go."""
        self.versions[str(record.id)] = record.version
        if record.status in ("completed", "failed"):
            self.records.pop(str(record.id), None)
        else:
            self.records[str(record.id)] = record


class StoredRotations(Rotations):
    """Round-robin turns stored as they are taken: one order across worker copies (processes/rotation_record.py).

    ``positions`` holds, per rotation, the next turn this worker believes free;
    it is found in the store once (and again after a collision) and then moved
    on by the worker's own turns, so taking a turn reads nothing.
    """

    def __init__(self, app: CrmApplication) -> None:
        super().__init__()
        self.app = app
        self.found: set[tuple[str, str, str]] = set()  # rotations whose free turn was read from the store

    def forget(self) -> None:
        """Drop the choices and positions believed in memory (some may not have been stored)."""
        self.given.clear()
        self.positions.clear()
        self.found.clear()

    def in_unit(self, unit: UnitOfWork | None, fresh: Callable[[str], bool]) -> RotationsInUnit:
        """The port one batch's engine uses: turns stored with that unit's commands.

        ``fresh(instance)``: the instance is new in this batch, so it cannot have a stored slot yet.
        """
        return RotationsInUnit(self, unit, fresh)

    def slot(self, tenant: str, process: str, step: str, instance: str, size: int,
             unit: UnitOfWork | None = None, fresh: bool = False) -> int:  # fmt: skip
        key = (tenant, process, step, instance)
        if key not in self.given:
            if unit is None:
                self.given[key] = self._take_alone(tenant, process, step, instance)
            else:
                self.given[key] = self._take_in(unit, tenant, process, step, instance, fresh)
        return self.given[key] % size

    def _take_in(self, unit: UnitOfWork, tenant: str, process: str, step: str, instance: str, fresh: bool) -> int:
        # Stored with the batch's commands and instance states: a choice is stored if and only if what
        # it chose is. A turn another copy took meanwhile makes the commit collide; the batch is then
        # handled again on a fresh look at the rotation.
        if not fresh and (earlier := self._stored_slot(tenant, process, step, instance)) is not None:
            return earlier  # given on the one-by-one path before a crash
        turn = self._free_turn(tenant, process, step)
        unit.add(RotationTurn(tenant_id=tenant, process=process, step=step, turn=turn, instance=instance))
        self.positions[(tenant, process, step)] = turn + 1
        return turn

    def _take_alone(self, tenant: str, process: str, step: str, instance: str) -> int:
        # The one-by-one path stores each command on its own: the instance's slot is stored first,
        # with the turn, so a worker replaying the step after a crash chooses the same item.
        while True:
            turn = self._free_turn(tenant, process, step)
            try:
                self.app.save(RotationSlot(tenant_id=tenant, process=process, step=step, instance=instance, slot=turn),
                              RotationTurn(tenant_id=tenant, process=process, step=step, turn=turn,
                                           instance=instance))  # fmt: skip
            except IntegrityError:
                earlier = self._stored_slot(tenant, process, step, instance)
                if earlier is not None:
                    return earlier  # handed out before, by a worker that died before saving the instance
                self.found.discard((tenant, process, step))  # another copy took the turn: look again
                continue
            self.positions[(tenant, process, step)] = turn + 1
            return turn

    def _free_turn(self, tenant: str, process: str, step: str) -> int:
        rotation = (tenant, process, step)
        if rotation not in self.found:
            recorder = self.app.recorder
            self.positions[rotation] = first_free_turn(
                lambda turn: bool(recorder.select_events(rotation_turn_id(tenant, process, step, turn), limit=1)),
                self.positions[rotation],
            )
            self.found.add(rotation)
        return self.positions[rotation]

    def _stored_slot(self, tenant: str, process: str, step: str, instance: str) -> int | None:
        slot = find(self.app.repository, rotation_slot_id(tenant, process, step, instance))
        return None if slot is None else int(slot.slot)


class RotationsInUnit(Rotations):
    """StoredRotations seen from one batch: what it hands out is stored with that batch's unit of work."""

    def __init__(self, rotations: StoredRotations, unit: UnitOfWork | None, fresh: Callable[[str], bool]) -> None:
        self.rotations = rotations
        self.unit = unit
        self.fresh = fresh

    def slot(self, tenant: str, process: str, step: str, instance: str, size: int) -> int:
        return self.rotations.slot(tenant, process, step, instance, size, self.unit, self.fresh(instance))


@dataclass(frozen=True)
class Batch:
    """One transaction's worth of engine work: the engine bound to the batch's unit of work.

    ``unit`` None: the one-by-one fallback, each command in its own transaction.
    """

    engine: Engine
    unit: UnitOfWork | None
    now: datetime


def _instance_of(request: CommandRequest) -> str:
    """The process instance that issued a command ('' for a person's or a service's command)."""
    return str((request.cause or {}).get("instance") or "")


def caused_by(instance: Instance, step: str | None) -> dict[str, Any]:
    """Who did it, for `crmflow explain`: the process, its version, the step (as commands carry it)."""
    cause = {"process": instance.definition, "version": instance.version, "instance": instance.id,
             "step": step or instance.step or "-"}  # fmt: skip
    return {
        "tenant": instance.tenant,
        "caller": f"process:{instance.definition}@{instance.version}",
        "cause": cause,
    }


# What an operator wants to see at info level; the rest (entered, waiting, started) is debug.
NOTEWORTHY_EFFECTS = frozenset({"command", "refused", "emitted", "timeout", "completed", "failed"})


def log_effects(effects: list[Effect], stories: dict[str, tuple[str, str]] | None = None) -> None:
    """One line per effect; ``stories``: instance id → (tenant, correlation id), where no event is bound."""
    # Most effects are debug lines: when those are off, their arguments are not even built.
    is_enabled_for = getattr(log, "is_enabled_for", None)
    debug = is_enabled_for is None or is_enabled_for(logging.DEBUG)
    for effect in effects:
        if not debug and effect.kind not in NOTEWORTHY_EFFECTS and effect.kind != "skipped":
            continue
        story = (stories or {}).get(effect.instance)
        context = {"tenant": story[0], "correlation_id": story[1]} if story else {}
        if effect.kind in ("failed", "skipped"):  # an incident: say why
            log.warning(f"process_{effect.kind}", process=effect.process, version=effect.version,
                        instance=effect.instance, step=effect.step,
                        reason=effect.detail.get("error"), **context)  # fmt: skip
            continue
        level = log.info if effect.kind in NOTEWORTHY_EFFECTS else log.debug
        level(f"process_{effect.kind}", process=effect.process, version=effect.version,
              instance=effect.instance, step=effect.step, **context)  # fmt: skip


class ProcessRuntime:
    def __init__(self, app: CrmApplication, clock: Callable[[], datetime] | None = None, *,
                 timed: Timed = untimed, session_events: int = 16,
                 command_port: type[ServiceCommands] = ServiceCommands) -> None:  # fmt: skip
        self.app = app
        self.session_events = session_events
        self.clock = clock or app.clock
        self.registry = DefinitionRegistry(app)
        self.instances = StoredInstances(app)
        self.emits = StoredEmits()
        self.timed = timed
        self.command_port = command_port
        self.rotations = StoredRotations(app)
        # Ids that are new by construction (a new instance, its commands' idempotency records, the
        # turns it takes) are not looked up: they are simply stored, and a collision on commit means
        # something was there after all (another copy, or a crash of the one-by-one path). The batch is
        # then handled again, carefully, looking everything up, until one saves.
        self.careful = False
        # Holds the deployed processes; each batch works on a copy bound to its own ports (``_batch``).
        self.engine = Engine([], self.instances, command_port(app, timed), self.emits, self.rotations)
        self.revision = -1

    def refresh(self) -> int:
        """New definition versions and instance changes, before each batch; return the states read."""
        revision = self.registry.revision()
        if revision != self.revision:
            documents = self.registry.documents()
            calendars = {d.model.name: BusinessCalendar(d.model) for d in documents if d.kind == "Calendar"}  # type: ignore[attr-defined, arg-type]
            for document in documents:
                if document.kind == "Process":
                    try:
                        compiled = CompiledProcess(document.model, calendars)  # type: ignore[arg-type]
                    except ExpressionError as error:
                        # Deployed before today's limits: refused now, the others still run.
                        log.warning("definition_refused", definition=document.file, reason=str(error))
                        continue
                    self.engine.deploy(compiled)
            log.info("definitions_loaded", revision=revision, versions=len(self.engine.versions))
            self.revision = revision
        return self.instances.refresh()

    def handle(self, events: list[dict[str, Any]]) -> tuple[list[Effect], list[dict[str, Any]]]:
        """Run the events through the engine and save; return the effects and the events that had none.

        A transaction per ``session_events`` events: long enough to pay for its
        commit, short enough not to keep other writers waiting for SQLite's one write lock.
        """
        self.refresh()
        effects: list[Effect] = []
        idle: list[dict[str, Any]] = []
        for start in range(0, len(events), self.session_events):
            chunk = events[start : start + self.session_events]
            done, unmatched = self._in_batch(partial(self._handle, chunk))
            effects += done
            idle += unmatched
        return effects, idle

    def fire_due(self) -> list[Effect]:
        self.refresh()
        return self._in_batch(self._fire_due)

    def _in_batch(self, work: Callable[[Batch], Any]) -> Any:
        """``work`` with its commands in one unit of work, saved in one transaction; one by one if spoiled.

        A collision with something taken for new (``careful``) is handled again at once, looking
        everything up; a conflict of a careful batch is the caller's to handle.
        """
        now = self.clock()
        took_for_new = not self.careful
        try:
            return self._in_unit(work, now)
        except InstanceConflictError:
            if not took_for_new:
                raise
            log.info("process_batch_careful")
            self.refresh()
            return self._in_unit(work, now)

    def _in_unit(self, work: Callable[[Batch], Any], now: datetime) -> Any:
        try:
            return work(self._batch(UnitOfWork(self.app, now, rollback_refused=True), now))
        except UnitSpoiledError as error:
            log.info("process_batch_one_by_one", reason=str(error))
            self._forget()
            self.refresh()
            return work(self._batch(None, now))

    def _batch(self, unit: UnitOfWork | None, now: datetime) -> Batch:
        fresh = self._fresh
        if unit is not None:
            # A process's command is stored with the state of the instance that issued it: that state
            # (the event ids it has handled) keeps a replay from issuing it twice, so no idempotency
            # record is written. One is looked up only where an earlier worker may have stored the
            # command on its own (the one-by-one path, which does write them): not for a new instance.
            unit.fresh = lambda request: fresh(_instance_of(request))
            unit.unrecorded = lambda request: bool(_instance_of(request))
        ports = {
            "commands": self.command_port(self.app, self.timed, unit, self._alone),
            "rotations": self.rotations.in_unit(unit, fresh),
        }
        return Batch(self.engine.with_ports(**ports), unit, now)

    def _alone(self, request: CommandRequest) -> None:
        """Before a new instance's first command is stored on its own: store the instance's start.

        A worker that handles the event again after a crash then finds the instance in the store, so
        it looks up the commands already stored (with their idempotency records) instead of taking
        them for new.
        """
        cause = request.cause or {}
        instance = _instance_of(request)
        if not instance or not self.instances.is_new(instance):
            return
        start = ProcessInstanceRecord(tenant_id=request.tenant, instance_id=instance, definition=cause["process"],
                                      version=cause["version"], key=cause.get("key", ""), detail={},
                                      effects=[], state=None)  # fmt: skip
        with pinned_event_time(self.clock()), event_metadata(
            {"tenant": request.tenant, "caller": request.caller, "cause": dict(cause)}
        ):
            try:
                self.app.save(start)
            except IntegrityError:
                self.careful = True  # started by another worker, or before a crash: handle it again
                raise InstanceConflictError(f"instance {instance} is in the store already") from None
        self.instances.keep(start)

    def _fresh(self, instance_id: str) -> bool:
        """Nothing of this instance can be in the store yet (unless a collision made us careful)."""
        return not self.careful and bool(instance_id) and self.instances.is_new(instance_id)

    def forget(self) -> None:
        """After a batch failed for an outage: drop what it may not have stored (for the worker's retry)."""
        self._forget()

    def _forget(self) -> None:
        """Drop what was believed or chosen but not stored; the next refresh reads the store again."""
        self.instances.forget()
        self.rotations.forget()
        self.emits.documents.clear()

    def _handle(
        self, events: list[dict[str, Any]], batch: Batch
    ) -> tuple[list[Effect], list[dict[str, Any]]]:
        effects: list[Effect] = []
        idle = []
        if batch.unit is not None:
            batch.unit.hold(self._read_ahead(events))
        with pinned_event_time(batch.now):
            for event in events:
                # Every log line about this event names its tenant, id and correlation id.
                with structlog.contextvars.bound_contextvars(
                    tenant=event.get("tenantid"),
                    event_id=event.get("id"),
                    correlation_id=event.get("correlationid"),
                ):
                    produced = batch.engine.handle(event, batch.now)
                    log_effects(produced)
                effects += produced
                if not produced:
                    idle.append(event)
        self.save(effects, batch.unit)
        return effects, idle

    def _read_ahead(self, events: list[dict[str, Any]]) -> list[TenantAggregate]:
        """The stored subjects of the events that may start a process, in one query: the commands a
        process issues are mostly about its trigger's subject (a new lead's assignment), and reading
        them one by one as each command loads its aggregate is a query per event."""
        ids, triggered = set(), self.engine.triggered_types()
        for event in events:
            if event["type"] in triggered and isinstance(subject := event.get("subject"), str):
                try:
                    ids.add(UUID(subject))
                except ValueError:
                    continue  # not a record's id (an inbound event's own subject): nothing to read
        return [a for a in find_many(self.app, ids).values() if isinstance(a, TenantAggregate)]

    def _fire_due(self, batch: Batch) -> list[Effect]:
        # Due by the wall clock; each timer's steps run at its own due time (the engine's When). What its
        # commands record is stamped now, when it is recorded.
        with pinned_event_time(batch.now):
            effects = batch.engine.fire_due(batch.now)
        # No event is bound to a timer's lines: they name the story of the instance's trigger instead.
        stories = {i.id: (i.tenant, i.correlation()) for i in self.instances.dirty.values()}
        log_effects(effects, stories)
        self.save(effects, batch.unit)
        return effects

    def save(self, effects: list[Effect], unit: UnitOfWork | None = None) -> None:
        """The batch's commands, then each changed instance (its effects as events, its state); one commit."""
        if not self.instances.dirty and not unit:
            return
        try:
            records = self._records(effects)
            if unit is not None:
                unit.commit(*records)
            else:
                self.app.save(*records)
        except (IntegrityError, InstanceConflictError):
            # Another worker saved one of these instances (or another writer one of
            # the commands' aggregates, or a turn of a rotation) first. Forget what we
            # believed and read the store again; the caller handles the batch anew,
            # looking up what it took for new.
            self._forget()
            self.careful = True
            raise InstanceConflictError("an instance changed under this batch") from None
        finally:
            self.emits.documents.clear()
        for record in records:
            self.instances.keep(record)
        self.instances.dirty.clear()
        self.careful = False

    def _records(self, effects: list[Effect]) -> list[ProcessInstanceRecord]:
        """One event per changed instance for this run (its effects and new state), then what it emitted."""
        by_instance: dict[str, list[Effect]] = defaultdict(list)
        for effect in effects:
            by_instance[effect.instance].append(effect)
        records = []
        with pinned_event_time(self.clock()):
            for instance in self.instances.dirty.values():
                done = by_instance.get(instance.id, [])
                with event_metadata(caused_by(instance, None)):
                    record = self._record(instance, done)
                for effect in done:
                    document = self.emits.documents.get(effect.detail.get("id", "")) if effect.kind == "emitted" else None
                    if document is not None:
                        with event_metadata(caused_by(instance, effect.step)):
                            record.emitted(effect.step, effect.detail, document)
                records.append(record)
        return records

    def _record(self, instance: Instance, effects: list[Effect]) -> ProcessInstanceRecord:
        """The instance's record with this run on it, built on the version its state was read at (else a conflict)."""
        expected = self.instances.versions.get(instance.id)
        kept = self.instances.records.get(instance.id)
        if kept is not None and kept.version == expected:
            record: ProcessInstanceRecord | None = kept
        elif self._fresh(instance.id):
            record = None  # new by construction: stored as new, and a collision says otherwise
        else:
            record = find(self.app.repository, UUID(instance.id))
        if (record.version if record is not None else None) != expected:
            raise InstanceConflictError(f"instance {instance.id} moved on since it was read")
        state = instance.to_dict()
        if record is None:
            started = next((e for e in effects if e.kind == "started"), None)
            return ProcessInstanceRecord.first_run(
                tenant_id=instance.tenant, instance_id=instance.id, definition=instance.definition,
                version=instance.version, key=instance.key, detail=dict(started.detail) if started else {},
                effects=effects, state=state,
            )  # fmt: skip
        record.ran(effects, state)
        return record
