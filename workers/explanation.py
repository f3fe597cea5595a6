"""Why each event of an aggregate happened, in words and as data: what `crmflow explain` prints.

Each stored event carries its cause in its metadata (crmflow.aggregates.metadata): the command and
its caller, or the process, version and step that issued the command, with the id of the event that
triggered the step (its causation id). That id is a stored event's CloudEvent id
(crmflow.aggregates.envelope.event_id: a hash of aggregate id and version, so it cannot be read
backwards); the trigger is looked up among the aggregate's own events and those of the records its
events name (``lead_id``, ``opportunity_id``, ...), where a process's trigger almost always is,
without scanning the store. A value a process step chose with ``round_robin()`` is said to be so,
from the deployed definition of that version: the engine records the command's arguments, not how
an expression reached them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from uuid import UUID

from crmflow.aggregates.application import CrmApplication, HistoryEntry
from crmflow.aggregates.envelope import event_id
from crmflow.aggregates.ids import stored_candidates

_VAR = re.compile(r"^\s*vars\.([a-z_][a-z0-9_]*)\s*$")


def explain(app: CrmApplication, aggregate_id: UUID, tenant: str | None) -> list[dict[str, Any]]:
    """One entry per event of the aggregate, oldest first; [] if there is none (or it is another tenant's)."""
    history = app.history(aggregate_id, tenant)
    if not history:
        return []
    stored = stored_id(app, aggregate_id, tenant) or aggregate_id
    events = Events(app, tenant, stored, history)
    choices = Choices(app)
    entries = []
    for entry in history:
        cause = caused_by(entry, events, choices)
        entries.append({"version": entry.version, "time": entry.time.isoformat(), "event": entry.type,
                        "id": event_id(stored, entry.version), "subject": str(stored), "data": entry.data,
                        "why": why(cause), "caused_by": cause, "meta": entry.meta})  # fmt: skip
    return entries


def stored_id(app: CrmApplication, aggregate_id: UUID, tenant: str | None) -> UUID | None:
    """The id the aggregate's events are stored under (a tenant's chosen id is stored scoped)."""
    for candidate in stored_candidates(tenant, aggregate_id) if tenant else (aggregate_id,):
        first = next(iter(app.events.get(candidate, limit=1)), None)
        if first is not None and (tenant is None or getattr(first, "tenant_id", None) == tenant):
            return candidate
    return None


class Events:
    """Stored events by CloudEvent id: the aggregate's own, then (asked for) those of the records it names."""

    def __init__(self, app: CrmApplication, tenant: str | None, stored: UUID,
                 history: list[HistoryEntry]) -> None:  # fmt: skip
        self.app, self.tenant = app, tenant
        self.by_id: dict[str, dict[str, Any]] = {}
        self._add(stored, history)
        self.related = [UUID(v) for h in history for k, v in h.data.items() if k.endswith("_id") and _uuid(v)]
        self.related = [r for r in dict.fromkeys(self.related) if r != stored]

    def _add(self, stored: UUID, history: Iterable[HistoryEntry]) -> None:
        for h in history:
            found = {"type": h.type, "subject": str(stored), "version": h.version}
            self.by_id[event_id(stored, h.version)] = found

    def find(self, wanted: str) -> dict[str, Any] | None:
        while wanted not in self.by_id and self.related:
            other = self.related.pop(0)
            stored = stored_id(self.app, other, self.tenant)
            if stored is not None:
                self._add(stored, self.app.history(other, self.tenant))
        return self.by_id.get(wanted)


class Choices:
    """How a process step's command arguments were chosen, read from the deployed definitions."""

    def __init__(self, app: CrmApplication) -> None:
        self.app = app
        self._processes: dict[tuple[str, int], Any] | None = None

    def of(self, process: str, version: int, step: str) -> dict[str, str]:
        definition = self._deployed().get((process, version))
        if definition is None:
            return {}
        steps = {s.id: s for s in definition.steps}
        do = steps.get(step)
        chosen: dict[str, str] = {}
        for arg, source in (getattr(do, "args", None) or {}).items():
            if "round_robin(" in source:
                chosen[arg] = f"round_robin in step {step}: {source.strip()}"
                continue
            var = _VAR.match(source)
            if var is None:
                continue
            for other in definition.steps:
                expression = (getattr(other, "set", None) or {}).get(var.group(1), "")
                if "round_robin(" in expression:
                    chosen[arg] = f"round_robin in step {other.id}: {expression.strip()}"
            expression = definition.vars.get(var.group(1), "")
            if arg not in chosen and "round_robin(" in expression:
                chosen[arg] = f"round_robin in vars.{var.group(1)}: {expression.strip()}"
        return chosen

    def _deployed(self) -> dict[tuple[str, int], Any]:
        if self._processes is None:
            from crmflow.processes.registry import DefinitionRegistry  # only for process causes

            self._processes = {}
            for document in DefinitionRegistry(self.app).documents():
                if document.kind == "Process":
                    model = document.model
                    self._processes[(model.name, model.version)] = model  # type: ignore[attr-defined]
        return self._processes


def caused_by(entry: HistoryEntry, events: Events, choices: Choices) -> dict[str, Any]:
    """The cause of one event as data: the command and caller, or the process, its step and trigger."""
    meta = entry.meta
    if not meta:
        return {"kind": "unknown"}
    cause = dict(meta.get("cause") or {})
    found: dict[str, Any] = {"command": meta.get("command"), "command_id": meta.get("command_id"),
                             "caller": meta.get("caller")}  # fmt: skip
    if meta.get("correlation_id") and meta.get("correlation_id") != meta.get("command_id"):
        found["correlation_id"] = meta["correlation_id"]
    if meta.get("idempotency_key"):
        found["idempotency_key"] = meta["idempotency_key"]
    if "process" in cause:
        found = {"kind": "process", "process": cause["process"], "version": cause.get("version"),
                 "step": cause.get("step"), "instance": cause.get("instance"), **found}  # fmt: skip
        if isinstance(cause.get("version"), int) and cause.get("step"):
            chosen = choices.of(cause["process"], cause["version"], cause["step"])
            if chosen:
                found["chosen"] = chosen
    else:
        found = {"kind": "command", **found}
    causation = meta.get("causation_id")
    if causation and causation != meta.get("command_id"):
        trigger = events.find(str(causation))
        found["trigger"] = {"id": str(causation), "type": (trigger or {}).get("type") or cause.get("trigger"),
                            "subject": (trigger or {}).get("subject")}  # fmt: skip
    return found


def why(cause: dict[str, Any]) -> str:
    """The cause in one line, for people."""
    if cause["kind"] == "unknown":
        return "(no metadata recorded)"
    if cause["kind"] == "process":
        text = f"process {cause['process']} v{cause.get('version', '?')} step {cause.get('step', '?')}"
        text += f" ran {cause.get('command') or 'a command'}"
    else:
        text = f"command {cause.get('command', '?')} by {cause.get('caller', '?')}"
    trigger = cause.get("trigger")
    if trigger:
        what = trigger.get("type") or "event"
        where = f"of {trigger['subject']}" if trigger.get("subject") else trigger["id"]
        text += f", on {what} {where}"
    for arg, how in (cause.get("chosen") or {}).items():
        text += f"; {arg} chosen by {how}"
    if cause.get("correlation_id"):
        text += f" (correlation {cause['correlation_id']})"
    return text


def _uuid(value: object) -> bool:
    try:
        UUID(str(value))
    except ValueError:
        return False
    return isinstance(value, str)

