"""Opportunity: a deal moving through the pipeline.

prospecting (10%) → qualification (20%) → proposal (50%) → negotiation (75%)
→ closed_won (100%) | closed_lost (0%). Closed opportunities are frozen until
reopened.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from crmflow.aggregates.base import TenantAggregate, check_not_negative, check_one_of
from crmflow.aggregates.errors import FrozenAggregateError, IllegalTransitionError, InvalidValueError
from crmflow.aggregates.lines import line_amount, lines_total

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
        # Line items by line id (str): what each sells, as its OpportunityLineAdded said (aggregates/lines.py).
        self.lines: dict[str, dict[str, Any]] = {}

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
        self.check_amount_is_free(amount, "win")
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
        self.check_amount_is_free(amount, "update")
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

    def add_line(
        self, line_id: UUID, product_code: str, product_name: str, product_currency: str, quantity: Decimal,
        unit_price: Decimal, discount: Decimal, recurring: bool, term_months: int | None,
    ) -> Decimal:  # fmt: skip
        """Add a line item; the opportunity is then worth the sum of its lines. Returns the line's amount."""
        self.check_not_closed("add a line to")
        if product_currency != self.currency:
            raise InvalidValueError(
                f"product {product_code!r} is priced in {product_currency} and opportunity {self.short_id} is in "
                f"{self.currency}: a line must be in the opportunity's currency (crmflow converts no currency)",
                field="currency", value=product_currency, allowed=[self.currency],
            )  # fmt: skip
        amount = line_amount(quantity, unit_price, discount)
        total = lines_total([*(Decimal(line["amount"]) for line in self.lines.values()), amount])
        self._add_line(
            line_id=line_id, product_code=product_code, product_name=product_name, quantity=quantity,
            unit_price=unit_price, discount=discount, line_amount=amount, currency=self.currency,
            recurring=recurring, term_months=term_months, amount=total,
        )  # fmt: skip
        return amount

    def remove_line(self, line_id: UUID) -> None:
        self.check_not_closed("remove a line from")
        line = self.lines.get(str(line_id))
        if line is None:
            held = ", ".join(sorted(self.lines)) or "none"
            raise InvalidValueError(
                f"opportunity {self.short_id} has no line {line_id} (its lines: {held})",
                field="line_id", value=str(line_id),
            )  # fmt: skip
        rest = [Decimal(other["amount"]) for key, other in self.lines.items() if key != str(line_id)]
        self._remove_line(line_id=line_id, product_code=line["product_code"], amount=lines_total(rest))

    # Guards.

    def check_amount_is_free(self, amount: Decimal | None, verb: str) -> None:
        """With lines, the amount is their sum: a different one would contradict them."""
        if self.lines and amount is not None and amount != self.amount:
            raise InvalidValueError(
                f"cannot {verb} opportunity {self.short_id} with amount {amount}: it has {len(self.lines)} "
                f"line(s), so its amount is their sum, {self.amount}; change the lines instead",
                field="amount", value=str(amount),
            )  # fmt: skip

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

    # A line event carries the opportunity's new amount (the sum of its lines), so that a read model
    # or a process has the deal's worth without adding the lines up again.
    @event("OpportunityLineAdded")
    def _add_line(
        self, line_id: UUID, product_code: str, product_name: str, quantity: Decimal, unit_price: Decimal,
        discount: Decimal, line_amount: Decimal, currency: str, recurring: bool, term_months: int | None,
        amount: Decimal,
    ) -> None:  # fmt: skip
        self.lines[str(line_id)] = {
            "line_id": line_id, "product_code": product_code, "product_name": product_name, "quantity": quantity,
            "unit_price": unit_price, "discount": discount, "amount": line_amount, "recurring": recurring,
            "term_months": term_months,
        }  # fmt: skip
        self.amount = amount

    @event("OpportunityLineRemoved")
    def _remove_line(self, line_id: UUID, product_code: str, amount: Decimal) -> None:
        del self.lines[str(line_id)]
        self.amount = amount

    @event("OpportunityAssigned")
    def _assign(self, owner: str, previous_owner: str | None) -> None:
        self.owner = owner
