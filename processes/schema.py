"""The process language as pydantic models: one model per document kind.

``kind: Process`` (the automation), ``kind: Calendar`` (working hours and
holidays for business-time timeouts) and ``kind: ProcessTest`` (a designer's
own test of a process). Their JSON Schema, for editors, is generated from these
models by processes/schema_file.py (``crmflow process schema``).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal, Union
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from crmflow.processes.durations import parse_duration

Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$", description="lower-case letters, digits, '-'")]
StepId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$", description="step id (or `end`)")]
Cel = Annotated[str, Field(min_length=1, description="a CEL expression over event, vars, now, tenant")]
EventType = Annotated[str, Field(min_length=1, max_length=200, description="a domain or inbound event type")]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
HOURS = re.compile(r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-4]):[0-5]\d$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


def _check_duration(value: str) -> str:
    parse_duration(value)
    return value


IsoDuration = Annotated[str, Field(description="ISO 8601 duration (P2D, PT4H) or 8h / 90m / 2d")]


class BusinessTime(Strict):
    """Time that only runs within a calendar's working hours (SLA clocks)."""

    business: IsoDuration
    calendar: Slug

    _duration = field_validator("business")(_check_duration)


Timeout = Union[IsoDuration, BusinessTime]


class Retry(Strict):
    """Retry a refused command: up to ``max`` more attempts, waiting ``backoff`` doubled each time."""

    max: int = Field(ge=0, le=20)
    backoff: IsoDuration = "PT1M"

    _duration = field_validator("backoff")(_check_duration)


class StepBase(Strict):
    id: StepId
    next: StepId | None = Field(None, description="the step to go to next, or `end`; default: the next in the list")


class DoStep(StepBase):
    """Run a catalogue command; ``args`` are CEL expressions."""

    do: str = Field(description="a command of the catalogue, e.g. lead.assign")
    args: dict[str, Cel] = Field(default_factory=dict)
    retry: Retry | None = None


class EmitStep(StepBase):
    """Publish a new event to the events topic; ``data`` values are CEL expressions."""

    emit: Annotated[str, Field(pattern=r"^[A-Z][A-Za-z0-9]+$", description="PascalCase event type")]
    data: dict[str, Cel] = Field(default_factory=dict)


class WaitFor(Strict):
    on: list[EventType] = Field(min_length=1)
    when: Cel | None = None


class WaitForStep(StepBase):
    """Wait for an event matching ``when``; optionally give up after ``timeout``."""

    wait_for: WaitFor
    timeout: Timeout | None = None
    on_timeout: StepId | None = Field(None, description="the step to go to on timeout (default: fail)")
    pause_on: list[EventType] = Field(default_factory=list, description="events that stop the timeout clock (e.g. CaseOnHold)")
    resume_on: list[EventType] = Field(default_factory=list, description="events that restart it (e.g. CaseResumed)")

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, value: Timeout | None) -> Timeout | None:
        return _check_duration(value) if isinstance(value, str) else value


class WaitStep(StepBase):
    """Wait for a duration (calendar or business time)."""

    wait: Timeout

    @field_validator("wait")
    @classmethod
    def _wait(cls, value: Timeout) -> Timeout:
        return _check_duration(value) if isinstance(value, str) else value


class Branch(Strict):
    when: Cel
    next: StepId


class ChoiceStep(StepBase):
    """Go to the first branch whose ``when`` holds, else to ``otherwise`` (default: the next step)."""

    choice: list[Branch] = Field(min_length=1)
    otherwise: StepId | None = None


class SetStep(StepBase):
    """Set process variables from CEL expressions."""

    set: dict[Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]*$")], Cel] = Field(min_length=1)


STEP_KINDS = ("do", "emit", "wait_for", "wait", "choice", "set")


def step_kind(value: Any) -> str | None:
    """Which kind of step a mapping is: the one step key it has."""
    if isinstance(value, BaseModel):
        return next(k for k in STEP_KINDS if k in type(value).model_fields)
    if isinstance(value, dict):
        present = [k for k in STEP_KINDS if k in value]
        return present[0] if len(present) == 1 else None
    return None


Step = Annotated[
    Union[
        Annotated[DoStep, Tag("do")],
        Annotated[EmitStep, Tag("emit")],
        Annotated[WaitForStep, Tag("wait_for")],
        Annotated[WaitStep, Tag("wait")],
        Annotated[ChoiceStep, Tag("choice")],
        Annotated[SetStep, Tag("set")],
    ],
    Discriminator(
        step_kind,
        custom_error_type="step_kind",
        custom_error_message="a step has exactly one of: do, emit, wait_for, wait, choice, set",
    ),
]


class Trigger(Strict):
    on: list[EventType] = Field(min_length=1, description="event types that start an instance")
    when: Cel | None = Field(None, description="CEL condition on the trigger event")
    key: Cel = Field("event.subject", description="instance correlation key (CEL)")


class ProcessDefinition(Strict):
    """``kind: Process``: an automation that reacts to events."""

    api_version: Literal["crmflow/v1"] = Field(alias="apiVersion")
    kind: Literal["Process"]
    name: Slug
    version: int = Field(ge=1, description="running instances keep the version they started on")
    tenant: Annotated[str, Field(pattern=r"^(\*|[a-z0-9][a-z0-9_-]{0,62})$")] = "*"
    description: str = ""
    trigger: Trigger
    vars: dict[Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]*$")], Cel] = Field(default_factory=dict)
    steps: list[Step] = Field(min_length=1)


class Calendar(Strict):
    """``kind: Calendar``: when business time runs."""

    api_version: Literal["crmflow/v1"] = Field(alias="apiVersion")
    kind: Literal["Calendar"]
    name: Slug
    timezone: str = Field(description="IANA time zone, e.g. Europe/Berlin")
    hours: dict[Weekday, list[Annotated[str, Field(pattern=HOURS.pattern)]]] = Field(
        description="working intervals per weekday, e.g. mon: ['09:00-12:00', '13:00-17:00']"
    )
    holidays: list[date] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone (e.g. Europe/Berlin)") from None
        return value

    @field_validator("hours")
    @classmethod
    def _intervals(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for day, intervals in value.items():
            for interval in intervals:
                start, end = interval.split("-")
                if start >= end:
                    raise ValueError(f"{day} {interval}: the interval ends before it starts")
        return value


# A segmentation's measures: the per-account figures the profitability report computes (exact decimals).
MEASURES = ("revenue", "expected_revenue", "profit", "margin", "lifetime_value", "usage")
Measure = Literal["revenue", "expected_revenue", "profit", "margin", "lifetime_value", "usage"]


def _exact(value: Any) -> Any:
    """A threshold is written as a quoted decimal ("50000.00") or a whole number: a YAML float (0.1) is
    binary and inexact, so it is refused rather than rounded silently."""
    if isinstance(value, bool) or isinstance(value, float):
        raise ValueError(f"{value!r} is a binary float: write the threshold as a quoted decimal, e.g. \"0.10\"")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, str):
        try:
            number = Decimal(value)
        except InvalidOperation:
            raise ValueError(f"{value!r} is not a decimal number (e.g. \"50000.00\")") from None
        if not number.is_finite():
            raise ValueError(f"{value!r} is not a finite number")
        return number
    raise ValueError(f"{value!r} is not a number: write a quoted decimal, e.g. \"50000.00\"")


Threshold = Annotated[Decimal, BeforeValidator(_exact)]


class Bounds(Strict):
    """A measure's range: at least (>=) and / or below (<), exact decimals."""

    at_least: Threshold | None = None
    below: Threshold | None = None

    @model_validator(mode="after")
    def _some_bound(self) -> Bounds:
        if self.at_least is None and self.below is None:
            raise ValueError("give at_least, below or both")
        if self.at_least is not None and self.below is not None and self.at_least >= self.below:
            raise ValueError(f"at_least {self.at_least} is not below {self.below}: no value fits")
        return self


class SegmentRule(Strict):
    """A segment: an account is in the first segment whose every bound holds (none: the catch-all)."""

    name: Slug
    description: str = ""
    when: dict[Measure, Bounds] = Field(default_factory=dict, description="measure: {at_least, below}")


class UsageTier(Strict):
    name: Slug
    at_least: Threshold = Field(Decimal(0), description="usage (quantity in the latest period) from here up")


class Segmentation(Strict):
    """``kind: Segmentation``: segments from value and usage, as data; evaluated exactly with Decimal."""

    api_version: Literal["crmflow/v1"] = Field(alias="apiVersion")
    kind: Literal["Segmentation"]
    name: Slug
    version: int = Field(ge=1)
    tenant: Annotated[str, Field(pattern=r"^(\*|[a-z0-9][a-z0-9_-]{0,62})$")] = "*"
    description: str = ""
    segments: list[SegmentRule] = Field(min_length=1, description="in order: the first that fits wins")
    usage_tiers: list[UsageTier] = Field(default_factory=list, description="highest at_least first")

    @model_validator(mode="after")
    def _well_formed(self) -> Segmentation:
        names = [s.name for s in self.segments]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"segment names must be unique: {', '.join(twice)} appear more than once")
        if self.segments[-1].when:
            raise ValueError(f"the last segment ({self.segments[-1].name}) must have no `when`: it takes every "
                             "account no other segment fits, so that each account has a segment")
        for rule in self.segments[:-1]:
            if not rule.when:
                raise ValueError(f"segment {rule.name} has no `when` but is not last: the segments after it "
                                 "could never be chosen")
        floors = [t.at_least for t in self.usage_tiers]
        if floors != sorted(floors, reverse=True) or len(set(floors)) != len(floors):
            raise ValueError("usage_tiers go from the highest at_least down, each lower than the one before")
        if self.usage_tiers and self.usage_tiers[-1].at_least != 0:
            raise ValueError("the last usage tier must start at 0, so that every account has a tier")
        return self


class GivenEvent(Strict):
    type: EventType
    subject: str | None = None
    id: str | None = None
    source: str = "/test"
    data: dict[str, Any] = Field(default_factory=dict)


class Expectation(Strict):
    commands: list[dict[str, Any]] | None = Field(None, description="[{do: NAME, args: {...}}] issued since the last expect")
    emits: list[dict[str, Any]] | None = Field(None, description="[{emit: TYPE, data: {...}}] emitted since the last expect")
    state: Literal["running", "waiting", "completed", "failed"] | None = None
    step: StepId | None = None
    vars: dict[str, Any] | None = None


class TestAction(Strict):
    """One line of a test: an event arrives, the clock moves, or an expectation."""

    event: GivenEvent | None = None
    advance: IsoDuration | None = None
    expect: Expectation | None = None


class ProcessTest(Strict):
    """``kind: ProcessTest``: given events and clock moves, expected commands, emits and state."""

    api_version: Literal["crmflow/v1"] = Field(alias="apiVersion")
    kind: Literal["ProcessTest"]
    name: str = Field(min_length=1)
    process: Slug = Field(description="the name of the process under test")
    tenant: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")] = "acme"
    start: datetime = Field(description="the simulated clock's start, with a time zone")
    steps: list[TestAction] = Field(min_length=1)


DOCUMENT_KINDS: dict[str, type[Strict]] = {
    "Process": ProcessDefinition,
    "Calendar": Calendar,
    "ProcessTest": ProcessTest,
    "Segmentation": Segmentation,
}


def step_expressions(step: Step) -> list[str]:
    """Every CEL expression of a step: its arguments, data, variables set, wait condition and branches."""
    out: list[str] = []
    for attribute in ("args", "data", "set"):
        out += list((getattr(step, attribute, None) or {}).values())
    if isinstance(step, WaitForStep) and step.wait_for.when:
        out.append(step.wait_for.when)
    for branch in getattr(step, "choice", None) or []:
        out.append(branch.when)
    return out

