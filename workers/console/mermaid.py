"""A process definition drawn as a Mermaid flowchart: pure text, generated from the parsed YAML.

Every step is a node (its kind gives its shape), every way out of it an edge: ``next`` (or the following
step), a wait's event and its timeout (with the calendar of a business-time one), a choice's conditions
and ``otherwise``. Nothing is inferred that the definition does not say. Labels are escaped for Mermaid
(``#quot;`` and friends), so no text in a definition can end a label or add a node of its own.
"""

from __future__ import annotations

from typing import Any

from crmflow.processes.schema import BusinessTime, ProcessDefinition

END = "end"
_ESCAPES = {'"': "#quot;", "<": "#lt;", ">": "#gt;", "|": "#124;", "#": "#35;", "`": "#96;"}
MAX_LABEL = 90  # a long CEL expression is cut in the picture; the YAML beside it has it whole


def label(text: str) -> str:
    """Text as a quoted Mermaid label, each line cut to MAX_LABEL characters."""
    lines = []
    for line in str(text).splitlines() or [""]:
        line = line if len(line) <= MAX_LABEL else line[: MAX_LABEL - 1] + "…"
        lines.append("".join(_ESCAPES.get(ch, ch) for ch in line))
    return '"' + "<br/>".join(lines) + '"'


def duration(timeout: Any) -> str:
    if isinstance(timeout, BusinessTime):
        return f"{timeout.business} business time, calendar {timeout.calendar}"
    return str(timeout)


def _pairs(values: dict[str, str]) -> list[str]:
    return [f"{name} = {expression}" for name, expression in values.items()]


def _node(step: Any) -> tuple[str, str]:
    """The shape's brackets and the text of one step."""
    kind = type(step).__name__
    if kind == "DoStep":
        extra = [f"retry {step.retry.max}× every {step.retry.backoff}"] if step.retry else []
        return "[{}]", "\n".join([f"{step.id}: do {step.do}", *_pairs(step.args), *extra])
    if kind == "EmitStep":
        return "[/{}/]", "\n".join([f"{step.id}: emit {step.emit}", *_pairs(step.data)])
    if kind == "WaitForStep":
        lines = [f"{step.id}: wait for {', '.join(step.wait_for.on)}"]
        lines += [f"when {step.wait_for.when}"] if step.wait_for.when else []
        lines += [f"paused by {', '.join(step.pause_on)}"] if step.pause_on else []
        lines += [f"resumed by {', '.join(step.resume_on)}"] if step.resume_on else []
        return "{{{{{}}}}}", "\n".join(lines)
    if kind == "WaitStep":
        return "([{}])", f"{step.id}: wait {duration(step.wait)}"
    if kind == "ChoiceStep":
        return "{{{}}}", f"{step.id}: choice"
    return "[{}]", "\n".join([f"{step.id}: set", *_pairs(step.set)])  # SetStep


def flowchart(definition: ProcessDefinition) -> str:
    ids = {step.id: f"s{n}" for n, step in enumerate(definition.steps)}
    ids[END] = "finish"
    used_fail = False

    def target(step_id: str | None, n: int) -> str:
        if step_id is None:  # the next step in the list, or the end after the last
            return ids[definition.steps[n + 1].id] if n + 1 < len(definition.steps) else ids[END]
        return ids.get(step_id, ids[END])

    trigger = [f"on {', '.join(definition.trigger.on)}"]
    trigger += [f"when {definition.trigger.when}"] if definition.trigger.when else []
    lines = ["flowchart TD", f"  start([{label(chr(10).join(trigger))}])",
             f"  start --> {ids[definition.steps[0].id]}"]  # fmt: skip
    for n, step in enumerate(definition.steps):
        shape, text = _node(step)
        lines.append(f"  {ids[step.id]}{shape.format(label(text))}")
        kind = type(step).__name__
        if kind == "WaitForStep":
            lines.append(f"  {ids[step.id]} -->|{label(', '.join(step.wait_for.on))}| {target(step.next, n)}")
            if step.timeout is not None:
                out = ids.get(step.on_timeout or "", None)
                if out is None:
                    used_fail = True
                    out = "failed"
                lines.append(f"  {ids[step.id]} -.->|{label('timeout ' + duration(step.timeout))}| {out}")
        elif kind == "ChoiceStep":
            for branch in step.choice:
                lines.append(f"  {ids[step.id]} -->|{label(branch.when)}| {target(branch.next, n)}")
            otherwise = target(step.otherwise or step.next, n)
            lines.append(f"  {ids[step.id]} -->|{label('otherwise')}| {otherwise}")
        else:
            lines.append(f"  {ids[step.id]} --> {target(step.next, n)}")
    lines.append(f"  finish(({label('end')}))")
    if used_fail:
        lines.append(f"  failed(({label('failed')}))")
    return "\n".join(lines) + "\n"
