"""Which fields of ``event.data`` a CEL expression reads, and which one an event lacks.

Validation checks these reads against the catalogue's event schemas
(processes/field_refs.py); at run time, when the CEL runtime fails on a
missing key (it says only ``'amount'``), the same reads let the message name
the event type and the field. Only ``event.data.a.b`` selections are seen:
``event.data["a"]`` is left alone (crmflow's syntax tree does not keep
string literals).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from crmflow.processes.cel_syntax import Node


@dataclass(frozen=True)
class FieldRead:
    """``event.data.<path>``; a probe is the argument of ``has()``: it asks if the last field is there."""

    path: tuple[str, ...]
    probe: bool = False

    @property
    def dotted(self) -> str:
        return ".".join(self.path)


def event_data_reads(tree: Node) -> tuple[FieldRead, ...]:
    """Every ``event.data.FIELD...`` of the expression, in the order written, each once."""
    found: list[FieldRead] = []
    # An explicit stack: a long chain of && is a tree as deep as it is long.
    stack: list[tuple[Node, bool]] = [(tree, False)]
    while stack:
        node, in_has = stack.pop()
        path = _data_path(node)
        if path is not None:
            if path:
                read = FieldRead(path, probe=in_has)
                if read not in found:
                    found.append(read)
            continue
        probe = node.kind == "call" and node.name == "has" and node.target is None and len(node.args) == 1
        children = [(child, probe) for child in node.args]
        if node.target is not None:
            children.append((node.target, False))
        stack.extend(reversed(children))
    return tuple(found)


def _data_path(node: Node) -> tuple[str, ...] | None:
    """The fields after ``event.data`` when the node selects them (``()``: ``event.data`` itself)."""
    names: list[str] = []
    while node.kind == "select" and node.args:
        names.append(node.name)
        node = node.args[0]
    if node.kind != "ident" or node.name != "event" or not names or names[-1] != "data":
        return None
    return tuple(reversed(names[:-1]))


def missing_field(reads: tuple[FieldRead, ...], event: dict[str, Any], key: object = None) -> str | None:
    """What the event lacks that the expression reads, as a message naming its type; None if nothing.

    ``key`` is the key the runtime could not find, when it says: only a read that stops at that key is
    named (a missing ``vars`` entry, or a map literal's, is not the event's doing).
    """
    event_type = event.get("type") or "the event"
    data = event.get("data")
    if not isinstance(data, dict):
        return f"{event_type} carries no data" if reads else None
    for read in reads:
        # has(event.data.a.b) needs event.data.a; it asks about b.
        path = read.path[:-1] if read.probe else read.path
        value: Any = data
        for depth, name in enumerate(path):
            if not isinstance(value, dict):
                break  # not a map: the runtime's own message (no such overload) says it better
            if name not in value:
                if key is None or key == name:
                    return f"{event_type} has no field {'.'.join(path[: depth + 1])!r}"
                break
            value = value[name]
    return None
