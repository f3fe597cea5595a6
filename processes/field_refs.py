"""Every ``event.data.FIELD`` a definition reads, checked against the event types it can be reading.

A process triggered on ``OpportunityStageChanged`` with
``when: event.data.amount > 0`` used to pass validation and fail on its first
event: the event carried no ``amount``. So each expression's reads are
checked against the data schemas of the event types that expression can see:

- the trigger's ``when``, ``key`` and ``vars`` see the trigger's ``on`` types;
- the first step sees them too; a step sees what the steps leading to it saw,
  except after a ``wait_for`` (its ``on`` types, or ``TimerFired`` after its
  timeout) and after a ``wait`` (``TimerFired``); a ``do`` with ``retry`` runs
  again on its retry timer, so it and what follows may see ``TimerFired``;
- a step reached along several paths sees the union.

A read that no visible type has is an error; one that only some lack is not
(another path may bring it). ``has(event.data.x)`` is a probe, not a read: of
a field no visible type can have it is a warning (the guard is always false),
and a read of the same field in that expression is not an error on top.
Domain events' schemas come from the catalogue; emitted types have the fields
their ``emit`` steps give them; inbound types have a schema only from
``CRMFLOW_SCHEMA_DIR`` (one with closed properties): the rest are not checked,
and ``crmflow process validate`` says which.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from crmflow.aggregates.catalog import EVENT_CLASSES, event_data_model
from crmflow.aggregates.limits import LimitExceeded
from crmflow.processes.cel_syntax import CelSyntaxError, check_shape, parse
from crmflow.processes.field_paths import FieldRead, event_data_reads
from crmflow.processes.graph import END, successors
from crmflow.processes.loader import Document, Issue
from crmflow.processes.schema import (
    ChoiceStep,
    DoStep,
    EmitStep,
    ProcessDefinition,
    WaitForStep,
    WaitStep,
)

# A schema: each field, with its own fields when the schema describes them (None: not described).
Fields = dict[str, "Fields | None"]
Path = tuple[str | int, ...]
# The event the engine makes when a timer fires (processes/engine.py, fire_due).
TIMER_FIRED = "TimerFired"
TIMER_FIELDS: Fields = {"step": None, "reason": None}


@dataclass
class FieldReport:
    errors: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)
    unchecked: set[str] = field(default_factory=set)  # types read from that have no schema


def event_schemas(
    everything: Iterable[Document], inbound: Mapping[str, Any] | None = None
) -> dict[str, Fields]:
    """The data fields of every event type whose data crmflow knows."""
    schemas: dict[str, Fields] = {}
    for document in everything:
        if document.kind != "Process":
            continue
        for step in document.model.steps:  # type: ignore[attr-defined]
            if isinstance(step, EmitStep):
                schemas.setdefault(step.emit, {}).update(dict.fromkeys(step.data))
    for name, schema in (inbound or {}).items():
        fields = json_schema_fields(schema)
        if fields is not None:
            schemas[name] = {**schemas.get(name, {}), **fields}
    for name, cls in EVENT_CLASSES.items():
        schemas[name] = dict.fromkeys(event_data_model(cls).model_fields)
    schemas[TIMER_FIRED] = TIMER_FIELDS
    return schemas


def json_schema_fields(schema: Any) -> Fields | None:
    """The properties of a JSON Schema that closes them (additionalProperties: false); None if open."""
    if not isinstance(schema, dict) or schema.get("additionalProperties") is not False:
        return None
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return None
    return {name: json_schema_fields(sub) for name, sub in properties.items()}


def field_report(
    documents: list[Document], context: list[Document] = (), inbound: Mapping[str, Any] | None = None  # type: ignore[assignment]
) -> FieldReport:
    """The event.data reads of every process in the documents, checked."""
    schemas = event_schemas([*documents, *context], inbound)
    report = FieldReport()
    for document in documents:
        if document.kind == "Process":
            check_document(document, schemas, report)
    return report


def check_document(document: Document, schemas: Mapping[str, Fields], report: FieldReport) -> None:
    p: ProcessDefinition = document.model  # type: ignore[assignment]
    for path, source, types in expressions_with_types(p):
        reads = _reads(source)
        if not reads:
            continue
        unchecked = {t for t in types if t not in schemas}
        report.unchecked |= unchecked
        if unchecked:
            continue  # the field may come from a type crmflow cannot see into
        checked = {t: schemas[t] for t in sorted(types)}
        probed = [read.path for read in reads if read.probe]
        for read in reads:
            if not read.probe and any(read.path[: len(guard)] == guard for guard in probed):
                continue  # under a has() of it or of its parent in this expression: the probe reports it
            if read.probe and len(read.path) > 1:
                # has(event.data.a.b) reads a (the runtime fails without it) and asks about b.
                parent = _lacking(FieldRead(read.path[:-1]), checked)
                if parent is not None:
                    report.errors.append(document.issue(path, parent))
                    continue
            message = _lacking(read, checked)
            if message is None:
                continue
            if read.probe:
                always_false = f"warning: has(event.data.{read.dotted}) is always false: {message}"
                report.warnings.append(document.issue(path, always_false))
            else:
                report.errors.append(document.issue(path, message))


def _reads(source: str) -> tuple[FieldRead, ...]:
    try:
        check_shape(source)
        return event_data_reads(parse(source))
    except (LimitExceeded, CelSyntaxError, RecursionError):  # reported by the other checks
        return ()


def _lacking(read: FieldRead, schemas: Mapping[str, Fields]) -> str | None:
    """Why no visible type has the field (None when one has it, or the schema does not say)."""
    missing: list[tuple[str, str, Fields]] = []  # type, the missing part, what is there instead
    for event_type, fields in schemas.items():
        level: Fields | None = fields
        for depth, name in enumerate(read.path):
            if level is None:
                return None  # not described this deep: anything may be there
            if name not in level:
                missing.append((event_type, ".".join(read.path[: depth + 1]), level))
                break
            level = level[name]
        else:
            return None  # this type has it
    return _describe(missing)


def _describe(missing: list[tuple[str, str, Fields]]) -> str:
    def has(fields: Fields) -> str:
        return ", ".join(fields) if fields else "no data fields"

    if len(missing) == 1:
        event_type, name, fields = missing[0]
        return f"{event_type} has no field {name!r} (it has {has(fields)})"
    names = [event_type for event_type, _, _ in missing]
    which = f"neither {names[0]} nor {names[1]}" if len(names) == 2 else f"none of {', '.join(names)}"
    name = min((n for _, n, _ in missing), key=len)
    detail = "; ".join(f"{event_type} has {has(fields)}" for event_type, _, fields in missing)
    return f"{which} has a field {name!r} ({detail})"


def expressions_with_types(p: ProcessDefinition) -> Iterator[tuple[Path, str, frozenset[str]]]:
    """Every CEL expression of the definition, where it is, and the event types it can see."""
    trigger = frozenset(p.trigger.on)
    if p.trigger.when:
        yield ("trigger", "when"), p.trigger.when, trigger
    yield ("trigger", "key"), p.trigger.key, trigger
    for name, source in p.vars.items():
        yield ("vars", name), source, trigger
    seen = visible_types(p)
    for i, step in enumerate(p.steps):
        at: Path = ("steps", i)
        if isinstance(step, WaitForStep):
            if step.wait_for.when:
                yield (*at, "wait_for", "when"), step.wait_for.when, frozenset(step.wait_for.on)
            continue
        if not seen[i]:
            continue  # unreachable: reported as such
        for attribute in ("args", "data", "set"):
            for name, source in (getattr(step, attribute, None) or {}).items():
                yield (*at, attribute, name), source, seen[i]
        if isinstance(step, ChoiceStep):
            for j, branch in enumerate(step.choice):
                yield (*at, "choice", j, "when"), branch.when, seen[i]


def visible_types(p: ProcessDefinition) -> list[frozenset[str]]:
    """Per step, the event types that can be in ``event`` when it runs (empty: never reached)."""
    index = {step.id: i for i, step in enumerate(p.steps)}
    seen: list[set[str]] = [set() for _ in p.steps]
    seen[0] |= set(p.trigger.on)
    todo = [0]
    while todo:  # grows only: ends when no step's set changes
        i = todo.pop()
        step = p.steps[i]
        if isinstance(step, DoStep) and step.retry is not None and TIMER_FIRED not in seen[i]:
            seen[i].add(TIMER_FIRED)  # the retry timer runs the step again
        for target, brings in _edges(p, i, frozenset(seen[i])):
            j = index.get(target)
            if j is not None and not brings <= seen[j]:
                seen[j] |= brings
                todo.append(j)
    return [frozenset(s) for s in seen]


def _edges(p: ProcessDefinition, i: int, types: frozenset[str]) -> Iterator[tuple[str, frozenset[str]]]:
    step = p.steps[i]
    targets = successors(p, i)
    if isinstance(step, WaitForStep):
        yield targets[0], frozenset(step.wait_for.on)
        if step.on_timeout and step.on_timeout != END:
            yield step.on_timeout, frozenset({TIMER_FIRED})
    elif isinstance(step, WaitStep):
        yield targets[0], frozenset({TIMER_FIRED})
    else:
        for target in targets:
            yield target, types

