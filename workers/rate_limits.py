"""Fair share per tenant: a token bucket for each tenant, refilled at its rate, holding at most its burst.

Written by hand rather than taken from a library: the bucket is ten lines of arithmetic, and the
well-kept rate limiters either keep their state in a server (Redis, memcached), limit one caller
rather than one bucket per key, or read the time themselves, so that a test cannot move their
clock by hand.

The clock counts seconds on a monotonic clock (``time.monotonic`` unless one is handed in): a
rate measures elapsed time, which a wall clock that NTP steps back or forth would get wrong.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

# Clock readings are floats: a refill that should come to exactly one token may come to 0.9999999999.
EPSILON = 1e-9
# A bucket that has refilled to its burst is the same as no bucket: past this many tenants, those go.
MAX_TRACKED_TENANTS = 10_000


@dataclass(frozen=True)
class Rate:
    """So many per second on average, up to ``burst`` at once; ``per_s`` 0 means unlimited."""

    per_s: float
    burst: int

    def __post_init__(self) -> None:
        if self.per_s < 0 or not math.isfinite(self.per_s):
            raise ValueError(f"a rate is 0 (unlimited) or a positive number per second, not {self.per_s}")
        if not self.unlimited and self.burst < 1:
            raise ValueError(f"a burst is at least 1 (one at a time), not {self.burst}")

    @property
    def unlimited(self) -> bool:
        return self.per_s == 0

    def describe(self) -> str:
        return "unlimited" if self.unlimited else f"{self.per_s:g} per second (burst {self.burst})"


@dataclass(frozen=True)
class Refusal:
    """A tenant over its rate, and how long until one more would pass."""

    tenant: str
    rate: Rate
    retry_after_s: float

    @property
    def retry_after_whole_s(self) -> int:
        """For a Retry-After header (RFC 9110: whole seconds): rounded up, so a retry then passes."""
        return max(1, math.ceil(round(self.retry_after_s, 6)))


class TenantBuckets:
    """One token bucket per tenant, all with the same rate; safe to share between threads."""

    def __init__(self, rate: Rate, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # tenant: (tokens, when counted)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """How many tenants have a bucket (one refilled to its burst may have been forgotten)."""
        return len(self._buckets)

    def charge(self, tenant: str) -> Refusal | None:
        """Take one token from the tenant's bucket: None if it had one, else the refusal."""
        if self.rate.unlimited:
            return None
        with self._lock:
            now = self.clock()
            tokens = self._tokens(tenant, now)
            if tokens >= 1 - EPSILON:
                self._buckets[tenant] = (tokens - 1, now)
                if len(self._buckets) > MAX_TRACKED_TENANTS:
                    self._forget_full(now)
                return None
            self._buckets[tenant] = (tokens, now)
            return Refusal(tenant, self.rate, (1 - tokens) / self.rate.per_s)

    def _tokens(self, tenant: str, now: float) -> float:
        tokens, counted = self._buckets.get(tenant, (float(self.rate.burst), now))
        return min(float(self.rate.burst), tokens + max(0.0, now - counted) * self.rate.per_s)

    def _forget_full(self, now: float) -> None:
        for tenant in [t for t in self._buckets if self._tokens(t, now) >= self.rate.burst]:
            del self._buckets[tenant]
