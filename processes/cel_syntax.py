"""A CEL syntax tree for crmflow's own checks: nesting and worst-case cost, before the runtime sees it.

The ``common-expression-language`` runtime gives no syntax tree, and its
parser and evaluator recurse natively: an expression deep enough crashes the
process (SIGSEGV), not with an exception. So an expression is first checked
here, in Python, without recursion that its size could exhaust: the length
and bracket nesting by a plain scan, then a parser whose recursion is bounded
by the nesting just checked. Only then is it compiled by the runtime.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from crmflow.aggregates.limits import MAX_EXPRESSION_CHARS, MAX_EXPRESSION_NESTING, LimitExceeded

MACROS = frozenset({"map", "filter", "all", "exists", "exists_one"})
# Brackets and ?: together: each level of either costs the parser a few frames.
MAX_PARSE_DEPTH = 2 * MAX_EXPRESSION_NESTING

TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<string>[rRbB]{0,2}(?:\"\"\"(?:[^\\]|\\.)*?\"\"\"|'''(?:[^\\]|\\.)*?'''
                           |"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'))
  | (?P<number>0x[0-9a-fA-F]+u?|\d+\.\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+|\d+u?)
  | (?P<name>[A-Za-z_]\w*)
  | (?P<op>\|\||&&|==|!=|<=|>=|\.\?|[-+*/%<>!?:.,()\[\]{}])
    """,
    re.VERBOSE | re.DOTALL,
)
STRING_PREFIX = re.compile(r"^[rRbB]{0,2}")


class CelSyntaxError(ValueError):
    """crmflow's parser cannot read the expression (the runtime's own message is usually better)."""


@dataclass(frozen=True)
class Node:
    """One node: ``kind`` is lit, ident, select, index, call, list, map, op, cond or comprehension."""

    kind: str
    name: str = ""  # the operator, function, field, identifier or macro
    args: tuple[Node, ...] = ()
    target: Node | None = None  # the receiver of a method call or comprehension
    items: int = 0  # a list or map literal's entries
    extra: dict[str, str] = field(default_factory=dict, compare=False)


def check_shape(source: str) -> None:
    """Length and bracket nesting, by a scan: no parser runs on what is over either limit."""
    if len(source) > MAX_EXPRESSION_CHARS:
        raise LimitExceeded("expression_chars", f"the expression has {len(source):,} characters")
    depth = deepest = 0
    quote = ""
    i = 0
    while i < len(source):
        char = source[i]
        if quote:
            if char == "\\":
                i += 1
            elif source.startswith(quote, i):
                i += len(quote) - 1
                quote = ""
        elif char in "\"'":
            quote = char * 3 if source.startswith(char * 3, i) else char
            i += len(quote) - 1
        elif char in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in ")]}":
            depth -= 1
        i += 1
    if deepest > MAX_EXPRESSION_NESTING:
        raise LimitExceeded("expression_nesting", f"the expression nests brackets {deepest} deep")


def tokens(source: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    position = 0
    while position < len(source):
        match = TOKEN.match(source, position)
        if match is None:
            raise CelSyntaxError(f"unexpected character {source[position]!r} at {position + 1}")
        kind = match.lastgroup or ""
        if kind != "space":
            out.append((kind, match.group()))
        position = match.end()
    out.append(("end", ""))
    return out


def parse(source: str) -> Node:
    """The syntax tree of an expression that passed ``check_shape``."""
    return _Parser(tokens(source)).parse()


class _Parser:
    """Recursive descent, one method per precedence level; chains of operators are loops."""

    def __init__(self, toks: list[tuple[str, str]]) -> None:
        self.toks = toks
        self.at = 0
        self.depth = 0

    def parse(self) -> Node:
        node = self.expr()
        if self.peek() != "":
            raise CelSyntaxError(f"unexpected {self.peek()!r}")
        return node

    def peek(self) -> str:
        return self.toks[self.at][1]

    def take(self, expected: str | None = None) -> tuple[str, str]:
        tok = self.toks[self.at]
        if expected is not None and tok[1] != expected:
            raise CelSyntaxError(f"expected {expected!r}, found {tok[1] or 'the end'!r}")
        if tok[0] == "end":
            raise CelSyntaxError("the expression ends too early")
        self.at += 1
        return tok

    def expr(self) -> Node:
        self.depth += 1
        if self.depth > MAX_PARSE_DEPTH:
            raise LimitExceeded("expression_nesting", "the expression nests brackets and ?: too deep")
        try:
            condition = self.binary(0)
            if self.peek() != "?":
                return condition
            self.take("?")
            then = self.binary(0)
            self.take(":")
            return Node("cond", "?:", (condition, then, self.expr()))
        finally:
            self.depth -= 1

    LEVELS: tuple[frozenset[str], ...] = (
        frozenset({"||"}),
        frozenset({"&&"}),
        frozenset({"<", "<=", ">", ">=", "==", "!=", "in"}),
        frozenset({"+", "-"}),
        frozenset({"*", "/", "%"}),
    )

    def binary(self, level: int) -> Node:
        if level == len(self.LEVELS):
            return self.unary()
        node = self.binary(level + 1)
        while self.peek() in self.LEVELS[level] and self.toks[self.at][0] in ("op", "name"):
            op = self.take()[1]
            node = Node("op", op, (node, self.binary(level + 1)))
        return node

    def unary(self) -> Node:
        ops = []
        while self.peek() in ("!", "-") and self.toks[self.at][0] == "op":
            ops.append(self.take()[1])
        node = self.member()
        for op in reversed(ops):
            node = Node("op", f"unary{op}", (node,))
        return node

    def member(self) -> Node:
        node = self.primary()
        while True:
            if self.peek() in (".", ".?"):
                self.take()
                name = self.take()[1]
                if self.peek() == "(":
                    args = self.arguments(")")
                    kind = "comprehension" if name in MACROS and len(args) >= 2 else "call"
                    node = Node(kind, name, args, target=node)
                else:
                    node = Node("select", name, (node,))
            elif self.peek() == "[":
                self.take("[")
                index = self.expr()
                self.take("]")
                node = Node("index", "[]", (node, index))
            else:
                return node

    def arguments(self, close: str) -> tuple[Node, ...]:
        self.take()
        args: list[Node] = []
        while self.peek() != close:
            args.append(self.expr())
            if self.peek() != ",":
                break
            self.take(",")
        self.take(close)
        return tuple(args)

    def primary(self) -> Node:
        kind, text = self.toks[self.at]
        if kind in ("string", "number"):
            self.take()
            if kind == "string":
                body = text[len(STRING_PREFIX.match(text).group()) :]  # type: ignore[union-attr]
                return Node("lit", "string", items=len(body))
            return Node("lit", "number")
        if text == "(":
            self.take("(")
            node = self.expr()
            self.take(")")
            return node
        if text == "[":
            items = self.arguments("]")
            return Node("list", "[]", items, items=len(items))
        if text == "{":
            return self.map_literal()
        if text == ".":  # a leading dot names the root scope: .event
            self.take(".")
            kind, text = self.toks[self.at]
        if kind == "name":
            self.take()
            if self.peek() == "(":
                return Node("call", text, self.arguments(")"))
            if self.peek() == "{" and text[:1].isupper():  # message construction: Type{field: value}
                entries = self.map_literal()
                return Node("call", text, entries.args)
            return Node("lit" if text in ("true", "false", "null") else "ident", text)
        raise CelSyntaxError(f"unexpected {text or 'end of expression'!r}")

    def map_literal(self) -> Node:
        self.take("{")
        parts: list[Node] = []
        while self.peek() != "}":
            parts.append(self.expr())
            self.take(":")
            parts.append(self.expr())
            if self.peek() != ",":
                break
            self.take(",")
        self.take("}")
        return Node("map", "{}", tuple(parts), items=len(parts) // 2)
