"""Which parts of an event CEL expressions can read, so an event's CEL context converts only those.

The runtime converts a Python dict into a CEL map entry by entry, and an
event's conversion costs more than the conditions evaluated on it
(benchmarks/README.md, engine.py). A definition reads a few fields: its
trigger, key, vars and steps name them (``event.subject``,
``event.data.score``). The engine hands CEL an event holding the union of
what every deployed version reads; anything else is left out.

Conservative on purpose: an expression that uses ``event`` or
``event.data`` other than by selecting a named field (``event["data"]``,
``size(event.data)``, ``event.data.exists(...)``, a macro variable named
``event``) reads all of it, and then every event is converted whole. A
field left out is one no expression names, so no expression can tell:
values, ``has()`` and missing-field errors are what they were.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from crmflow.processes.cel_syntax import Node


@dataclass(frozen=True)
class EventReads:
    """All of the event, or its named top-level fields and, under ``data``, named fields or all of it."""

    everything: bool = False
    fields: frozenset[str] = frozenset()
    data_fields: frozenset[str] | None = frozenset()  # None: all of data

    def __or__(self, other: EventReads) -> EventReads:
        if self.everything or other.everything:
            return EVERYTHING
        if self.data_fields is None or other.data_fields is None:
            data_fields = None
        else:
            data_fields = self.data_fields | other.data_fields
        return EventReads(fields=self.fields | other.fields, data_fields=data_fields)

    def view(self, event: dict[str, Any]) -> dict[str, Any]:
        """The event as CEL sees it: the fields read, nothing else (the event itself when it is all read)."""
        if self.everything:
            return event
        view = {name: event[name] for name in self.fields if name in event}
        data = view.get("data")
        if self.data_fields is not None and type(data) is dict:
            view["data"] = {name: data[name] for name in self.data_fields if name in data}
        return view


EVERYTHING = EventReads(everything=True)
NOTHING = EventReads()


def event_reads(tree: Node) -> EventReads:
    """What of ``event`` one expression reads (its syntax tree from processes/cel_syntax.py)."""
    reads = NOTHING
    stack = [tree]  # an explicit stack: a long chain of && is a tree as deep as it is long
    while stack:
        node = stack.pop()
        names: list[str] = []
        root = node
        while root.kind == "select" and root.args:
            names.append(root.name)
            root = root.args[0]
        if root.kind == "ident" and root.name == "event":
            reads = reads | _selected(names[::-1])
            if reads.everything:
                return reads
            continue
        stack.extend(root.args)
        if root.target is not None:
            stack.append(root.target)
    return reads


def _selected(path: list[str]) -> EventReads:
    if not path:
        return EVERYTHING  # the event itself, indexed or passed on
    if path[0] != "data":
        return EventReads(fields=frozenset(path[:1]))
    if len(path) == 1:
        return EventReads(fields=frozenset({"data"}), data_fields=None)
    return EventReads(fields=frozenset({"data"}), data_fields=frozenset(path[1:2]))
