"""The arithmetic of an opportunity's line items: what a line is worth, and when an asset renews.

Pure functions, so that the rule is stated (and tested) once: a line is worth
quantity × unit price × (1 − discount / 100), computed exactly in Decimal and
rounded once, to the cent, half up; an opportunity with lines is worth the sum
of its rounded lines (docs/domain.md, "Products, line items, assets and usage").
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from crmflow.aggregates.errors import InvalidValueError

CENT = Decimal("0.01")
HUNDRED = Decimal(100)


def check_quantity(quantity: Decimal) -> None:
    if not quantity > 0:
        raise InvalidValueError(
            f"quantity must be greater than 0 (got {quantity})", field="quantity", value=str(quantity)
        )


def check_discount(discount: Decimal) -> None:
    if not Decimal(0) <= discount <= HUNDRED:
        raise InvalidValueError(
            f"discount must be a percentage from 0 to 100 (got {discount})", field="discount", value=str(discount)
        )


def line_amount(quantity: Decimal, unit_price: Decimal, discount: Decimal = Decimal(0)) -> Decimal:
    """quantity × unit price × (1 − discount/100), rounded half up to the cent.

    Multiplied by (100 − discount) and divided by 100 rather than by (1 − discount/100): the same
    value, with no intermediate quotient to round (every step here is exact for crmflow's sizes).
    """
    check_quantity(quantity)
    check_discount(discount)
    if unit_price < 0:
        raise InvalidValueError(
            f"unit_price must not be negative (got {unit_price})", field="unit_price", value=str(unit_price)
        )
    exact = quantity * unit_price * (HUNDRED - discount) / HUNDRED
    return exact.quantize(CENT, rounding=ROUND_HALF_UP)


def lines_total(amounts: Iterable[Decimal]) -> Decimal:
    """The sum of the lines' rounded amounts (each line is rounded on its own, then added)."""
    return sum(amounts, Decimal("0.00")).quantize(CENT)


def add_months(start: date, months: int) -> date:
    """``start`` plus whole months; a day the target month lacks becomes its last (31 Jan + 1 month = 28/29 Feb)."""
    index = start.month - 1 + months
    year, month = start.year + index // 12, index % 12 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))
