"""An opportunity moves forward through the pipeline to won or lost; closed ones are frozen."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from crmflow.aggregates.errors import FrozenAggregateError, IllegalTransitionError, InvalidValueError
from crmflow.aggregates.opportunity import Opportunity

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def new_deal(stage: str = "prospecting") -> Opportunity:
    return Opportunity.open(tenant_id="acme", account_id=uuid.uuid4(), name="100 seats", amount=Decimal("50000"),
                            currency="EUR", close_date=date(2026, 6, 30), owner="maria", stage=stage)  # fmt: skip


def test_a_deal_advances_stage_by_stage_with_the_stage_probability_and_is_won() -> None:
    deal = new_deal()
    seen = [(deal.stage, deal.probability)]
    for _ in range(3):
        deal.advance(None)
        seen.append((deal.stage, deal.probability))
    deal.win(Decimal("48000"), NOW)

    assert seen == [("prospecting", 10), ("qualification", 20), ("proposal", 50), ("negotiation", 75)]
    assert (deal.stage, deal.probability, deal.amount, deal.closed_at) == ("closed_won", 100, Decimal("48000"), NOW)


def test_a_deal_may_skip_ahead_to_a_later_stage() -> None:
    deal = new_deal()
    deal.advance("proposal")
    assert (deal.stage, deal.probability) == ("proposal", 50)


@pytest.mark.parametrize(("start", "target"), [("proposal", "qualification"), ("proposal", "proposal")])
def test_advance_never_moves_a_deal_backwards_or_sideways(start: str, target: str) -> None:
    deal = new_deal(start)
    with pytest.raises(IllegalTransitionError, match=f"from {start} to {target}: advance only moves forward"):
        deal.advance(target)


def test_a_deal_in_negotiation_has_no_next_stage_to_advance_to() -> None:
    deal = new_deal("negotiation")
    with pytest.raises(IllegalTransitionError, match="past negotiation: win or lose it instead"):
        deal.advance(None)


def test_an_unknown_stage_is_refused_naming_the_stages() -> None:
    with pytest.raises(InvalidValueError, match="stage 'demo' is not allowed: use one of negotiation, "):
        new_deal().advance("demo")


@pytest.mark.parametrize("close", ["win", "lose"])
def test_a_closed_deal_is_frozen_until_reopened(close: str) -> None:
    deal = new_deal("proposal")
    deal.win(None, NOW) if close == "win" else deal.lose("went with a competitor", NOW)
    stage = deal.stage
    deal.collect_events()

    refused = {
        "advance": lambda: deal.advance(None),
        "win": lambda: deal.win(None, NOW),
        "lose": lambda: deal.lose("again", NOW),
        "update": lambda: deal.update(Decimal(1), None, None),
        "assign": lambda: deal.assign("joe"),
    }
    for verb, attempt in refused.items():
        with pytest.raises(FrozenAggregateError) as error:
            attempt()
        assert str(error.value) == (
            f"cannot {verb} opportunity {deal.short_id} from {stage}: closed opportunities are frozen; reopen it first"
        )
    assert deal.collect_events() == []

    deal.reopen("negotiation")
    assert (deal.stage, deal.probability, deal.closed_at) == ("negotiation", 75, None)


def test_an_open_deal_cannot_be_reopened() -> None:
    with pytest.raises(IllegalTransitionError, match="it is still open at prospecting"):
        new_deal().reopen("proposal")


def test_a_negative_amount_is_refused() -> None:
    with pytest.raises(InvalidValueError, match="amount must not be negative"):
        new_deal().update(Decimal("-1"), None, None)
