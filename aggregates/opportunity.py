"""Opportunity: a deal moving through the pipeline.

prospecting (10%) → qualification (20%) → proposal (50%) → negotiation (75%)
→ closed_won (100%) | closed_lost (0%). Closed opportunities are frozen until
reopened.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from uuid import UUID

from eventsourcing.domain import event

from crmflow.aggregates.base import TenantAggregate, check_not_negative, check_one_of
from crmflow.aggregates.errors import FrozenAggregateError, IllegalTransitionError

OPEN_STAGES = ("prospecting", "qualification", "proposal", "negotiation")
CLOSED_STAGES = ("closed_won", "closed_lost")
PROBABILITY = {
    "prospecting": 10,
    "qualification": 20,
    "proposal": 50,
    "negotiation": 75,
    "closed_won": 100,
    "closed_lost": 0,
}
PIPELINE_TEXT = (
    "prospecting → qualification → proposal → negotiation → closed_won | closed_lost"
)


class Opportunity(TenantAggregate):
    kind = "opportunity"

    @event("OpportunityCreated")
    def __init__(
        self,
        tenant_id: str,
        account_id: UUID,
        name: str,
        amount: Decimal,
        currency: str,
        close_date: date,
        owner: str | None,
        stage: str,
        probability: int,
        lead_id: UUID | None,
        campaign_id: UUID | None,
    ) -> None:
        self.tenant_id = tenant_id
        self.account_id = account_id
        self.name = name
        self.amount = amount
        self.currency = currency
        self.close_date = close_date
        self.owner = owner
        self.stage = stage
        self.probability = probability
        self.lead_id = lead_id
        self.campaign_id = campaign_id
        self.closed_at: datetime | None = None
        self.loss_reason: str | None = None

    @classmethod
    def open(
        cls,
        tenant_id: str,
        account_id: UUID,
        name: str,
        amount: Decimal,
        currency: str,
        close_date: date,
        owner: str | None = None,
        stage: str = "prospecting",
        lead_id: UUID | None = None,
        campaign_id: UUID | None = None,
        opportunity_id: UUID | None = None,
    ) -> Opportunity:
        check_one_of("stage", stage, OPEN_STAGES)
        check_not_negative("amount", amount)
        return cls.construct(
            opportunity_id, tenant_id=tenant_id, account_id=account_id, name=name,
            amount=amount, currency=currency, close_date=close_date, owner=owner,
            stage=stage, probability=PROBABILITY[stage], lead_id=lead_id, campaign_id=campaign_id,
        )  # fmt: skip

    @property
    def status(self) -> str:  # type: ignore[override]
        return self.stage

    @property
    def is_closed(self) -> bool:
        return self.stage in CLOSED_STAGES

    # Commands.

    def advance(self, stage: str | None) -> None:
        """Move forward in the pipeline: to the next stage, or to a named later one."""
        self.check_not_closed("advance")
        current = OPEN_STAGES.index(self.stage)
        if stage is None:
            if current + 1 == len(OPEN_STAGES):
                raise IllegalTransitionError(
                    f"cannot advance opportunity {self.short_id} past negotiation: "
                    "win or lose it instead",
                    aggregate_id=str(self.id),
                    status=self.stage,
                )
            stage = OPEN_STAGES[current + 1]
        check_one_of("stage", stage, OPEN_STAGES)
        if OPEN_STAGES.index(stage) <= current:
            raise IllegalTransitionError(
                f"cannot advance opportunity {self.short_id} from {self.stage} to {stage}: "
                f"advance only moves forward ({PIPELINE_TEXT})",
                aggregate_id=str(self.id),
                status=self.stage,
                target=stage,
            )
        self._change_stage(
            stage=stage, previous_stage=self.stage, probability=PROBABILITY[stage],
            amount=self.amount, currency=self.currency,
        )  # fmt: skip

    def win(self, amount: Decimal | None, at: datetime) -> None:
        self.check_not_closed("win")
        final = self.amount if amount is None else amount
        check_not_negative("amount", final)
        self._win(
            stage="closed_won", previous_stage=self.stage, probability=100,
            amount=final, closed_at=at,
        )  # fmt: skip

    def lose(self, reason: str, at: datetime) -> None:
        self.check_not_closed("lose")
        self._lose(
            stage="closed_lost", previous_stage=self.stage, probability=0,
            reason=reason, closed_at=at,
        )  # fmt: skip

    def reopen(self, stage: str) -> None:
        if not self.is_closed:
            raise IllegalTransitionError(
                f"cannot reopen opportunity {self.short_id}: it is still open at {self.stage}",
                aggregate_id=str(self.id),
                status=self.stage,
            )
        check_one_of("stage", stage, OPEN_STAGES)
        self._reopen(
            stage=stage, previous_stage=self.stage, probability=PROBABILITY[stage],
            amount=self.amount, currency=self.currency,
        )  # fmt: skip

    def update(self, amount: Decimal | None, close_date: date | None, name: str | None) -> None:
        self.check_not_closed("update")
        if amount is not None:
            check_not_negative("amount", amount)
        self._update(
            amount=self.amount if amount is None else amount,
            close_date=close_date or self.close_date,
            name=name or self.name,
        )

    def assign(self, owner: str) -> None:
        self.check_not_closed("assign")
        self._assign(owner=owner, previous_owner=self.owner)

    # Guards.

    def check_not_closed(self, verb: str) -> None:
        if self.is_closed:
            raise FrozenAggregateError(
                f"cannot {verb} opportunity {self.short_id} from {self.stage}: "
                "closed opportunities are frozen; reopen it first",
                aggregate_id=str(self.id),
                status=self.stage,
            )

    # Events.

    # A stage change and a reopening carry the deal's amount and currency at that moment, though
    # they do not change them: a process triggered on them can route on the deal's size without
    # a read model. Events stored before they carried them have neither: the defaults load those.
    @event("OpportunityStageChanged")
    def _change_stage(
        self, stage: str, previous_stage: str, probability: int,
        amount: Decimal | None = None, currency: str | None = None,
    ) -> None:  # fmt: skip
        self.stage = stage
        self.probability = probability

    @event("OpportunityWon")
    def _win(
        self, stage: str, previous_stage: str, probability: int, amount: Decimal, closed_at: datetime
    ) -> None:
        self.stage = stage
        self.probability = probability
        self.amount = amount
        self.closed_at = closed_at

    @event("OpportunityLost")
    def _lose(
        self, stage: str, previous_stage: str, probability: int, reason: str, closed_at: datetime
    ) -> None:
        self.stage = stage
        self.probability = probability
        self.loss_reason = reason
        self.closed_at = closed_at

    @event("OpportunityReopened")
    def _reopen(
        self, stage: str, previous_stage: str, probability: int,
        amount: Decimal | None = None, currency: str | None = None,
    ) -> None:  # fmt: skip
        self.stage = stage
        self.probability = probability
        self.closed_at = None
        self.loss_reason = None

    @event("OpportunityUpdated")
    def _update(self, amount: Decimal, close_date: date, name: str) -> None:
        self.amount = amount
        self.close_date = close_date
        self.name = name

    @event("OpportunityAssigned")
    def _assign(self, owner: str, previous_owner: str | None) -> None:
        self.owner = owner
