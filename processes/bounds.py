"""Size limits checked before a definition is parsed: its bytes, its YAML nesting, its step count.

PyYAML's composer and constructor recurse once per nesting level, so YAML
nested a few thousand deep ends in a RecursionError; a 50 MB definition takes
a minute to validate and slows every later deploy. The byte count needs no
parsing; the nesting is read from PyYAML's event stream, which its parser
produces with an explicit stack (no recursion) and which is left at the
first level too deep; the steps are counted on the node tree before pydantic
builds a model of every one.
"""

from __future__ import annotations

import yaml

from crmflow.aggregates.limits import (
    MAX_DEFINITION_BYTES,
    MAX_DEFINITION_STEPS,
    MAX_YAML_DEPTH,
    LimitExceeded,
)


def check_size(text: str) -> None:
    size = len(text.encode("utf-8"))
    if size > MAX_DEFINITION_BYTES:
        raise LimitExceeded("definition_bytes", f"the YAML text is {size:,} bytes")


def check_depth(text: str, loader: type[yaml.SafeLoader]) -> None:
    """LimitExceeded at the first collection nested deeper than MAX_YAML_DEPTH (yaml.YAMLError: not YAML)."""
    depth = 0
    for event in yaml.parse(text, Loader=loader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_YAML_DEPTH:
                line = event.start_mark.line + 1 if event.start_mark else 1
                error = LimitExceeded("yaml_depth", f"mappings and lists are nested {depth} deep here")
                error.line = line  # type: ignore[attr-defined]
                raise error
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def check_steps(node: yaml.Node) -> None:
    """A document's steps (a process's, or a test's actions), counted on its node tree."""
    if not isinstance(node, yaml.MappingNode):
        return
    for key, value in node.value:
        if (
            key.value == "steps"
            and isinstance(value, yaml.SequenceNode)
            and len(value.value) > MAX_DEFINITION_STEPS
        ):
            raise LimitExceeded("definition_steps", f"the document has {len(value.value):,} steps")
