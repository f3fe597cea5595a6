"""UsageReported: what an account used of a product in a period, as billing (or metering) reports it.

Usage comes in through the intake as an inbound CloudEvent of type
``UsageReported`` and is stored as it came (aggregates/inbound.py); crmflow
makes no aggregate of it. Two checks decide whether it is accepted:

- ``usage_of`` (pure, with the intake's other checks): the data holds an
  ``account_id``, a ``product_code``, a ``quantity`` (a decimal string or an
  integer, not below 0: a JSON fraction would be read as a binary float) and a
  ``period_start`` ≤ ``period_end`` (calendar dates, both days counted);
- ``check_usage_references`` (reads the store): the account is one of the
  event's tenant, and the product code is in that tenant's price list. Another
  tenant's account is refused exactly like an unknown one (docs/domain.md, "Tenants").

Other members of ``data`` are kept as sent and read by nobody.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any
from uuid import UUID

from eventsourcing.application import Repository

from crmflow.aggregates.account import Account
from crmflow.aggregates.commanding import CommandContext
from crmflow.aggregates.commands.product import find_product
from crmflow.aggregates.errors import InvalidValueError

USAGE_REPORTED = "UsageReported"
FIELDS = ("account_id", "product_code", "quantity", "period_start", "period_end")


@dataclass(frozen=True)
class Usage:
    account_id: UUID
    product_code: str
    quantity: Decimal
    period_start: date
    period_end: date


def usage_of(data: Any) -> Usage:
    """The usage a UsageReported event's data reports, or InvalidValueError naming the first problem."""
    if not isinstance(data, dict):
        raise _bad("data", f"UsageReported data must be an object with {', '.join(FIELDS)}")
    missing = [name for name in FIELDS if data.get(name) is None]
    if missing:
        raise _bad(missing[0], f"UsageReported data lacks {', '.join(missing)} (it needs {', '.join(FIELDS)})")
    try:
        account_id = UUID(str(data["account_id"]))
    except ValueError:
        raise _bad("account_id", f"account_id {str(data['account_id'])[:80]!r} is not a UUID") from None
    code = data["product_code"]
    if not isinstance(code, str) or not code.strip() or len(code) > 64:
        raise _bad("product_code", "product_code must be a product code (a string of 1-64 characters)")
    quantity = _quantity(data["quantity"])
    start, end = _date(data, "period_start"), _date(data, "period_end")
    if end < start:
        raise _bad("period_end", f"period_end {end} is before period_start {start}")
    return Usage(account_id, code, quantity, start, end)


def check_usage_references(repository: Repository, tenant: str, usage: Usage) -> None:
    """AggregateNotFoundError unless the account and the product code are the tenant's (the product
    refusal suggests close codes). Read as a command reads what it refers to."""
    ctx = CommandContext(repository, tenant, datetime.now(timezone.utc))
    ctx.reference(Account, usage.account_id)
    find_product(ctx, usage.product_code)


def _quantity(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise _bad("quantity", f"quantity {str(value)[:40]} must be a decimal string (like \"12.5\") or an "
                               "integer: a JSON number with a fraction is read as a binary float")  # fmt: skip
    try:
        quantity = Decimal(value)
    except InvalidOperation:
        raise _bad("quantity", f"quantity {value[:40]!r} is not a decimal number") from None  # type: ignore[index]
    if not quantity.is_finite() or quantity < 0:
        raise _bad("quantity", f"quantity must be a number not below 0 (got {str(value)[:40]})")
    return quantity


def _date(data: dict[str, Any], name: str) -> date:
    value = data[name]
    try:
        if not isinstance(value, str) or len(value) != 10:
            raise ValueError
        return date.fromisoformat(value)
    except ValueError:
        raise _bad(name, f"{name} {str(value)[:40]!r} is not a date (YYYY-MM-DD)") from None


def _bad(field: str, message: str) -> InvalidValueError:
    return InvalidValueError(message, field=field)
