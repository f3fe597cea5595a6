"""The CloudEvents 1.0 rules for attribute names, values and times, as the intake applies them.

Pure functions that return why something is wrong (None when it is right), so
that the inbound checks and the Kafka binding word their refusals the same.

- A name is 1-20 of ``a-z`` and ``0-9``. The specification allows lower-case
  letters and digits only and recommends at most 20 characters; crmflow makes
  the recommendation the rule, so that whatever it republishes every SDK and
  every broker header mapping will take.
- A time is RFC 3339 (``2026-12-01T10:00:00Z``, ``2026-12-01T10:00:00.5+01:00``):
  a full date, ``T`` (or ``t``), a full time with seconds, an optional
  fraction, and ``Z`` or a ``+hh:mm``/``-hh:mm`` offset. ``datetime.fromisoformat`` is not
  used: it also takes ISO 8601 forms RFC 3339 does not have
  (``20261201T100000+0000``, ``2026-12-01T10:00+00:00``). Two things RFC 3339
  allows are refused, a lower-case ``z`` and the leap second ``:60``: the
  time is kept as received, and crmflow's readers of it (whatif, simulate,
  the reports) read it with Python's datetime, which has neither.
- An extension's value is a string, a boolean or an integer of 32 bits (the
  CloudEvents type system; everything else has a string form too).
"""

from __future__ import annotations

import re
from calendar import monthrange
from typing import Any

MAX_NAME_CHARS = 20
ATTRIBUTE_NAME = re.compile(r"[a-z0-9]{1,%d}" % MAX_NAME_CHARS)
# [0-9], not \d: \d matches any Unicode digit ("٢٠٢٦"). The ranges are in the pattern (one regex is
# cheaper than eight int() calls, and every inbound event with a time goes through it); only a day past
# the 28th needs its month looked at.
RFC3339 = re.compile(
    r"([0-9]{4})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt]"
    r"(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]+)?"
    r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
)
INT32 = range(-(2**31), 2**31)
# Members of a structured event that are not attributes.
DATA_MEMBERS = frozenset({"data", "data_base64"})
JSON_KINDS = {dict: "object", list: "array", float: "number", type(None): "null"}


def name_problem(name: str) -> str | None:
    """Why ``name`` is not a CloudEvents attribute name crmflow accepts, or None."""
    if ATTRIBUTE_NAME.fullmatch(name):
        return None
    return (f"attribute name {_short(name)} is not a CloudEvents attribute name: use 1-{MAX_NAME_CHARS} "
            "lower-case letters a-z and digits 0-9")  # fmt: skip


def is_rfc3339(text: str) -> bool:
    """Whether ``text`` is an RFC 3339 date-time (with its zone: RFC 3339 has no local times), without a
    lower-case z or a leap second (see above)."""
    match = RFC3339.fullmatch(text)
    if match is None:
        return False
    day = int(match[3])
    return day <= 28 or day <= monthrange(max(int(match[1]), 1), int(match[2]))[1]


def extension_value_problem(name: str, value: Any) -> str | None:
    """Why an extension's value is not of a CloudEvents type, or None."""
    if isinstance(value, bool) or isinstance(value, str):
        return None
    if isinstance(value, int):
        return None if value in INT32 else f"extension {name} is an integer outside 32 bits: {_short(value)}"
    kind = JSON_KINDS.get(type(value), type(value).__name__)
    return f"extension {name} is a JSON {kind}; an extension is a string, a boolean or an integer"


def _short(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 60 else f"{shown[:60]}..."
