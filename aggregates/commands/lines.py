"""opportunity.add_line and opportunity.remove_line, and the assets a won opportunity's lines become."""

from __future__ import annotations

import uuid
from datetime import timezone
from decimal import Decimal
from typing import Annotated
from uuid import UUID

from pydantic import Field

from crmflow.aggregates.account import Account
from crmflow.aggregates.commanding import CommandContext, Payload, command
from crmflow.aggregates.commands.product import Price, ProductCode, find_product
from crmflow.aggregates.lines import add_months
from crmflow.aggregates.opportunity import Opportunity

Quantity = Annotated[Decimal, Field(gt=0, max_digits=18, decimal_places=6, description="greater than 0")]
Percent = Annotated[Decimal, Field(ge=0, le=100, max_digits=9, decimal_places=6, description="0 to 100")]


class AddLine(Payload):
    opportunity_id: UUID
    product_code: ProductCode
    quantity: Quantity
    unit_price: Price | None = Field(None, description="default: the product's list price")
    discount: Percent = Field(Decimal(0), description="percent off the line, 0 to 100")


class RemoveLine(Payload):
    opportunity_id: UUID
    line_id: UUID


@command("opportunity.add_line", AddLine, emits=("OpportunityLineAdded",))
def add_line(ctx: CommandContext, p: AddLine) -> Opportunity:
    """Sell a quantity of an active product on an open opportunity; its amount becomes the sum of its lines."""
    opportunity = ctx.load(Opportunity, p.opportunity_id)
    opportunity.check_not_closed("add a line to")  # before the product: a closed deal is the answer either way
    product = find_product(ctx, p.product_code)
    product.check_can_be_sold()
    opportunity.add_line(
        line_id=uuid.uuid4(), product_code=product.code, product_name=product.name,
        product_currency=product.currency, quantity=p.quantity,
        unit_price=product.list_price if p.unit_price is None else p.unit_price, discount=p.discount,
        recurring=product.recurring, term_months=product.term_months,
    )  # fmt: skip
    return opportunity


@command("opportunity.remove_line", RemoveLine, emits=("OpportunityLineRemoved",))
def remove_line(ctx: CommandContext, p: RemoveLine) -> Opportunity:
    """Take a line off an open opportunity; its amount becomes the sum of the lines left."""
    opportunity = ctx.load(Opportunity, p.opportunity_id)
    opportunity.remove_line(p.line_id)
    return opportunity


def record_assets(ctx: CommandContext, opportunity: Opportunity) -> None:
    """A won opportunity's lines become its account's assets, in the same unit of work as the win.

    One asset per line, starting on the win's date (UTC); a recurring product's asset renews its term
    in months later. A line that became an asset before (won, reopened, won again) is not recorded twice.
    """
    if not opportunity.lines:
        return
    account = ctx.load(Account, opportunity.account_id)
    start = ctx.at.astimezone(timezone.utc).date()
    for line in opportunity.lines.values():
        term = line["term_months"]
        account.acquire_asset(
            opportunity_id=opportunity.id, line_id=line["line_id"], product_code=line["product_code"],
            quantity=line["quantity"], start_date=start, recurring=line["recurring"], term_months=term,
            renewal_date=add_months(start, term) if line["recurring"] and term else None,
        )  # fmt: skip
