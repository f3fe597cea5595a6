"""A definition ready to run: every CEL expression compiled once, steps indexed."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from crmflow.processes.calendar import BusinessCalendar
from crmflow.processes.durations import parse_duration
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
        self.key = compile_expression(d.trigger.key)
        self.vars = {name: compile_expression(source) for name, source in d.vars.items()}
        self.index = {step.id: i for i, step in enumerate(d.steps)}
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
            return start + parse_duration(timeout)
        return self._calendar(timeout).add(start, parse_duration(timeout.business))

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
