"""CEL expressions: compiled once per definition, evaluated against a shared context.

Never Python ``eval``: expressions are Common Expression Language, run by the
``common-expression-language`` runtime (Rust). Converting an event into a CEL
context costs far more than evaluating a condition (benchmarks/README.md), so
a ``Scope`` converts each event once and every definition's conditions are
evaluated against it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import cel

VARIABLES = frozenset({"event", "vars", "now", "tenant"})
# Names bound by comprehension macros: [..].map(x, ...) binds x.
MACRO_BINDING = re.compile(r"\.(?:map|filter|all|exists|exists_one)\(\s*([A-Za-z_]\w*)\s*,")
VARS_FIELD = re.compile(r"\bvars\.([A-Za-z_]\w*)")
STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')


class ExpressionError(ValueError):
    """A CEL expression does not compile, names something unknown, or fails to evaluate."""


@dataclass(frozen=True)
class Expression:
    source: str
    program: Any
    variables: frozenset[str]
    vars_fields: frozenset[str]

    def evaluate(self, scope: Scope | cel.Context) -> Any:
        context = scope.context if isinstance(scope, Scope) else scope
        try:
            return self.program.execute(context)
        except Exception as error:  # the runtime raises RuntimeError, TypeError, ValueError
            raise ExpressionError(f"{self.source!r} failed: {error}") from None


def compile_expression(source: str) -> Expression:
    try:
        program = cel.compile(source)
    except (ValueError, RuntimeError) as error:
        detail = str(error).split("ERROR: ", 1)[-1].split("\n", 1)[0]
        raise ExpressionError(f"{source!r} is not valid CEL: {detail}") from None
    bound = set(MACRO_BINDING.findall(source))
    unquoted = STRING.sub('""', source)
    return Expression(
        source=source,
        program=program,
        variables=frozenset(v for v in program.variables() if v not in bound),
        vars_fields=frozenset(VARS_FIELD.findall(unquoted)),
    )


def unknown_variables(expression: Expression, allowed: frozenset[str] = VARIABLES) -> list[str]:
    return sorted(expression.variables - allowed)


class Scope:
    """The variables one evaluation sees: event, vars, now, tenant."""

    def __init__(self, event: dict[str, Any], now: datetime, tenant: str, vars: dict[str, Any] | None = None) -> None:
        self.event = event  # the Python dict too: reading it back from CEL would convert it again
        self.context = cel.Context(variables={"event": event, "now": now, "tenant": tenant, "vars": vars or {}})

    def with_vars(self, vars: dict[str, Any]) -> Scope:
        """The same event, another instance's variables (only the variables are converted)."""
        self.context.add_variable("vars", vars)
        return self
