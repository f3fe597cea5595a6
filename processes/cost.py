"""The worst-case cost of a CEL expression, estimated from its syntax tree the way Kubernetes does.

One cost unit is about one evaluated node (~50 ns in the Rust runtime). What
the estimate assumes, and what enforces each assumption:

* a list or map a comprehension iterates (``.map``, ``.filter``, ``.all``,
  ``.exists``, ``.exists_one``) has at most ``MAX_COMPREHENSION_ITEMS`` items
  unless it is a literal (then its own size); the engine refuses to evaluate
  an iterating expression in a scope holding a longer list;
* ``.map`` and ``.filter`` copy their growing result every iteration
  (measured: quadratic), so they cost n·body + n²/2; the others n·body;
* a string has at most ``MAX_STRING_CHARS`` characters (event data is
  checked on the way in, variables when they are set), and a string function
  (``contains``, ``matches``, ``split``...) costs a tenth of a unit per
  character, as in Kubernetes; ``split`` may give one item per two characters;
* ``x in list`` scans the list.

Without comprehensions CEL has no loops, so everything else costs one unit
per node. The estimate is an upper bound; what actually runs is usually far
less.
"""

from __future__ import annotations

from dataclasses import dataclass

from crmflow.aggregates.limits import (
    MAX_COMPREHENSION_ITEMS,
    MAX_COMPREHENSION_NESTING,
    MAX_STRING_CHARS,
    LimitExceeded,
)
from crmflow.processes.cel_syntax import Node

STRING_FUNCTIONS = frozenset(
    {"contains", "startsWith", "endsWith", "matches", "lowerAscii", "upperAscii", "replace", "split", "join",
     "trim", "indexOf", "lastIndexOf", "substring", "charAt", "format", "quote", "reverse"}
)  # fmt: skip
STRING_COST = MAX_STRING_CHARS // 10
QUADRATIC = frozenset({"map", "filter"})


@dataclass(frozen=True)
class Estimate:
    cost: int  # worst-case cost units
    size: int  # at most this many items, if the value is a list or map
    nesting: int  # comprehensions inside each other


def estimate(root: Node) -> Estimate:
    """Cost, size and comprehension nesting of a syntax tree, bottom up without recursion."""
    order: list[Node] = []
    todo = [root]
    while todo:  # children after parents in ``order``; walked backwards, children come first
        node = todo.pop()
        order.append(node)
        todo.extend(_children(node))
    done: dict[int, Estimate] = {}
    for node in reversed(order):
        done[id(node)] = _estimate(node, done)
    result = done[id(root)]
    if result.nesting > MAX_COMPREHENSION_NESTING:
        raise LimitExceeded(
            "comprehension_nesting", f"the expression nests .map/.filter/.all/.exists {result.nesting} deep"
        )
    return result


def _children(node: Node) -> list[Node]:
    return [*node.args, *([node.target] if node.target is not None else [])]


def _estimate(node: Node, done: dict[int, Estimate]) -> Estimate:
    args = [done[id(a)] for a in node.args]
    spent = 1 + sum(a.cost for a in args)
    nesting = max((a.nesting for a in args), default=0)
    if node.kind in ("list", "map"):
        return Estimate(spent, node.items, nesting)
    if node.kind == "comprehension":
        target = done[id(node.target)]  # type: ignore[arg-type]
        n = target.size
        body = 1 + sum(a.cost for a in args[1:])  # args[0] is the variable it binds
        cost = target.cost + n * body + (n * n // 2 if node.name in QUADRATIC else 0)
        size = n if node.name in QUADRATIC else 1
        return Estimate(cost, size, max(target.nesting, nesting + 1))
    if node.kind == "call":
        receiver = done[id(node.target)] if node.target is not None else None
        if receiver is not None:
            spent += receiver.cost
            nesting = max(nesting, receiver.nesting)
        if node.name in STRING_FUNCTIONS:
            size = MAX_STRING_CHARS // 2 if node.name == "split" else MAX_COMPREHENSION_ITEMS
            return Estimate(spent + STRING_COST, size, nesting)
        return Estimate(spent, MAX_COMPREHENSION_ITEMS, nesting)
    if node.kind == "op" and node.name == "+" and len(args) == 2:
        return Estimate(spent, args[0].size + args[1].size, nesting)  # list concatenation
    if node.kind == "op" and node.name == "in" and len(args) == 2:
        return Estimate(spent + args[1].size, 1, nesting)
    if node.kind == "cond":
        return Estimate(spent, max(args[1].size, args[2].size), nesting)
    if node.kind == "lit":
        return Estimate(1, 0, 0)
    return Estimate(spent, MAX_COMPREHENSION_ITEMS, nesting)  # ident, select, index: from data
