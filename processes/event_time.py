"""When an event happened, as the engine reads it: its CloudEvents ``time``.

Timers run from the time of the event that started them, not from when a
worker got round to it, so a backlog or an outage does not push every SLA
back by the lag, and the live engine agrees with ``simulate``, ``test`` and
``whatif``. An event without a readable time (none, not a string, no time
zone: RFC 3339 requires one) is taken to have happened when it is handled.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any


def occurred_at(event: dict[str, Any], fallback: datetime) -> datetime:
    """The event's own time in UTC, or ``fallback`` (the handling clock) when it has none that can be read."""
    raw = event.get("time")
    if isinstance(raw, datetime):
        parsed = raw
    elif isinstance(raw, str):
        try:
            parsed = datetime.fromisoformat(raw)  # Python 3.11 reads RFC 3339, "Z" included
        except ValueError:
            return fallback
    else:
        return fallback
    if parsed.tzinfo is None:
        return fallback  # a local time of unknown zone: guessing UTC could be hours off
    return parsed.astimezone(timezone.utc)
