"""Conditions and values are CEL, compiled once, never Python eval."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from crmflow.processes.expressions import ExpressionError, Scope, compile_expression, unknown_variables

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
EVENT = {"type": "LeadCreated", "subject": "L-1", "data": {"source": "webinar", "score": 40}}


def test_a_trigger_condition_sees_the_event() -> None:
    condition = compile_expression('event.data.source in ["web", "webinar"] && event.data.score >= 30')
    assert condition.evaluate(Scope(EVENT, NOW, "acme")) is True


def test_one_event_scope_serves_many_instances_with_their_own_vars() -> None:
    waiting = compile_expression("event.subject == vars.lead")
    scope = Scope(EVENT, NOW, "acme")
    assert [waiting.evaluate(scope.with_vars({"lead": lead})) for lead in ("L-2", "L-1")] == [False, True]


def test_values_are_built_from_event_vars_tenant_and_now() -> None:
    value = compile_expression('{"owner": vars.team + "-" + tenant, "due": now + duration("48h")}')
    result = value.evaluate(Scope(EVENT, NOW, "acme", {"team": "web"}))
    assert result["owner"] == "web-acme"
    assert result["due"].replace(tzinfo=timezone.utc) == datetime(2026, 3, 4, 9, 0, tzinfo=timezone.utc)


def test_the_variables_an_expression_uses_are_known_before_it_runs() -> None:
    expression = compile_expression('vars.lead == event.subject && [1, 2].all(x, x > 0) && "vars.fake" != ""')
    assert expression.variables == {"vars", "event"}
    assert expression.vars_fields == {"lead"}
    assert unknown_variables(compile_expression("evnt.subject + foo")) == ["evnt", "foo"]


def test_a_runtime_error_names_the_expression() -> None:
    with pytest.raises(ExpressionError, match=r"'event.data.missing \+ 1' failed"):
        compile_expression("event.data.missing + 1").evaluate(Scope(EVENT, NOW, "acme"))


def test_python_is_not_reachable_from_an_expression() -> None:
    with pytest.raises(ExpressionError):
        compile_expression('__import__("os").system("true")').evaluate(Scope(EVENT, NOW, "acme"))


def test_a_missing_event_field_is_named_with_the_event_type_not_as_a_bare_key() -> None:
    scope = Scope({"type": "OpportunityStageChanged", "data": {"stage": "proposal"}}, NOW, "acme", {"deal": "o-1"})
    with pytest.raises(ExpressionError) as missing:
        compile_expression("event.data.amount >= 100000.0").evaluate(scope)
    assert str(missing.value) == "'event.data.amount >= 100000.0' failed: OpportunityStageChanged has no field 'amount'"
    converted = Scope({"type": "LeadConverted", "data": {"opportunity": {"name": "Pilot"}}}, NOW, "acme")
    with pytest.raises(ExpressionError, match="failed: LeadConverted has no field 'opportunity.amount'$"):
        compile_expression("event.data.opportunity.amount").evaluate(converted)
    # A variable that is missing is not blamed on the event, though the event lacks a field read later.
    with pytest.raises(ExpressionError, match=r"failed: 'nope'$"):
        compile_expression("vars.nope == 1 ? event.data.amount : 0").evaluate(scope)
