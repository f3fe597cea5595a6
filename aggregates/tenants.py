"""Tenant ids: what a tenant may be called."""

from __future__ import annotations

import re
from functools import lru_cache

from crmflow.aggregates.errors import InvalidValueError

# Always used with fullmatch: with match, "$" also matches before a trailing newline ("acme\n").
TENANT_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")


def check_tenant(tenant: str) -> None:
    if not isinstance(tenant, str):
        raise InvalidValueError(
            f"tenant {tenant!r} is not a valid tenant id: it must be a string", field="tenant", value=tenant
        )
    _check_tenant_text(tenant)


@lru_cache(maxsize=4096)
def _check_tenant_text(tenant: str) -> None:
    # Cached: a service sees the same few tenants on every command.
    if not TENANT_PATTERN.fullmatch(tenant):
        raise InvalidValueError(
            f"tenant {tenant!r} is not a valid tenant id: use 1-63 lower-case letters, "
            "digits, '-' or '_', starting with a letter or digit",
            field="tenant",
            value=tenant,
        )
