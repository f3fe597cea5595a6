"""The demo's price list: what every tenant sells, what a deal's lines are, what billing meters.

Each tenant gets the same five products at prices of its own (the list price
moved by up to 10 %, drawn from the demo's seeded generator), three of them
subscriptions: a won deal's recurring lines become assets that renew, and the
billing service reports their usage (UsageReported) every week.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal

from crmflow.aggregates.lines import line_amount, lines_total


@dataclass(frozen=True)
class Offer:
    code: str
    name: str
    family: str
    list_price: Decimal  # before the tenant's own move of up to 10 %
    recurring: bool
    quantities: tuple[int, int]  # how many a deal sells, lowest and highest
    # Billing's weekly usage per unit owned, in hundredths (60-100: 0.6 to 1 seat used per seat), and its unit.
    usage: tuple[int, int] | None = None
    unit: str | None = None

    @property
    def term_months(self) -> int | None:
        return 12 if self.recurring else None


PRICE_LIST = (
    Offer("PLAT-SEAT", "Platform licence (per seat)", "Platform", Decimal("480.00"), True, (5, 120),
          (60, 100), "active seats"),
    Offer("ANALYTICS", "Analytics add-on", "Platform", Decimal("1800.00"), True, (1, 3), (2_000, 20_000),
          "reports run"),
    Offer("SUPPORT-PLUS", "Support plan", "Services", Decimal("2400.00"), True, (1, 1), (0, 800), "support hours"),
    Offer("ONBOARDING", "Onboarding", "Services", Decimal("3500.00"), False, (1, 1)),
    Offer("TRAINING-DAY", "Training day", "Services", Decimal("1200.00"), False, (1, 5)),
)  # fmt: skip
OFFERS = {offer.code: offer for offer in PRICE_LIST}
DISCOUNTS = (5, 10, 15, 20)  # percent, given on a line now and then


@dataclass(frozen=True)
class Line:
    code: str
    quantity: int
    discount: int  # percent
    amount: Decimal  # as the opportunity works it out (aggregates/lines.py)


def tenant_prices(rng: random.Random) -> dict[str, Decimal]:
    """One tenant's list prices: each product's moved by -10 % to +10 %, in whole tens of euros."""
    return {o.code: (o.list_price * rng.randint(90, 110) / 100).quantize(Decimal("1E1")).quantize(Decimal("0.01"))
            for o in PRICE_LIST}  # fmt: skip


def deal_lines(rng: random.Random, prices: dict[str, Decimal]) -> list[Line]:
    """What a new deal sells: seats of the platform, and up to two other products; a line in four discounted."""
    offers = [OFFERS["PLAT-SEAT"], *rng.sample(PRICE_LIST[1:], rng.randint(0, 2))]
    lines = []
    for offer in offers:
        quantity = rng.randint(*offer.quantities)
        discount = rng.choice(DISCOUNTS) if rng.random() < 0.25 else 0
        lines.append(Line(offer.code, quantity, discount,
                          line_amount(Decimal(quantity), prices[offer.code], Decimal(discount))))  # fmt: skip
    return lines


def deal_amount(lines: list[Line]) -> Decimal:
    """The opportunity's amount once its lines are added: the sum of the lines' amounts."""
    return lines_total(line.amount for line in lines)


def weekly_usage(rng: random.Random, code: str, owned: Decimal) -> int:
    """What an account used of a recurring product in a week, ``owned`` being the quantity of its assets."""
    low, high = OFFERS[code].usage or (0, 0)
    return int(owned * rng.randint(low, high) / 100)
