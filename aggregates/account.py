"""Account: a customer organisation, with what it paid and what serving it cost.

An account keeps its books in one currency, as a Salesforce account has one
currency code: given at creation, or else taken from its first payment or cost.
An amount in another currency is refused (crmflow converts no currency), so
revenue and cost are never a sum of two currencies.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event

from crmflow.aggregates.base import TenantAggregate, check_not_negative
from crmflow.aggregates.errors import InvalidValueError

DEFAULT_CURRENCY = "EUR"  # as every command's currency field defaults
ASSET_NAMESPACE = uuid5(NAMESPACE_URL, "https://crmflow.dev/assets")


def asset_id(line_id: UUID) -> UUID:
    """An asset's id: derived from the won line it comes from, so that a line becomes one asset, once."""
    return uuid5(ASSET_NAMESPACE, str(line_id))


class Account(TenantAggregate):
    kind = "account"

    @event("AccountCreated")
    def __init__(
        self, tenant_id: str, name: str, industry: str | None, website: str | None, owner: str | None,
        currency: str | None = None,  # None in events recorded before accounts had a currency
    ) -> None:
        self.tenant_id = tenant_id
        self.currency = currency
        self.name = name
        self.industry = industry
        self.website = website
        self.owner = owner
        self.status = "active"
        self.revenue = Decimal(0)
        self.cost_to_serve = Decimal(0)
        self.assets: dict[str, dict[str, Any]] = {}  # by asset id (str): what the account owns

    def record_payment(self, invoice_id: str, amount: Decimal, currency: str | None, paid_on: date) -> None:
        check_not_negative("amount", amount)
        currency = self._books_in(currency, "a payment")
        self._record_payment(invoice_id=invoice_id, amount=amount, currency=currency, paid_on=paid_on)

    def record_cost(self, amount: Decimal, category: str, description: str | None, currency: str | None = None) -> None:
        check_not_negative("amount", amount)
        currency = self._books_in(currency, "a cost")
        self._record_cost(amount=amount, category=category, description=description, currency=currency)

    def _books_in(self, currency: str | None, what: str) -> str:
        """The currency an amount is recorded in: the account's own; an account without one yet takes it."""
        if self.currency is None:
            return currency or DEFAULT_CURRENCY
        if currency is not None and currency != self.currency:
            raise InvalidValueError(
                f"account {self.name!r} keeps its books in {self.currency}: {what} in {currency} is not accepted "
                f"(record it in {self.currency}; crmflow converts no currency)",
                field="currency", value=currency, allowed=[self.currency],
            )  # fmt: skip
        return self.currency

    def acquire_asset(
        self, opportunity_id: UUID, line_id: UUID, product_code: str, quantity: Decimal, start_date: date,
        recurring: bool, term_months: int | None, renewal_date: date | None,
    ) -> bool:  # fmt: skip
        """Record what a won line gave the account; False (nothing recorded) if that line's asset is held already
        (an opportunity reopened and won again)."""
        new_id = asset_id(line_id)
        if str(new_id) in self.assets:
            return False
        self._acquire_asset(
            asset_id=new_id, opportunity_id=opportunity_id, line_id=line_id, product_code=product_code,
            quantity=quantity, start_date=start_date, recurring=recurring, term_months=term_months,
            renewal_date=renewal_date,
        )  # fmt: skip
        return True

    def assign(self, owner: str) -> None:
        self._assign(owner=owner, previous_owner=self.owner)

    # Segmentation that drives action (aggregates/commands/segments.py): the account's placement.

    def place_in_segment(self, segment: str, usage_tier: str | None, why: str) -> bool:
        """Record the account's segment and usage tier; False (nothing recorded) when they are what it has."""
        if (getattr(self, "segment", None), getattr(self, "usage_tier", None)) == (segment, usage_tier):
            return False
        self._segment(segment=segment, usage_tier=usage_tier, why=why, owner=self.owner,
                      previous_segment=getattr(self, "segment", None))  # fmt: skip
        return True

    @event("AccountPaymentRecorded")
    def _record_payment(self, invoice_id: str, amount: Decimal, currency: str, paid_on: date) -> None:
        self.currency = self.currency or currency
        self.revenue += amount

    @event("AccountCostRecorded")
    def _record_cost(self, amount: Decimal, category: str, description: str | None, currency: str | None = None) -> None:
        # None in costs recorded before costs carried a currency: they are in the account's.
        self.currency = self.currency or currency
        self.cost_to_serve += amount

    @event("AccountAssetAcquired")
    def _acquire_asset(
        self, asset_id: UUID, opportunity_id: UUID, line_id: UUID, product_code: str, quantity: Decimal,
        start_date: date, recurring: bool, term_months: int | None, renewal_date: date | None,
    ) -> None:  # fmt: skip
        self.assets[str(asset_id)] = {
            "product_code": product_code, "quantity": quantity, "start_date": start_date,
            "renewal_date": renewal_date, "opportunity_id": opportunity_id,
        }  # fmt: skip

    @event("AccountAssigned")
    def _assign(self, owner: str, previous_owner: str | None) -> None:
        self.owner = owner

    @event("AccountSegmented")
    def _segment(
        self, segment: str, usage_tier: str | None, why: str, owner: str | None, previous_segment: str | None
    ) -> None:
        # owner: who looks after the account now, so that a process reacting to the placement can ask them.
        self.segment = segment
        self.usage_tier = usage_tier
