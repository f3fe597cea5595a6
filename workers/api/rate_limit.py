"""Fair share per tenant on the HTTP API: a tenant over its rate gets 429 with Retry-After.

A dependency of the /v1 routers, after the token is checked (FastAPI runs the
token check once per request, for this and for the handler): the tenant comes
from the token. The console's pages take from the same bucket as the API
(a page is one request, whatever API functions it calls). The operations
routes (health, readiness, metrics), the OpenAPI pages and the console's
sign-in and static files are not limited.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request

from crmflow.workers.api.auth import Caller
from crmflow.workers.api.errors import ApiError, ErrorBody
from crmflow.workers.metrics import RATE_LIMITED
from crmflow.workers.rate_limits import TenantBuckets

LIMIT_NAME = "api_requests"


async def charge_tenant(request: Request, caller: Caller) -> None:
    # Async on purpose: it runs on the event loop, not a pool thread, and is quick.
    charge(request, caller.tenant)


def charge(request: Request, tenant: str) -> None:
    """Take one request from the tenant's bucket, or raise the 429 (the console's pages share the bucket)."""
    buckets: TenantBuckets = request.app.state.rate_limit
    refusal = buckets.charge(tenant)
    if refusal is None:
        return
    RATE_LIMITED.labels(entry="api", tenant=tenant).inc()
    rate = refusal.rate
    raise ApiError(
        429,
        "rate_limited",
        f"tenant {tenant} is over its {LIMIT_NAME} limit of {rate.describe()}: "
        f"retry after {refusal.retry_after_whole_s} s",
        headers={"Retry-After": str(refusal.retry_after_whole_s)},
        limit=LIMIT_NAME,
        tenant=tenant,
        rate_per_s=rate.per_s,
        burst=rate.burst,
        retry_after_s=round(refusal.retry_after_s, 3),
    )


RATE_LIMITED_DEPENDENCY = Depends(charge_tenant)
RATE_LIMITED_RESPONSES: dict[int | str, dict[str, Any]] = {
    429: {
        "model": ErrorBody,
        "description": "the token's tenant is over its rate (CRMFLOW_API_RATE_PER_S, CRMFLOW_API_BURST)",
        "headers": {
            "Retry-After": {
                "description": "whole seconds until a retry passes",
                "schema": {"type": "integer"},
            }
        },
    }
}
