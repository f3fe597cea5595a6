"""Campaign: a marketing effort that brings in leads and costs money.

planned → active → completed.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from uuid import UUID

from eventsourcing.domain import event

from crmflow.aggregates.base import TenantAggregate, check_not_negative, check_one_of

CHANNELS = ("web", "webinar", "email", "event", "social", "search", "partner", "print", "other")


class Campaign(TenantAggregate):
    kind = "campaign"
    lifecycle = {"planned": {"active"}, "active": {"completed"}}
    lifecycle_text = "planned → active → completed"

    @event("CampaignCreated")
    def __init__(
        self,
        tenant_id: str,
        name: str,
        channel: str,
        budget: Decimal,
        currency: str,
        start_date: date | None,
        end_date: date | None,
    ) -> None:
        self.tenant_id = tenant_id
        self.name = name
        self.channel = channel
        self.budget = budget
        self.currency = currency
        self.start_date = start_date
        self.end_date = end_date
        self.actual_cost = Decimal(0)
        self.status = "planned"

    @classmethod
    def plan(
        cls,
        tenant_id: str,
        name: str,
        channel: str,
        budget: Decimal,
        currency: str,
        start_date: date | None,
        end_date: date | None,
        campaign_id: UUID | None = None,
    ) -> Campaign:
        check_one_of("channel", channel, CHANNELS)
        check_not_negative("budget", budget)
        return cls.construct(
            campaign_id, tenant_id=tenant_id, name=name, channel=channel, budget=budget,
            currency=currency, start_date=start_date, end_date=end_date,
        )  # fmt: skip

    def activate(self) -> None:
        self.check_transition("activate", "active")
        self._activate(status="active")

    def complete(self) -> None:
        self.check_transition("complete", "completed")
        self._complete(status="completed")

    def record_cost(self, amount: Decimal, description: str | None) -> None:
        # Costs are accepted in every status: invoices for a campaign keep
        # arriving after it has completed, and prepaid costs before it starts.
        check_not_negative("amount", amount)
        total = self.actual_cost + amount
        self._record_cost(
            amount=amount, actual_cost=total, description=description, over_budget=total > self.budget
        )

    @event("CampaignActivated")
    def _activate(self, status: str) -> None:
        self.status = status

    @event("CampaignCompleted")
    def _complete(self, status: str) -> None:
        self.status = status

    @event("CampaignCostRecorded")
    def _record_cost(
        self, amount: Decimal, actual_cost: Decimal, description: str | None, over_budget: bool
    ) -> None:
        self.actual_cost = actual_cost
