"""CEL expressions: compiled once per definition, evaluated against a shared context.

Never Python ``eval``: expressions are Common Expression Language, run by the
``common-expression-language`` runtime (Rust). Converting an event into a CEL
context costs far more than evaluating a condition (benchmarks/README.md), so
a ``Scope`` converts each event once and every definition's conditions are
evaluated against it.

Before the runtime compiles an expression, crmflow checks it (processes/cel_syntax.py):
the runtime's parser and evaluator recurse natively and crash the process
on an expression deep enough, and a few nested ``.map`` calls can run for
hours. Length, nesting and the worst-case cost (processes/cost.py) are
refused first, each naming its limit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import cel

from crmflow.aggregates.limits import MAX_COMPREHENSION_ITEMS, MAX_EXPRESSION_COST, LimitExceeded
from crmflow.processes.cel_syntax import CelSyntaxError, check_shape, parse
from crmflow.processes.cost import estimate
from crmflow.processes.event_reads import EVERYTHING, EventReads, event_reads
from crmflow.processes.field_paths import FieldRead, event_data_reads, missing_field

VARIABLES = frozenset({"event", "vars", "now", "tenant"})
# Names bound by comprehension macros: [..].map(x, ...) binds x.
MACRO_BINDING = re.compile(r"\.(?:map|filter|all|exists|exists_one)\(\s*([A-Za-z_]\w*)\s*,")
VARS_FIELD = re.compile(r"\bvars\.([A-Za-z_]\w*)")
STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
# Expressions that need no CEL run: a plain literal, or a field path into the event or the vars.
PLAIN_STRING = re.compile(r'"([^"\\\n]*)"|\'([^\'\\\n]*)\'')
INTEGER = re.compile(r"-?[0-9]{1,18}")
FIELD_PATH = re.compile(r"(event|vars)((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")
LITERALS = {"true": True, "false": False, "null": None}
# What CEL hands back unchanged from a Python value (a larger int comes back a double; maps and lists
# are converted): a path ending on another value is left to CEL.
PLAIN_TYPES = (str, bool, int, float, type(None))
INT64 = range(-(2**63), 2**63)


class ExpressionError(ValueError):
    """A CEL expression does not compile, names something unknown, or fails to evaluate."""


@dataclass(frozen=True)
class Expression:
    source: str
    program: Any
    variables: frozenset[str]
    vars_fields: frozenset[str]
    cost: int = 1  # worst-case cost units (processes/cost.py)
    iterates: bool = False  # has a comprehension: its inputs must be within MAX_COMPREHENSION_ITEMS
    event_reads: tuple[FieldRead, ...] = ()  # the event.data fields it reads (processes/field_paths.py)
    reads_vars: bool = True  # names vars anywhere (a macro binding named vars too): the scope binds them first
    shortcut: Shortcut | None = None  # a literal or a field path, answered without running CEL
    event_fields: EventReads = EVERYTHING  # what of the event it reads (processes/event_reads.py)

    def evaluate(self, scope: Scope | cel.Context) -> Any:
        if isinstance(scope, Scope):
            if self.shortcut is not None:
                found, value = self.shortcut.read(scope)
                if found:
                    return value
            if self.reads_vars and scope.vars_unbound:
                scope.bind_vars()
            context = scope.context
        else:
            context = scope
        if self.iterates and isinstance(scope, Scope):
            where, size = scope.largest_list()
            if size > MAX_COMPREHENSION_ITEMS:
                limit = LimitExceeded("comprehension_items", f"{where} holds a list of {size:,} items")
                raise ExpressionError(f"{self.source!r} iterates, and {limit}")
        try:
            return self.program.execute(context)
        except KeyError as error:  # a missing field: the runtime names only the key ('amount')
            event = scope.event if isinstance(scope, Scope) else {}
            lacking = missing_field(self.event_reads, event, *error.args[:1]) if event else None
            raise ExpressionError(f"{self.source!r} failed: {lacking or error}") from None
        except Exception as error:  # the runtime raises RuntimeError, TypeError, ValueError
            raise ExpressionError(f"{self.source!r} failed: {error}") from None


def compile_expression(source: str) -> Expression:
    """Checked (length, nesting, cost) before the runtime compiles it; ExpressionError names what is wrong."""
    tree = None
    try:
        check_shape(source)
        tree = parse(source)
        worst = estimate(tree)
    except LimitExceeded as error:
        raise ExpressionError(f"{_shown(source)} is refused: {error}") from None
    except RecursionError:  # not reached within the nesting limit; a caller deep in its own stack might
        limit = LimitExceeded("expression_nesting", "the expression nests too deep to read")
        raise ExpressionError(f"{_shown(source)} is refused: {limit}") from None
    except CelSyntaxError as unreadable:
        worst = None
        why = unreadable
    if worst is not None and worst.cost > MAX_EXPRESSION_COST:
        limit = LimitExceeded("expression_cost", f"its estimated worst-case cost is {worst.cost:,} units")
        raise ExpressionError(f"{_shown(source)} is refused: {limit} (docs/process-language.md, Limits)")
    try:
        program = cel.compile(source)  # within the limits above: no input that crashes it
    except (ValueError, RuntimeError) as error:
        detail = str(error).split("ERROR: ", 1)[-1].split("\n", 1)[0]
        raise ExpressionError(f"{_shown(source)} is not valid CEL: {detail}") from None
    if worst is None:  # valid CEL that crmflow's parser does not read: its cost is unknown, so it is refused
        raise ExpressionError(f"{_shown(source)}: crmflow cannot estimate its cost: {why}")
    bound = set(MACRO_BINDING.findall(source))
    unquoted = STRING.sub('""', source)
    return Expression(
        source=source,
        program=program,
        variables=frozenset(v for v in program.variables() if v not in bound),
        vars_fields=frozenset(VARS_FIELD.findall(unquoted)),
        cost=worst.cost,
        iterates=worst.nesting > 0,
        event_reads=event_data_reads(tree) if tree is not None else (),
        reads_vars="vars" in program.variables(),
        shortcut=shortcut(source),
        event_fields=event_reads(tree) if tree is not None else EVERYTHING,
    )


@dataclass(frozen=True)
class Shortcut:
    """What a literal or a field path evaluates to, read in Python: the same value CEL would give.

    Most expressions in a definition are of these two kinds (a step's
    arguments, the trigger's key, vars taken from the event), and running them
    through CEL costs a call into the runtime and, for vars, converting every
    variable of the instance first. A path that is missing, crosses something
    that is not a map, or ends on a value CEL would convert is not answered
    here: CEL evaluates it, so its value and its error are CEL's own.
    """

    constant: Any = None
    root: str | None = None  # "event" or "vars" for a path; None for a constant
    names: tuple[str, ...] = ()

    def read(self, scope: Scope) -> tuple[bool, Any]:
        if self.root is None:
            return True, self.constant
        value: Any = scope.event if self.root == "event" else scope.vars
        for name in self.names:
            if type(value) is not dict or name not in value:
                return False, None
            value = value[name]
        if type(value) is int and value not in INT64 or not isinstance(value, PLAIN_TYPES):
            return False, None
        return True, value


def shortcut(source: str) -> Shortcut | None:
    text = source.strip()
    if text in LITERALS:
        return Shortcut(constant=LITERALS[text])
    if INTEGER.fullmatch(text):
        return Shortcut(constant=int(text))
    if quoted := PLAIN_STRING.fullmatch(text):
        return Shortcut(constant=quoted.group(1) if quoted.group(1) is not None else quoted.group(2))
    if path := FIELD_PATH.fullmatch(text):
        return Shortcut(root=path.group(1), names=tuple(path.group(2)[1:].split(".")))
    return None


def _shown(source: str, keep: int = 80) -> str:
    """The expression as a message quotes it: a long one by its start and its length."""
    if len(source) <= keep:
        return repr(source)
    return f"{source[:keep]!r}... ({len(source):,} characters)"


def unknown_variables(expression: Expression, allowed: frozenset[str] = VARIABLES) -> list[str]:
    return sorted(expression.variables - allowed)


class Scope:
    """The variables one evaluation sees: event, vars, now, tenant."""

    def __init__(
        self, event: dict[str, Any], now: datetime, tenant: str, vars: dict[str, Any] | None = None,
        reads: EventReads = EVERYTHING,
    ) -> None:
        self.event = event  # the Python dict too: reading it back from CEL would convert it again
        self.vars = vars or {}
        # Only what the expressions to be evaluated read is converted (the caller says what that is).
        self.context = cel.Context(
            variables={"event": reads.view(event), "now": now, "tenant": tenant, "vars": self.vars}
        )
        self._largest: dict[str, tuple[str, int]] = {}
        self.vars_unbound = False  # self.vars changed since the context last converted them

    def with_vars(self, vars: dict[str, Any]) -> Scope:
        """The same event, another instance's variables (converted when an expression reading vars runs)."""
        self.vars = vars
        self.vars_unbound = True
        self._largest.pop("vars", None)
        return self

    def bind_vars(self) -> None:
        self.context.add_variable("vars", self.vars)
        self.vars_unbound = False

    def largest_list(self) -> tuple[str, int]:
        """Where the longest list or map in the event and the variables is, and its length."""
        for name, value in (("event", self.event), ("vars", self.vars)):
            if name not in self._largest:
                self._largest[name] = _largest(value, name)
        return max(self._largest.values(), key=lambda found: found[1])


def _largest(value: Any, where: str) -> tuple[str, int]:
    best = (where, 0)
    stack = [(value, where)]
    while stack:
        item, path = stack.pop()
        if isinstance(item, dict):
            best = max(best, (path, len(item)), key=lambda found: found[1])
            stack.extend((child, f"{path}.{key}") for key, child in item.items())
        elif isinstance(item, list):
            best = max(best, (path, len(item)), key=lambda found: found[1])
            stack.extend((child, f"{path}[{i}]") for i, child in enumerate(item))
    return best
