"""product.* commands: the tenant's price list. A product is named by its code, not by an id."""

from __future__ import annotations

import difflib
from decimal import Decimal
from typing import Annotated

from eventsourcing.application import Repository
from eventsourcing.utils import get_topic
from pydantic import Field

from crmflow.aggregates.commanding import CommandContext, Payload, command
from crmflow.aggregates.commands.fields import Currency, Name
from crmflow.aggregates.errors import AggregateExistsError, AggregateNotFoundError
from crmflow.aggregates.product import MAX_TERM_MONTHS, Product, product_id

ProductCode = Annotated[
    str,
    Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$",
          description="the tenant's code for the product (1-64 of A-Z a-z 0-9 . _ / -, case counts)"),
]  # fmt: skip
# Prices and quantities may have more places than money (a unit price of 33.335); a line's amount is in cents.
Price = Annotated[Decimal, Field(ge=0, max_digits=18, decimal_places=6)]
SUGGESTIONS = 3


class CreateProduct(Payload):
    code: ProductCode
    name: Name
    family: Name | None = None
    list_price: Price
    currency: Currency = "EUR"
    recurring: bool = Field(False, description="a subscription: its assets run for term_months, then renew")
    term_months: int | None = Field(None, ge=1, le=MAX_TERM_MONTHS, description="required when recurring")


class UpdateProduct(Payload):
    code: ProductCode
    name: Name | None = None
    family: Name | None = None
    list_price: Price | None = None


class ProductRef(Payload):
    code: ProductCode


@command("product.create", CreateProduct, emits=("ProductCreated",))
def create_product(ctx: CommandContext, p: CreateProduct) -> Product:
    """Add a product to the tenant's price list (its code must be new to the tenant)."""
    stored = ctx.claim_key(
        product_id(ctx.tenant, p.code),
        AggregateExistsError(
            f"cannot create product {p.code!r}: tenant {ctx.tenant} has a product with that code already "
            "(product.update changes it)",
            kind="product", code=p.code,
        ),
    )  # fmt: skip
    product = Product.define(
        ctx.tenant, p.code, p.name, p.family, p.list_price, p.currency, p.recurring, p.term_months
    )
    assert product.id == stored
    return ctx.add(product)


@command("product.update", UpdateProduct, emits=("ProductUpdated",))
def update_product(ctx: CommandContext, p: UpdateProduct) -> Product:
    """Change a product's name, family or list price (lines already added keep their price)."""
    product = find_product(ctx, p.code, change=True)
    product.update(p.name, p.family, p.list_price)
    return product


@command("product.deactivate", ProductRef, emits=("ProductDeactivated",))
def deactivate_product(ctx: CommandContext, p: ProductRef) -> Product:
    """Take a product off sale: no new lines (lines and assets it has stay)."""
    product = find_product(ctx, p.code, change=True)
    product.deactivate()
    return product


@command("product.activate", ProductRef, emits=("ProductActivated",))
def activate_product(ctx: CommandContext, p: ProductRef) -> Product:
    """Put a deactivated product on sale again."""
    product = find_product(ctx, p.code, change=True)
    product.activate()
    return product


def find_product(ctx: CommandContext, code: str, *, change: bool = False) -> Product:
    """The tenant's product with that code (loaded to change, or only read), or not_found with close codes."""
    try:
        return (ctx.load if change else ctx.read)(Product, product_id(ctx.tenant, code))
    except AggregateNotFoundError:
        close = close_codes(code, product_codes(ctx.repository, ctx.tenant))
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise AggregateNotFoundError(
            f"product code {code!r} not found in tenant {ctx.tenant}{hint}",
            kind="product", code=code, tenant=ctx.tenant, suggestions=close,
        ) from None  # fmt: skip


def close_codes(code: str, codes: list[str]) -> list[str]:
    """The codes most like ``code``, compared without case (``widget-pro`` finds ``WIDGET-PRO``)."""
    by_folded = {c.casefold(): c for c in sorted(codes)}
    close = difflib.get_close_matches(code.casefold(), list(by_folded), n=SUGGESTIONS, cutoff=0.6)
    return [by_folded[c] for c in close]


def product_codes(repository: Repository, tenant: str) -> list[str]:
    """Every product code of the tenant, read from the stored ProductCreated events.

    Only a refusal asks (to suggest close codes), so a scan of the store's
    ProductCreated events (filtered by topic in SQL) is cheap enough: no index
    aggregate is written on every create, and nothing extra can fall out of step.
    """
    store = repository.event_store
    topic = get_topic(Product.ProductCreated)  # type: ignore[attr-defined]
    codes, start = [], 1
    while True:
        notifications = store.recorder.select_notifications(start=start, limit=1000, topics=[topic])  # type: ignore[attr-defined]
        for notification in notifications:
            created = store.mapper.to_domain_event(notification)
            if getattr(created, "tenant_id", None) == tenant:
                codes.append(str(created.code))  # type: ignore[attr-defined]
        if len(notifications) < 1000:
            return codes
        start = notifications[-1].id + 1
