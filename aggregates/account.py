"""Account: a customer organisation, with what it paid and what serving it cost."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from eventsourcing.domain import event

from crmflow.aggregates.base import TenantAggregate, check_not_negative


class Account(TenantAggregate):
    kind = "account"

    @event("AccountCreated")
    def __init__(
        self, tenant_id: str, name: str, industry: str | None, website: str | None, owner: str | None
    ) -> None:
        self.tenant_id = tenant_id
        self.name = name
        self.industry = industry
        self.website = website
        self.owner = owner
        self.status = "active"
        self.revenue = Decimal(0)
        self.cost_to_serve = Decimal(0)

    def record_payment(self, invoice_id: str, amount: Decimal, currency: str, paid_on: date) -> None:
        check_not_negative("amount", amount)
        self._record_payment(invoice_id=invoice_id, amount=amount, currency=currency, paid_on=paid_on)

    def record_cost(self, amount: Decimal, category: str, description: str | None) -> None:
        check_not_negative("amount", amount)
        self._record_cost(amount=amount, category=category, description=description)

    def assign(self, owner: str) -> None:
        self._assign(owner=owner, previous_owner=self.owner)

    @event("AccountPaymentRecorded")
    def _record_payment(self, invoice_id: str, amount: Decimal, currency: str, paid_on: date) -> None:
        self.revenue += amount

    @event("AccountCostRecorded")
    def _record_cost(self, amount: Decimal, category: str, description: str | None) -> None:
        self.cost_to_serve += amount

    @event("AccountAssigned")
    def _assign(self, owner: str, previous_owner: str | None) -> None:
        self.owner = owner
