"""Event metadata: who or what caused an event (tenant, command, caller, correlation, cause).

Set for the duration of one command (or one process step) and taken by every
event created meanwhile as its ``meta`` field, the way crmflow.aggregates.clock
gives events their time: the aggregates never see it, and no event is changed
after it was made.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

_current: ContextVar[dict[str, Any] | None] = ContextVar("crmflow_event_metadata", default=None)


def current_metadata() -> dict[str, Any]:
    """The metadata for an event created now ({} outside a command or process step)."""
    return _current.get() or {}


@contextmanager
def event_metadata(meta: dict[str, Any]) -> Iterator[dict[str, Any]]:
    token = _current.set(meta)
    try:
        yield meta
    finally:
        _current.reset(token)
