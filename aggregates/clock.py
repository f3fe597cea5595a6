"""Event time: when a domain event happened.

Normally the wall clock. Simulations, the demo and tests run days of SLA timers
in seconds, so the application can pin event time for the duration of one
command; the pinned time then stamps both the event ``timestamp`` (the
CloudEvent ``time``) and the business timestamps that commands work out.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timezone

_pinned: ContextVar[datetime | None] = ContextVar("crmflow_event_time", default=None)


def event_time() -> datetime:
    """The time to stamp on an event created now: the pinned time or the wall clock."""
    return _pinned.get() or datetime.now(timezone.utc)


@contextmanager
def pinned_event_time(at: datetime) -> Iterator[datetime]:
    if at.tzinfo is None:
        raise ValueError("event time must be timezone-aware")
    token = _pinned.set(at)
    try:
        yield at
    finally:
        _pinned.reset(token)


def system_clock() -> datetime:
    return datetime.now(timezone.utc)
