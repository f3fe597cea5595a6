"""Product: an entry of a tenant's price list, which opportunities' line items sell.

active ⇄ inactive. A product is named by its ``code``, unique per tenant: the
aggregate's id is derived from the tenant and the code (``product_id``), as an
inbound event's id is derived from its tenant, source and id, so a second
product with the same code is the same stored id and the store's unique
(id, version) constraint refuses it, also when two creates race. The price is
a list price in one currency; a recurring product (a subscription) has a term
in months, which its assets renew after.
"""

from __future__ import annotations

from decimal import Decimal
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event

from crmflow.aggregates.base import TenantAggregate, check_not_negative
from crmflow.aggregates.errors import IllegalTransitionError, InvalidValueError

PRODUCT_NAMESPACE = uuid5(NAMESPACE_URL, "https://crmflow.dev/product-codes")
MAX_TERM_MONTHS = 120


def product_id(tenant_id: str, code: str) -> UUID:
    """The stored id of the tenant's product with that code (codes are compared exactly, case included)."""
    return uuid5(PRODUCT_NAMESPACE, f"{tenant_id}\n{code}")


def check_term(recurring: bool, term_months: int | None) -> None:
    if recurring and term_months is None:
        raise InvalidValueError(
            "a recurring product needs term_months (1 to 120): the months each of its assets runs before renewal",
            field="term_months",
        )
    if not recurring and term_months is not None:
        raise InvalidValueError(
            f"term_months ({term_months}) is for recurring products only: set recurring true, or leave it out",
            field="term_months",
            value=term_months,
        )
    if term_months is not None and not 1 <= term_months <= MAX_TERM_MONTHS:
        raise InvalidValueError(
            f"term_months must be from 1 to {MAX_TERM_MONTHS} (got {term_months})", field="term_months",
            value=term_months,
        )  # fmt: skip


class Product(TenantAggregate):
    kind = "product"
    lifecycle = {"active": {"inactive"}, "inactive": {"active"}}
    lifecycle_text = "active → inactive; inactive → active"

    @event("ProductCreated")
    def __init__(
        self, tenant_id: str, code: str, name: str, family: str | None, list_price: Decimal, currency: str,
        recurring: bool, term_months: int | None,
    ) -> None:  # fmt: skip
        self.tenant_id = tenant_id
        self.code = code
        self.name = name
        self.family = family
        self.list_price = list_price
        self.currency = currency
        self.recurring = recurring
        self.term_months = term_months
        self.status = "active"

    @classmethod
    def define(
        cls, tenant_id: str, code: str, name: str, family: str | None, list_price: Decimal, currency: str,
        recurring: bool = False, term_months: int | None = None,
    ) -> Product:  # fmt: skip
        check_not_negative("list_price", list_price)
        check_term(recurring, term_months)
        return cls.construct(  # type: ignore[no-any-return]
            product_id(tenant_id, code), tenant_id=tenant_id, code=code, name=name, family=family,
            list_price=list_price, currency=currency, recurring=recurring, term_months=term_months,
        )  # fmt: skip

    @property
    def short_id(self) -> str:
        return repr(self.code)  # what the tenant names it by, in every refusal (the id is derived from it)

    @property
    def active(self) -> bool:
        return self.status == "active"

    def update(self, name: str | None, family: str | None, list_price: Decimal | None) -> None:
        if list_price is not None:
            check_not_negative("list_price", list_price)
        self._update(
            name=self.name if name is None else name,
            family=self.family if family is None else family,
            list_price=self.list_price if list_price is None else list_price,
        )

    def deactivate(self) -> None:
        self.check_transition("deactivate", "inactive")
        self._deactivate(status="inactive")

    def activate(self) -> None:
        self.check_transition("activate", "active")
        self._activate(status="active")

    def check_can_be_sold(self) -> None:
        if not self.active:
            raise IllegalTransitionError(
                f"product {self.code!r} is inactive: only active products can be sold (product.activate it first)",
                aggregate_id=str(self.id),
                status=self.status,
            )

    @event("ProductUpdated")
    def _update(self, name: str, family: str | None, list_price: Decimal) -> None:
        self.name = name
        self.family = family
        self.list_price = list_price

    @event("ProductDeactivated")
    def _deactivate(self, status: str) -> None:
        self.status = status

    @event("ProductActivated")
    def _activate(self, status: str) -> None:
        self.status = status
