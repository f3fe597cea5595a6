"""A definition ready to run: every CEL expression compiled once, steps indexed."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from crmflow.processes.calendar import BusinessCalendar
from crmflow.processes.cel_syntax import CelSyntaxError, parse, tokens
from crmflow.processes.durations import parse_duration
from crmflow.processes.event_reads import NOTHING, EventReads
from crmflow.processes.expressions import Expression, Scope, compile_expression
from crmflow.processes.graph import END, successors
from crmflow.processes.schema import BusinessTime, ProcessDefinition, Step, WaitForStep, step_expressions

SUBJECT_EQUALS_VAR = re.compile(r"event\.subject\s*==\s*vars\.(\w+)|vars\.(\w+)\s*==\s*event\.subject")


class MissingCalendarError(LookupError):
    """A business-time timeout names a calendar that is not loaded."""


@dataclass
class CompiledProcess:
    definition: ProcessDefinition
    calendars: dict[str, BusinessCalendar] = field(default_factory=dict)

    def __post_init__(self) -> None:
        d = self.definition
        self.when = compile_expression(d.trigger.when) if d.trigger.when else None
        self.when_guard = trigger_guard(d.trigger.when) if d.trigger.when else None
        self.key = compile_expression(d.trigger.key)
        self.vars = {name: compile_expression(source) for name, source in d.vars.items()}
        self.index = {step.id: i for i, step in enumerate(d.steps)}
        self._durations: dict[str, timedelta] = {}
        # Every CEL string of every step, compiled now: a broken one fails at load, not at 3 a.m.
        self.expressions: dict[str, Expression] = {}
        self.round_robin_steps: set[str] = set()
        self.business_add_steps: set[str] = set()  # steps calling business_add() (processes.business_time)
        for step in d.steps:
            for source in step_expressions(step):
                self.expressions.setdefault(source, compile_expression(source))
                if "round_robin(" in source:
                    self.round_robin_steps.add(step.id)
                if "business_add(" in source:
                    self.business_add_steps.add(step.id)
        self.event_fields: EventReads = NOTHING  # what of an event any of its expressions reads
        for expression in (self.when, self.key, *self.vars.values(), *self.expressions.values()):
            if expression is not None:
                self.event_fields |= expression.event_fields

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def version(self) -> int:
        return self.definition.version

    def uses_round_robin(self, step_id: str) -> bool:
        return step_id in self.round_robin_steps

    def uses_business_add(self, step_id: str) -> bool:
        return step_id in self.business_add_steps

    def applies_to(self, tenant: str) -> bool:
        return self.definition.tenant in ("*", tenant)

    def triggered_by(self, scope: Scope) -> bool:
        return self.when is None or self.when.evaluate(scope) is True

    def step(self, step_id: str) -> Step:
        return self.definition.steps[self.index[step_id]]

    def first_step(self) -> str:
        return self.definition.steps[0].id

    def following(self, step_id: str) -> str:
        """Where a step goes when it does not branch: its `next`, else the next in the list."""
        return successors(self.definition, self.index[step_id])[0]

    def evaluate(self, source: str, scope: Scope) -> Any:
        return self.expressions[source].evaluate(scope)

    def due(self, start: datetime, timeout: str | BusinessTime) -> datetime:
        if isinstance(timeout, str):
            return start + self._duration(timeout)
        return self._calendar(timeout).add(start, self._duration(timeout.business))

    def _duration(self, text: str) -> timedelta:
        """Parsed once per definition: every instance reaching a timeout asks again."""
        found = self._durations.get(text)
        if found is None:
            found = self._durations[text] = parse_duration(text)
        return found

    def remaining(self, now: datetime, due: datetime, timeout: str | BusinessTime) -> timedelta:
        """How much of a timeout is left at ``now`` (in business time when it is business time)."""
        if isinstance(timeout, str):
            return max(due - now, timedelta(0))
        return self._calendar(timeout).between(now, due)

    def due_after(self, now: datetime, remaining: timedelta, timeout: str | BusinessTime) -> datetime:
        if isinstance(timeout, str):
            return now + remaining
        return self._calendar(timeout).add(now, remaining)

    def _calendar(self, timeout: BusinessTime) -> BusinessCalendar:
        calendar = self.calendars.get(timeout.calendar)
        if calendar is None:
            raise MissingCalendarError(f"calendar {timeout.calendar!r} is not loaded")
        return calendar

    def retry_delay(self, backoff: str, attempt: int) -> timedelta:
        return parse_duration(backoff) * (2 ** max(0, attempt - 1))

    def correlation(self, step: WaitForStep, vars: dict[str, Any], key: str) -> str | None:
        """The subject an event must have to wake this wait, when the wait says so.

        No condition: the instance key. A condition that requires
        ``event.subject == vars.NAME`` (in a conjunction, never under ``||``):
        that variable's value. Anything else: None, and every event of the
        type is checked against the condition.
        """
        when = step.wait_for.when
        if when is None:
            return key
        if "||" in when:
            return None
        match = SUBJECT_EQUALS_VAR.search(when)
        value = vars.get(match.group(1) or match.group(2)) if match else None
        return str(value) if value is not None else None

    def is_end(self, step_id: str) -> bool:
        return step_id == END


# A string literal as crmflow reads it back: plain quotes, no escapes, no r/b prefix.
PLAIN_STRING = re.compile(r'^"([^"\\]*)"$|^\'([^\'\\]*)\'$')


def trigger_guard(source: str) -> tuple[tuple[str, ...], frozenset[str]] | None:
    """A condition the event must meet for ``source`` to be true: (event.data path, the strings it may hold).

    Found when the expression's first top-level conjunct is ``event.data.X == "c"``,
    ``"c" == event.data.X`` or ``event.data.X in ["c1", "c2"]``. When X holds a
    string outside that set, that conjunct is false without error, so the whole
    conjunction is false, as CEL's ``&&`` says (``false && error`` is false): the
    engine need not evaluate it (processes/engine.py, TriggerIndex). None when unsure.
    """
    try:
        tree = parse(source)
        toks = tokens(source)
    except (CelSyntaxError, RecursionError):
        return None
    while tree.kind == "op" and tree.name == "&&":
        tree = tree.args[0]
    if tree.kind != "op" or tree.name not in ("==", "in"):
        return None
    # The first tokens are that conjunct (no parenthesis opens the expression), up to && or the end.
    texts = [text for _, text in toks]
    end = texts.index("&&") if "&&" in texts else len(texts) - 1
    head, kinds = texts[:end], [kind for kind, _ in toks[:end]]
    if tree.name == "==" and len(head) >= 3 and kinds[0] == "string" and head[1] == "==":
        path, values = _data_path(head[2:], kinds[2:]), [head[0]]
    else:
        at = head.index(tree.name) if tree.name in head else -1
        path = _data_path(head[:at], kinds[:at]) if at > 0 else None
        rest, rest_kinds = head[at + 1 :], kinds[at + 1 :]
        if tree.name == "==":
            values = rest if rest_kinds == ["string"] else []
        elif len(rest) >= 3 and rest[0] == "[" and rest[-1] == "]":
            inner, inner_kinds = rest[1:-1], rest_kinds[1:-1]
            values = inner[0::2]
            commas_ok = all(t == "," for t in inner[1::2])
            if not commas_ok or any(k != "string" for k in inner_kinds[0::2]):
                values = []
        else:
            values = []
    strings = [_plain(v) for v in values]
    if path is None or not strings or any(v is None for v in strings):
        return None
    return path, frozenset(strings)  # type: ignore[arg-type]


def _data_path(texts: list[str], kinds: list[str]) -> tuple[str, ...] | None:
    """``event . data . a . b`` as ("a", "b"); None for anything else."""
    if len(texts) < 5 or texts[:3] != ["event", ".", "data"] or len(texts) % 2 == 0:
        return None
    names, dots = texts[4::2], texts[3::2]
    if any(d != "." for d in dots) or any(k != "name" for k in kinds[4::2]):
        return None
    return tuple(names)


def _plain(literal: str) -> str | None:
    match = PLAIN_STRING.match(literal)
    if match is None:
        return None
    return match.group(1) if match.group(1) is not None else match.group(2)
