"""Literals and field paths are answered without CEL, with exactly the value and the error CEL gives."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import cel
import pytest

from crmflow.processes.expressions import ExpressionError, Scope, compile_expression

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
EVENT = {
    "type": "LeadCreated", "subject": "L-1",
    "data": {"owner": "web-team", "score": 40, "hot": True, "ratio": 0.25, "gone": None,
             "huge": 2**70, "nested": {"city": "Lyon"}, "tags": ["a", "b"]},
}  # fmt: skip
VARS = {"lead": "L-1", "attempts": 3, "region": {"name": "EMEA"}}

SHORTCUTS = [
    '"team-3"', "'team-3'", '""', "true", "false", "null", "42", "-7", "007",
    "event.subject", "event.data.owner", "event.data.score", "event.data.hot", "event.data.ratio",
    "event.data.gone", "event.data.nested.city", "vars.lead", "vars.attempts", "vars.region.name",
]  # fmt: skip
LEFT_TO_CEL = [
    "event.data.huge",  # beyond int64: CEL gives a double
    "event.data.nested",  # a map: CEL converts it
    "event.data.tags",  # a list: likewise
    "vars.region",
    '"a\\"b"',  # an escape: CEL's to read
    "event.data.score + 1",
]


def cel_alone(source: str) -> Any:
    context = cel.Context(variables={"event": EVENT, "vars": VARS, "now": NOW, "tenant": "acme"})
    return cel.compile(source).execute(context)


@pytest.mark.parametrize("source", SHORTCUTS)
def test_a_literal_or_a_field_path_has_the_value_cel_gives_it_without_running_cel(source: str) -> None:
    expression = compile_expression(source)
    assert expression.shortcut is not None
    found, value = expression.shortcut.read(Scope(EVENT, NOW, "acme", dict(VARS)))
    assert found
    assert (type(value), value) == (type(cel_alone(source)), cel_alone(source))


@pytest.mark.parametrize("source", LEFT_TO_CEL)
def test_a_value_cel_would_convert_is_left_to_cel_and_comes_out_as_cel_gives_it(source: str) -> None:
    expression = compile_expression(source)
    scope = Scope(EVENT, NOW, "acme", dict(VARS))
    if expression.shortcut is not None:
        assert expression.shortcut.read(scope) == (False, None)
    assert expression.evaluate(scope.with_vars(dict(VARS))) == cel_alone(source)


def test_a_missing_field_read_by_a_shortcut_fails_with_cels_own_message() -> None:
    expression = compile_expression("event.data.amount")
    assert expression.shortcut is not None
    with pytest.raises(ExpressionError, match="amount"):
        expression.evaluate(Scope(EVENT, NOW, "acme"))


def test_a_path_through_something_that_is_not_a_map_is_cels_to_refuse() -> None:
    expression = compile_expression("event.subject.first")
    with pytest.raises(ExpressionError, match="event.subject.first"):
        expression.evaluate(Scope(EVENT, NOW, "acme"))


def test_a_vars_path_reads_the_vars_of_the_instance_now_in_scope_without_converting_them() -> None:
    lead = compile_expression("vars.lead")
    scope = Scope(EVENT, NOW, "acme")
    assert [lead.evaluate(scope.with_vars({"lead": name})) for name in ("L-2", "L-3")] == ["L-2", "L-3"]
    assert scope.vars_unbound  # nothing was converted for CEL: the shortcut read the dict
