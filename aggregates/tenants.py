"""Tenant ids: what a tenant may be called."""

from __future__ import annotations

import re
from functools import lru_cache

from crmflow.aggregates.errors import InvalidValueError

TENANT_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


@lru_cache(maxsize=4096)
def check_tenant(tenant: str) -> None:
    # Cached: a service sees the same few tenants on every command.
    if not TENANT_PATTERN.match(tenant or ""):
        raise InvalidValueError(
            f"tenant {tenant!r} is not a valid tenant id: use 1-63 lower-case letters, "
            "digits, '-' or '_', starting with a letter or digit",
            field="tenant",
            value=tenant,
        )
