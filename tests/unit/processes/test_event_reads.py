"""An event's CEL context holds what the deployed expressions read, and every expression sees no difference."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from crmflow.processes.compiled import CompiledProcess
from crmflow.processes.event_reads import EVERYTHING, EventReads
from crmflow.processes.expressions import ExpressionError, Scope, compile_expression
from crmflow.processes.schema import ProcessDefinition

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
EVENT = {
    "specversion": "1.0", "id": "e-1", "type": "LeadCreated", "subject": "L-1", "tenantid": "acme",
    "source": "/web", "time": NOW.isoformat(),
    "data": {"source": "web", "score": 72, "email": "ana@example.com", "company": "Acme",
             "address": {"city": "Lyon", "country": "FR"}, "tags": ["vip", "eu"]},
}  # fmt: skip

EXPRESSIONS = [
    'event.data.source == "web" && event.data.score >= 50',
    "event.subject + '/' + event.type",
    "has(event.data.phone)",
    "has(event.data.address.city)",
    'event.data.address.country == "FR"',
    "event.data.tags.exists(t, t == 'vip')",
    "size(event.data)",
    'event.data["email"]',
    'event["subject"]',
    "event.data.amount > 10",  # a missing field: the same error either way
    "[1, 2].map(x, x * event.data.score)",
]


def outcome(source: str, scope: Scope) -> Any:
    try:
        return compile_expression(source).evaluate(scope)
    except ExpressionError as error:
        return f"error: {error}"


@pytest.mark.parametrize("source", EXPRESSIONS)
def test_an_expression_given_only_the_fields_it_reads_gives_what_it_gives_on_the_whole_event(source: str) -> None:
    reads = compile_expression(source).event_fields
    assert outcome(source, Scope(EVENT, NOW, "acme", reads=reads)) == outcome(source, Scope(EVENT, NOW, "acme"))


def test_selected_fields_are_all_that_is_kept_of_the_event_and_of_its_data() -> None:
    reads = compile_expression('event.data.source == "web" && event.subject != ""').event_fields
    assert reads == EventReads(fields=frozenset({"data", "subject"}), data_fields=frozenset({"source"}))
    assert reads.view(EVENT) == {"subject": "L-1", "data": {"source": "web"}}
    # A nested field keeps the whole of its first-level field: address, city and country.
    nested = compile_expression("event.data.address.city").event_fields
    assert nested.view(EVENT)["data"] == {"address": {"city": "Lyon", "country": "FR"}}


@pytest.mark.parametrize(
    ("source", "whole_data", "whole_event"),
    [
        ("size(event.data)", True, False),
        ('event.data["email"]', True, False),
        ("event.data.exists(k, k == 'score')", True, False),
        ('event["subject"]', False, True),
        ("[event].size() > 0", False, True),
        ("[1].exists(event, event > 0) || true", False, True),  # a macro variable named event: all, to be safe
    ],
)
def test_an_event_or_its_data_used_other_than_by_a_named_field_is_read_whole(
    source: str, whole_data: bool, whole_event: bool
) -> None:
    reads = compile_expression(source).event_fields
    assert reads.everything is whole_event
    if not whole_event:
        assert reads.data_fields is None and reads.view(EVENT)["data"] == EVENT["data"]


def test_a_definition_reads_the_union_of_its_trigger_key_vars_and_steps_and_one_whole_read_makes_it_all() -> None:
    def compiled(extra: str) -> CompiledProcess:
        return CompiledProcess(ProcessDefinition.model_validate({
            "apiVersion": "crmflow/v1", "kind": "Process", "name": "p", "version": 1,
            "trigger": {"on": ["LeadCreated"], "when": "event.data.score >= 50"},
            "vars": {"lead": "event.subject"},
            "steps": [{"id": "note", "set": {"seen": extra}}],
        }))  # fmt: skip

    narrow = compiled("event.data.company").event_fields
    assert narrow.fields == {"data", "subject"} and narrow.data_fields == {"score", "company"}
    assert compiled("event").event_fields == EVERYTHING
    assert (narrow | EVERYTHING) is EVERYTHING


def test_an_engine_converts_of_each_event_type_what_the_definitions_it_starts_or_wakes_read() -> None:
    from crmflow.processes.engine import Engine, MemoryInstances
    from crmflow.processes.simulation import RecordingCommands, RecordingEmits

    follow_up = CompiledProcess(ProcessDefinition.model_validate({
        "apiVersion": "crmflow/v1", "kind": "Process", "name": "follow-up", "version": 1,
        "trigger": {"on": ["LeadCreated"], "when": 'event.data.source == "web"'},
        "steps": [{"id": "wait", "wait_for": {"on": ["LeadStatusChanged"],
                                             "when": 'event.subject == vars.lead && event.data.status == "working"'}}],
        "vars": {"lead": "event.subject"},
    }))  # fmt: skip
    engine = Engine([follow_up], MemoryInstances(), RecordingCommands(), RecordingEmits())
    # One definition starts on LeadCreated and waits for LeadStatusChanged: both see what it reads, no more.
    for event_type in ("LeadCreated", "LeadStatusChanged"):
        assert engine.event_fields[event_type].view(EVENT) == {"subject": "L-1", "data": {"source": "web"}}
    assert "CaseOpened" not in engine.event_fields
    started = engine.handle(EVENT, NOW)
    woken = engine.handle({**EVENT, "id": "e-2", "type": "LeadStatusChanged", "data": {"status": "working"}}, NOW)
    assert [e.kind for e in started] == ["started", "entered", "waiting"]
    assert [e.kind for e in woken] == ["completed"]
