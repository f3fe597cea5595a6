"""Catching a designer's mistakes before deployment, each pinned to file, line and field.

The schema (processes/schema.py) checks shapes; this module checks meaning:
commands and event types that exist, arguments that fit the command's
payload, CEL that compiles and names only known variables, steps that exist
and can be reached, waits that can tell their instance's events from others',
calendars that are defined, a worst-case cost within budget, no loop that
would run forever (processes/endless.py), and only event data fields that the
events an expression can see carry (processes/field_refs.py).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from typing import Any

from crmflow.aggregates.catalog import AGGREGATES, COMMANDS, EVENT_CLASSES
from crmflow.aggregates.limits import MAX_DEFINITION_COST, LimitExceeded
from crmflow.processes.business_time import literal_calls
from crmflow.processes.durations import DurationError, parse_duration
from crmflow.processes.endless import self_triggers, trigger_rings, zero_wait_cycles
from crmflow.processes.expressions import ExpressionError, compile_expression, unknown_variables
from crmflow.processes.field_refs import field_report
from crmflow.processes.graph import END, successors
from crmflow.processes.loader import Document, Issue
from crmflow.processes.schema import (
    ChoiceStep,
    DoStep,
    EmitStep,
    ProcessDefinition,
    SetStep,
    WaitForStep,
    WaitStep,
    step_expressions,
)

DOMAIN_PREFIXES = tuple(sorted({cls.__name__ for cls in AGGREGATES}, key=len, reverse=True))
Path = tuple[str | int, ...]


def validate(documents: list[Document], context: list[Document] = (),  # type: ignore[assignment]
             inbound: Mapping[str, Any] | None = None) -> list[Issue]:  # fmt: skip
    """Every problem of every process in the documents (calendars and tests are checked for references).

    ``context`` (e.g. what is deployed already) supplies calendars, emitted
    event types and processes that the documents may refer to; it is not checked.
    ``inbound`` maps inbound event types to the JSON Schemas of their data
    (``CRMFLOW_SCHEMA_DIR``), so that reads of their fields are checked too.
    """
    everything = [*documents, *context]
    calendars = {d.model.name for d in everything if d.kind == "Calendar"}  # type: ignore[attr-defined]
    processes = [d for d in documents if d.kind == "Process"]
    emitted = {
        step.emit
        for d in everything
        if d.kind == "Process"
        for step in d.model.steps
        if isinstance(step, EmitStep)
    }  # type: ignore[attr-defined]
    issues: list[Issue] = []
    for document in processes:
        issues += list(_check_process(document, calendars, emitted))
    names = {(d.model.name, d.model.tenant) for d in everything if d.kind == "Process"}  # type: ignore[attr-defined]
    seen: dict[tuple[str, str, int], Document] = {}
    for document in processes:
        p: ProcessDefinition = document.model  # type: ignore[assignment]
        key = (p.name, p.tenant, p.version)
        if key in seen:
            issues.append(document.issue(("version",), f"{p.name} version {p.version} is defined twice"))
        seen[key] = document
    issues += ring_issues(documents, context)
    issues += field_report(documents, context, inbound).errors
    for document in (d for d in documents if d.kind == "ProcessTest"):
        process = document.model.process  # type: ignore[attr-defined]
        if process not in {name for name, _ in names}:
            issues.append(document.issue(("process",), f"no process named {process!r} in the files given"))
    return issues


def _check_process(document: Document, calendars: set[str], emitted: set[str]) -> Iterator[Issue]:
    p: ProcessDefinition = document.model  # type: ignore[assignment]
    declared = set(p.vars) | {name for step in p.steps if isinstance(step, SetStep) for name in step.set}
    ids = [step.id for step in p.steps]

    # Expressions: they compile, and name only what they can see.
    yield from _expression(document, ("trigger", "when"), p.trigger.when, declared, vars_allowed=False)
    yield from _expression(document, ("trigger", "key"), p.trigger.key, declared, vars_allowed=False)
    for name, source in p.vars.items():
        yield from _expression(document, ("vars", name), source, declared, vars_allowed=False)
    for event_type in p.trigger.on:
        yield from _event_type(
            document, ("trigger", "on", p.trigger.on.index(event_type)), event_type, emitted
        )

    for i, step in enumerate(p.steps):
        at: Path = ("steps", i)
        if step.id in ids[:i]:
            yield document.issue((*at, "id"), f"step id {step.id!r} is used twice")
        if step.id == END:
            yield document.issue((*at, "id"), "'end' is reserved: it means the process is finished")
        for field, target in _targets(step):
            if target != END and target not in ids:
                yield document.issue(
                    (*at, *field), f"{target!r} is not a step of this process (steps: {', '.join(ids)}, end)"
                )
        if isinstance(step, DoStep):
            yield from _command(document, at, step, declared)
        elif isinstance(step, EmitStep):
            if step.emit in EVENT_CLASSES:
                message = (
                    f"{step.emit} is a domain event that only its aggregate records; "
                    "emit a new event type, or `do` the command that records it"
                )
                yield document.issue((*at, "emit"), message)
            for name, source in step.data.items():
                yield from _expression(document, (*at, "data", name), source, declared)
        elif isinstance(step, WaitForStep):
            for j, event_type in enumerate(step.wait_for.on):
                yield from _event_type(document, (*at, "wait_for", "on", j), event_type, emitted)
            if step.wait_for.when is not None:
                yield from _expression(document, (*at, "wait_for", "when"), step.wait_for.when, declared)
                yield from _correlated(document, at, step)
            if step.on_timeout is not None and step.timeout is None:
                yield document.issue((*at, "on_timeout"), "on_timeout needs a timeout")
            if (step.pause_on or step.resume_on) and step.timeout is None:
                yield document.issue(
                    (*at, "pause_on"), "pause_on/resume_on stop and restart the timeout: give a timeout"
                )
            if bool(step.pause_on) != bool(step.resume_on):
                yield document.issue((*at, "pause_on" if step.pause_on else "resume_on"),
                                     "a paused clock needs both pause_on and resume_on")  # fmt: skip
            for field in ("pause_on", "resume_on"):
                for j, event_type in enumerate(getattr(step, field)):
                    yield from _event_type(document, (*at, field, j), event_type, emitted)
            yield from _calendar(document, (*at, "timeout"), step.timeout, calendars)
        elif isinstance(step, WaitStep):
            yield from _calendar(document, (*at, "wait"), step.wait, calendars)
        elif isinstance(step, ChoiceStep):
            for j, branch in enumerate(step.choice):
                yield from _expression(document, (*at, "choice", j, "when"), branch.when, declared)
        elif isinstance(step, SetStep):
            for name, source in step.set.items():
                yield from _expression(document, (*at, "set", name), source, declared)
        yield from _business_add(document, (*at, "id"), step, calendars)

    for i in _unreachable(p):
        yield document.issue(("steps", i, "id"), f"step {p.steps[i].id!r} can never be reached")
    yield from _endless(document)
    yield from _total_cost(document)


def _endless(document: Document) -> Iterator[Issue]:
    p: ProcessDefinition = document.model  # type: ignore[assignment]
    for cycle in zero_wait_cycles(p):
        names = " → ".join(p.steps[i].id for i in cycle)
        message = (f"steps {names} loop without time passing (every wait in the loop is zero-length), "
                   "so the loop never ends; give one of its waits a positive duration")  # fmt: skip
        yield document.issue(("steps", cycle[0], "id"), message)
    for event_type in self_triggers(p):
        at = ("trigger", "on", p.trigger.on.index(event_type))
        message = (f"the process emits {event_type} and triggers on it, so every instance starts another, "
                   "forever; trigger on a type it does not emit")  # fmt: skip
        yield document.issue(at, message)


def ring_issues(documents: list[Document], context: list[Document]) -> list[Issue]:
    """Definitions of one tenant that trigger each other round, with what is deployed (latest versions)."""
    processes = [d for d in documents if d.kind == "Process"]
    return list(_rings(processes, [d for d in context if d.kind == "Process"]))


def _rings(processes: list[Document], context: list[Document]) -> Iterator[Issue]:
    given = {id(d) for d in processes}
    latest: dict[tuple[str, str], Document] = {}
    for document in [*context, *processes]:  # the documents given replace what is deployed under their name
        p: ProcessDefinition = document.model  # type: ignore[assignment]
        key = (p.name, p.tenant)
        current = latest.get(key)
        if current is None or id(document) in given or p.version >= current.model.version:  # type: ignore[attr-defined]
            latest[key] = document
    by_model = {id(d.model): d for d in latest.values()}
    for ring in trigger_rings([d.model for d in latest.values()]):  # type: ignore[misc]
        loop = "; ".join(f"{p.name} emits {', '.join(sorted(set(_emits(p))))}" for p in ring)
        for p in ring:
            document = by_model[id(p)]
            if id(document) in given:
                others = ", ".join(o.name for o in ring if o is not p)
                message = (
                    f"triggers in a ring with {others} ({loop}, and each triggers on what another "
                    "emits): their events would trigger each other forever; break the ring"
                )
                yield document.issue(("trigger", "on"), message)


def _emits(p: ProcessDefinition) -> list[str]:
    return [step.emit for step in p.steps if isinstance(step, EmitStep)]


def _total_cost(document: Document) -> Iterator[Issue]:
    """All expressions of one definition together (those that do not compile are reported on their own)."""
    p: ProcessDefinition = document.model  # type: ignore[assignment]
    total = 0
    for source in expression_sources(p):
        try:
            total += compile_expression(source).cost
        except ExpressionError:
            continue
    if total > MAX_DEFINITION_COST:
        limit = LimitExceeded(
            "definition_cost", f"its expressions' estimated worst-case costs add up to {total:,} units"
        )
        yield document.issue(("steps",), f"the definition is refused: {limit}")


def expression_sources(p: ProcessDefinition) -> list[str]:
    """Every CEL expression of a definition."""
    out = [p.trigger.key, *([p.trigger.when] if p.trigger.when else []), *p.vars.values()]
    for step in p.steps:
        out += step_expressions(step)
    return out


def _targets(step: object) -> Iterator[tuple[Path, str]]:
    if getattr(step, "next", None):
        yield ("next",), step.next  # type: ignore[attr-defined]
    if isinstance(step, WaitForStep) and step.on_timeout:
        yield ("on_timeout",), step.on_timeout
    if isinstance(step, ChoiceStep):
        for j, branch in enumerate(step.choice):
            yield ("choice", j, "next"), branch.next
        if step.otherwise:
            yield ("otherwise",), step.otherwise


def _unreachable(p: ProcessDefinition) -> list[int]:
    index = {step.id: i for i, step in enumerate(p.steps)}
    seen, todo = {0}, [0]
    while todo:
        for target in successors(p, todo.pop()):
            j = index.get(target)
            if j is not None and j not in seen:
                seen.add(j)
                todo.append(j)
    return [i for i in range(len(p.steps)) if i not in seen]


def _expression(document: Document, path: Path, source: str | None, declared: set[str],
                *, vars_allowed: bool = True) -> Iterator[Issue]:  # fmt: skip
    if source is None:
        return
    try:
        expression = compile_expression(source)
    except ExpressionError as error:
        yield document.issue(path, str(error))
        return
    unknown = unknown_variables(expression)
    if unknown:
        yield document.issue(
            path, f"unknown variable(s) {', '.join(unknown)}: expressions see event, vars, now, tenant"
        )
    if "vars" in expression.variables and not vars_allowed:
        yield document.issue(
            path, "cannot use vars here: they are computed from the trigger event, after this"
        )
        return
    for name in sorted(expression.vars_fields - declared):
        yield document.issue(path, f"vars.{name} is never set: declare it under vars or set it in a set step")


def _command(document: Document, at: Path, step: DoStep, declared: set[str]) -> Iterator[Issue]:
    spec = COMMANDS.get(step.do)
    if spec is None:
        close = difflib.get_close_matches(step.do, COMMANDS, n=2)
        hint = f"; did you mean {' or '.join(close)}?" if close else " (see `crmflow catalog`)"
        yield document.issue((*at, "do"), f"unknown command {step.do!r}{hint}")
        return
    fields = spec.payload.model_fields
    for name in step.args:
        if name not in fields:
            yield document.issue(
                (*at, "args", name), f"{step.do} has no argument {name!r}: it takes {', '.join(fields)}"
            )
    missing = [name for name, f in fields.items() if f.is_required() and name not in step.args]
    if missing:
        yield document.issue((*at, "args"), f"{step.do} needs {', '.join(missing)}")
    for name, source in step.args.items():
        yield from _expression(document, (*at, "args", name), source, declared)


def _event_type(document: Document, path: Path, event_type: str, emitted: set[str]) -> Iterator[Issue]:
    """A type that looks like a domain event must be one (inbound types are free-form)."""
    if event_type in EVENT_CLASSES or event_type in emitted:
        return
    if event_type.startswith(DOMAIN_PREFIXES):
        close = difflib.get_close_matches(event_type, list(EVENT_CLASSES), n=2)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        yield document.issue(path, f"unknown event type {event_type!r}{hint}")


def _correlated(document: Document, at: Path, step: WaitForStep) -> Iterator[Issue]:
    """A wait whose condition ignores vars would wake every instance waiting here."""
    try:
        expression = compile_expression(step.wait_for.when or "true")
    except ExpressionError:
        return  # reported as it is
    if "vars" not in expression.variables:
        yield document.issue(
            (*at, "wait_for", "when"),
            "the condition never looks at vars, so it cannot tell this instance's events from any other's; "
            "correlate it (e.g. event.subject == vars.lead), or leave out `when` to match the instance key",
        )


def _business_add(document: Document, path: Path, step: object, calendars: set[str]) -> Iterator[Issue]:
    """business_add() with a literal duration and calendar (processes.business_time): both must be good."""
    for source in step_expressions(step):  # type: ignore[arg-type]
        for duration, calendar in literal_calls(source):
            if calendar not in calendars:
                yield document.issue(path, f"business_add(): calendar {calendar!r} is not defined in the files given")
            try:
                parse_duration(duration)
            except DurationError as error:
                yield document.issue(path, f"business_add(): {error}")


def _calendar(document: Document, path: Path, timeout: object, calendars: set[str]) -> Iterator[Issue]:
    name = getattr(timeout, "calendar", None)
    if name is not None and name not in calendars:
        yield document.issue((*path, "calendar"), f"calendar {name!r} is not defined in the files given")
