"""The limits every entry enforces: what crmflow stores, the relay and every consumer can handle.

One set of numbers, checked where data comes in (the intake, the HTTP API,
commands, process definitions and what they emit), so that nothing is stored
that the relay cannot publish or a consumer cannot read. The relay's encoder
(orjson) refuses nesting deeper than 255 and integers outside 64 bits; JSON
readers in other languages often stop at 2^63; Kafka's default message size
is 1 MB. The limits sit well inside all of these. docs/operations.md lists
them; a refusal always names the limit and its value.

Parsing is guarded too: the stdlib's ``json`` raises RecursionError on deep
nesting and ValueError on integers of over 4,300 digits, and accepts NaN and
Infinity, which no other JSON reader does. ``parse_json`` turns each of these
into a ``LimitExceeded`` or a ``ValueError`` with a sentence.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

# Inbound messages and event data.
MAX_MESSAGE_BYTES = 256 * 1024  # one inbound message or HTTP body
MAX_JSON_DEPTH = 32  # objects and arrays inside each other
MAX_STRING_CHARS = 64 * 1024  # one string value or object key
MAX_OBJECT_KEYS = 1_000  # keys of one object (CloudEvent attributes included)
MAX_ARRAY_ITEMS = 10_000  # items of one array
MIN_INTEGER, MAX_INTEGER = -(2**63), 2**63 - 1  # a signed 64-bit integer, what Java's long and orjson read
# A stored event, rendered for the wire: far below Kafka's default 1 MB message, with room for headers.
MAX_EVENT_BYTES = 512 * 1024

# Process definitions.
MAX_DEFINITION_BYTES = 256 * 1024
MAX_DEFINITION_STEPS = 200
MAX_YAML_DEPTH = 32
MAX_EXPRESSION_CHARS = 4 * 1024
MAX_EXPRESSION_NESTING = 32  # brackets inside each other
MAX_COMPREHENSION_NESTING = 2  # .map / .filter / .all / .exists inside each other
# CEL cost (processes/cost.py): one unit is about one evaluated node or copied item (30-100 ns measured).
MAX_EXPRESSION_COST = 1_000_000  # Kubernetes' per-call CEL limit; here at most about 0.1 s
MAX_DEFINITION_COST = 10_000_000  # all expressions of one definition together
MAX_COMPREHENSION_ITEMS = 1_000  # a list that .map/.filter/... iterate: map and filter are quadratic in it
# Process run time (processes/engine.py).
MAX_STEPS_PER_EVENT = 500  # steps one instance runs for one event or timer
MAX_EVENT_HANDLING_MS = 1_000  # time one instance may spend on one event, checked between steps
MAX_EVENT_TOTAL_MS = 10_000  # time all the instances one event wakes or starts may spend on it
MAX_PROCESS_HOPS = 16  # process emits in a row, each caused by the last


@dataclass(frozen=True)
class Limit:
    """A named limit, so that every refusal can say which one and how much."""

    name: str
    value: int
    unit: str

    def describe(self) -> str:
        return f"{self.name} ({self.value:,} {self.unit})"


LIMITS: dict[str, Limit] = {
    limit.name: limit
    for limit in (
        Limit("message_bytes", MAX_MESSAGE_BYTES, "bytes"),
        Limit("json_depth", MAX_JSON_DEPTH, "levels"),
        Limit("string_chars", MAX_STRING_CHARS, "characters"),
        Limit("object_keys", MAX_OBJECT_KEYS, "keys"),
        Limit("array_items", MAX_ARRAY_ITEMS, "items"),
        Limit("integer_range", MAX_INTEGER, "largest magnitude (signed 64-bit)"),
        Limit("event_bytes", MAX_EVENT_BYTES, "bytes"),
        Limit("definition_bytes", MAX_DEFINITION_BYTES, "bytes"),
        Limit("definition_steps", MAX_DEFINITION_STEPS, "steps"),
        Limit("yaml_depth", MAX_YAML_DEPTH, "levels"),
        Limit("expression_chars", MAX_EXPRESSION_CHARS, "characters"),
        Limit("expression_nesting", MAX_EXPRESSION_NESTING, "levels"),
        Limit("comprehension_nesting", MAX_COMPREHENSION_NESTING, "levels"),
        Limit("expression_cost", MAX_EXPRESSION_COST, "cost units"),
        Limit("definition_cost", MAX_DEFINITION_COST, "cost units"),
        Limit("comprehension_items", MAX_COMPREHENSION_ITEMS, "items"),
        Limit("steps_per_event", MAX_STEPS_PER_EVENT, "steps"),
        Limit("event_handling_ms", MAX_EVENT_HANDLING_MS, "milliseconds"),
        Limit("event_total_ms", MAX_EVENT_TOTAL_MS, "milliseconds"),
        Limit("process_hops", MAX_PROCESS_HOPS, "hops"),
    )
}


class LimitExceeded(ValueError):
    """A value is over one of crmflow's limits; ``limit`` names which."""

    def __init__(self, limit: str, detail: str) -> None:
        self.limit = LIMITS[limit]
        super().__init__(f"{detail}; the limit is {self.limit.describe()}")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number (RFC 8259 has no NaN or Infinity)")


def parse_json(text: str | bytes) -> Any:
    """Parse JSON within crmflow's limits. Raises LimitExceeded, or ValueError for what is not JSON."""
    size = len(text)
    if size > MAX_MESSAGE_BYTES:
        raise LimitExceeded("message_bytes", f"the JSON text is {size:,} bytes")
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise LimitExceeded("json_depth", "the JSON text is nested too deep to read") from None
    except json.JSONDecodeError:
        raise
    except ValueError as error:
        if "digits" in str(error):  # int("1" * 5000): Python's guard against quadratic conversion
            raise LimitExceeded("integer_range", "a JSON integer has more digits than a 64-bit one") from None
        raise
    check_json_value(value)
    return value


def check_json_value(value: Any, *, where: str = "") -> None:
    """Check a parsed JSON value against the limits (iteratively: no recursion for a deep value to exhaust).

    ``where`` prefixes the path in the message (``data`` gives ``data.items[3]``). The walk that every
    accepted value takes builds no paths; only a refused value is walked again to say where."""
    if not _within_limits(value):
        _explain(value, where)


def _within_limits(value: Any) -> bool:
    kind = type(value)  # most values checked are one scalar (a process variable, an argument)
    if kind is str:
        return len(value) <= MAX_STRING_CHARS and "\x00" not in value
    if kind is bool or value is None:
        return True
    stack: list[tuple[Any, int]] = [(value, 0)]
    pop, push = stack.pop, stack.append
    while stack:
        item, depth = pop()
        kind = type(item)
        if kind is str:
            if len(item) > MAX_STRING_CHARS or "\x00" in item:
                return False
        elif kind is int:
            if not MIN_INTEGER <= item <= MAX_INTEGER:
                return False
        elif kind is dict:
            if depth >= MAX_JSON_DEPTH or len(item) > MAX_OBJECT_KEYS:
                return False
            for key, child in item.items():
                if type(key) is not str or len(key) > MAX_STRING_CHARS or "\x00" in key:
                    return False
                if child is not None and child is not True and child is not False:
                    push((child, depth + 1))
        elif kind is list or kind is tuple:
            if depth >= MAX_JSON_DEPTH or len(item) > MAX_ARRAY_ITEMS:
                return False
            for child in item:
                if child is not None and child is not True and child is not False:
                    push((child, depth + 1))
        elif kind is float:
            if not math.isfinite(item):
                return False
        elif kind is not bool and item is not None and not _is_other_scalar(item):
            return False  # subclasses of the JSON types and the rest: explained by the careful walk
    return True


def _is_other_scalar(item: Any) -> bool:
    """Values a command's data may hold that are not JSON types but are written as strings (Decimal, UUID,
    dates): nothing to check. A subclass of str, int, dict or list is checked by the careful walk instead."""
    return not isinstance(item, (str, int, float, dict, list, tuple))


def _explain(value: Any, where: str) -> None:
    """Walk again, building paths, and raise for the first value over a limit."""
    stack: list[tuple[Any, str, int]] = [(value, where, 0)]
    while stack:
        item, path, depth = stack.pop()
        at = path or "(root)"
        if isinstance(item, bool) or item is None:
            continue
        if isinstance(item, float):
            if not math.isfinite(item):
                raise ValueError(f"the number at {at} is {item}, which JSON cannot carry")
            continue
        if isinstance(item, int):
            if not MIN_INTEGER <= item <= MAX_INTEGER:
                raise LimitExceeded("integer_range", f"the integer at {at} is outside 64 bits")
        elif isinstance(item, str):
            if len(item) > MAX_STRING_CHARS:
                raise LimitExceeded("string_chars", f"the string at {at} has {len(item):,} characters")
            if "\x00" in item:
                raise ValueError(
                    f"the string at {at} holds U+0000 (NUL), which PostgreSQL cannot store as text"
                )
        elif isinstance(item, dict):
            if depth >= MAX_JSON_DEPTH:
                raise LimitExceeded("json_depth", f"{at} is nested more than {MAX_JSON_DEPTH} levels deep")
            if len(item) > MAX_OBJECT_KEYS:
                raise LimitExceeded("object_keys", f"the object at {at} has {len(item):,} keys")
            for key, child in item.items():
                key = str(key)
                if len(key) > MAX_STRING_CHARS:
                    raise LimitExceeded("string_chars", f"a key at {at} has {len(key):,} characters")
                if "\x00" in key:
                    raise ValueError(
                        f"a key at {at} holds U+0000 (NUL), which PostgreSQL cannot store as text"
                    )
                stack.append((child, f"{path}.{key}" if path else key, depth + 1))
        elif isinstance(item, (list, tuple)):
            if depth >= MAX_JSON_DEPTH:
                raise LimitExceeded("json_depth", f"{at} is nested more than {MAX_JSON_DEPTH} levels deep")
            if len(item) > MAX_ARRAY_ITEMS:
                raise LimitExceeded("array_items", f"the array at {at} has {len(item):,} items")
            stack.extend((child, f"{path}[{i}]", depth + 1) for i, child in enumerate(item))
