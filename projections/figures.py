"""The arithmetic of report figures: exact decimals from the database to the analyst's screen.

No figure is a float. Money is a ``Decimal`` rounded half-up to the cent
(after summing, never before), ratios to four places, hours and days to two
and one. Percentiles, the median among them, use the nearest-rank rule: the
p-th percentile of n sorted values is the value at rank ⌈p·n⌉, so it is always
a value that occurred (the median of 2, 4, 6, 8 h is 4 h, not 5 h).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
RATIO = Decimal("0.0001")
TENTH = Decimal("0.1")
SECONDS_PER_HOUR = Decimal(3600)


def money(value: object) -> Decimal:
    """A sum or amount as the database returns it (NUMERIC, decimal text, NULL) → Decimal cents."""
    return Decimal(0 if value is None else str(value)).quantize(CENT, ROUND_HALF_UP)


def weighted(percent_sum: object) -> Decimal:
    """A sum of amount × probability (a whole percent) → the weighted amount in cents.

    Divided once, after summing: each deal's share is not rounded on its own.
    """
    return money(Decimal(0 if percent_sum is None else str(percent_sum)) / 100)


def ratio(part: int | Decimal, whole: int | Decimal) -> Decimal | None:
    return (Decimal(part) / Decimal(whole)).quantize(RATIO, ROUND_HALF_UP) if whole else None


def mean(values: Sequence[Decimal], places: Decimal = CENT) -> Decimal | None:
    return (sum(values, Decimal(0)) / len(values)).quantize(places, ROUND_HALF_UP) if values else None


def instant(value: object) -> datetime | None:
    """A time column (TIMESTAMPTZ, ISO 8601 text, NULL) → an aware UTC datetime."""
    if value is None or value == "":
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


def iso(value: object) -> str | None:
    """A time column as the reports show it: ISO 8601 in UTC, the same text on both databases."""
    moment = instant(value)
    return moment.isoformat() if moment else None


def _seconds(span: timedelta) -> Decimal:
    # timedelta.total_seconds() is a float; the parts are exact integers.
    return Decimal(span.days * 86400 + span.seconds) + Decimal(span.microseconds) / 1_000_000


def hours(start: object, end: object) -> Decimal | None:
    """Exact hours from start to end (unrounded), None when either is missing."""
    first, last = instant(start), instant(end)
    if first is None or last is None:
        return None
    return _seconds(last - first) / SECONDS_PER_HOUR


def percentile(values: Iterable[Decimal], p: Decimal | str) -> Decimal | None:
    """Nearest rank: the value at rank ⌈p·n⌉ of the sorted values (p = 0.5 is the median), to 2 places."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = int((Decimal(p) * len(ordered)).to_integral_value(ROUND_CEILING))
    return ordered[max(1, min(len(ordered), rank)) - 1].quantize(CENT, ROUND_HALF_UP)
