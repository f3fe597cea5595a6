"""Durations as designers write them: ISO 8601 (``P2D``, ``PT4H30M``) or short (``8h``, ``90m``, ``2d``)."""

from __future__ import annotations

import re
from datetime import timedelta

ISO = re.compile(
    r"^P(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)
SHORT = re.compile(r"^(?:(?P<days>\d+)d)?\s*(?:(?P<hours>\d+)h)?\s*(?:(?P<minutes>\d+)m)?\s*(?:(?P<seconds>\d+)s)?$")


class DurationError(ValueError):
    """Not a duration crmflow understands."""


def parse_duration(text: str) -> timedelta:
    """``P2D`` → 2 days; ``PT8H`` → 8 hours; ``8h30m`` → 8.5 hours. Months and years are refused (ambiguous)."""
    value = text.strip()
    match = ISO.match(value) if value.startswith("P") else SHORT.match(value)
    if not value or match is None or not any(match.groupdict().values()):
        raise DurationError(
            f"{text!r} is not a duration: use ISO 8601 like P2D, PT4H, P1DT12H "
            "(no months or years), or short forms like 8h, 90m, 2d"
        )
    parts = {k: float(v) for k, v in match.groupdict().items() if v}
    return timedelta(**parts)
