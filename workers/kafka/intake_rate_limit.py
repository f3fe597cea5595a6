"""Fair share per tenant at the intake: a checked message over its tenant's rate is dead-lettered.

Dead-lettered, not delayed: the intake commits a partition's offsets in order,
so holding one tenant's message back would hold back every tenant behind it
on that partition. A dead letter (code ``rate_limited``, the reason naming the
rate) keeps the others flowing and loses nothing: once the burst is over, an
operator sends them back with ``crmflow deadletter redrive --error
rate_limited``, and what is still over the rate is dead-lettered again.
"""

from __future__ import annotations

from crmflow.workers.inbound_checks import Rejected
from crmflow.workers.metrics import RATE_LIMITED
from crmflow.workers.rate_limits import Rate, TenantBuckets

CODE = "rate_limited"


class IntakeRateLimit:
    """Charges each checked inbound message to its tenant; raises Rejected(rate_limited) over the rate."""

    def __init__(self, rate: Rate | TenantBuckets) -> None:
        self.buckets = rate if isinstance(rate, TenantBuckets) else TenantBuckets(rate)

    def __call__(self, tenant: str) -> None:
        refusal = self.buckets.charge(tenant)
        if refusal is None:
            return
        RATE_LIMITED.labels(entry="intake", tenant=tenant).inc()
        raise Rejected(
            CODE,
            f"tenant {tenant} is over the intake's limit of {refusal.rate.describe()} "
            f"(CRMFLOW_INTAKE_RATE_PER_S, CRMFLOW_INTAKE_BURST); "
            f"send it back later with `crmflow deadletter redrive --error {CODE}`",
        )


def unlimited(tenant: str) -> None:
    """No limit: the intake built without one (tests, benchmarks)."""
