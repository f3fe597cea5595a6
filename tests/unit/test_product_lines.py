"""Line items, products and usage as pure logic: the exact money of a line, renewals, and what is refused."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from decimal import Decimal as D
from uuid import uuid4

import pytest

from crmflow.aggregates.account import Account
from crmflow.aggregates.errors import FrozenAggregateError, IllegalTransitionError, InvalidValueError
from crmflow.aggregates.lines import add_months, line_amount, lines_total
from crmflow.aggregates.opportunity import Opportunity
from crmflow.aggregates.product import Product, product_id
from crmflow.aggregates.usage import usage_of
from crmflow.workers.inbound_checks import InboundPolicy, Rejected, check_inbound

AT = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def test_three_at_33_335_is_100_01_rounded_half_up_not_to_even() -> None:
    # 3 × 33.335 = 100.005 exactly: half a cent, rounded up to 100.01 (banker's rounding would give 100.00).
    assert line_amount(D("3"), D("33.335")) == D("100.01")
    assert line_amount(D("3"), D("33.335"), D("0")) == D("100.01")


def test_three_at_33_335_with_12_5_percent_off_is_87_50() -> None:
    # 100.005 × (100 − 12.5) / 100 = 100.005 × 0.875 = 87.504375, rounded to the cent: 87.50.
    assert line_amount(D("3"), D("33.335"), D("12.5")) == D("87.50")


def test_half_a_cent_after_a_discount_rounds_up() -> None:
    # 1 × 10.01 × 50 / 100 = 5.005: half a cent, up to 5.01.
    assert line_amount(D("1"), D("10.01"), D("50")) == D("5.01")
    # 7 × 0.15 × (100 − 90) / 100 = 1.05 × 0.1 = 0.105: up to 0.11 (to even it would be 0.10).
    assert line_amount(D("7"), D("0.15"), D("90")) == D("0.11")


def test_a_full_discount_is_worth_nothing_and_fractional_quantities_are_exact() -> None:
    assert line_amount(D("4"), D("250"), D("100")) == D("0.00")
    # 2.5 × 19.99 = 49.975: half a cent, up to 49.98.
    assert line_amount(D("2.5"), D("19.99")) == D("49.98")


def test_an_opportunity_with_lines_is_worth_the_sum_of_its_rounded_lines() -> None:
    # Each line rounded first: 100.01 + 87.50 = 187.51 (unrounded, 100.005 + 87.504375 = 187.509375 → 187.51 too,
    # but 3 × 0.005 lines show the difference: 0.01 + 0.01 + 0.01 = 0.03, not round(0.015) = 0.02).
    assert lines_total([D("100.01"), D("87.50")]) == D("187.51")
    assert lines_total([line_amount(D("1"), D("0.005"))] * 3) == D("0.03")
    assert lines_total([]) == D("0.00")


@pytest.mark.parametrize(
    ("quantity", "discount", "says"),
    [
        (D("0"), D("0"), "quantity must be greater than 0 (got 0)"),
        (D("-1"), D("0"), "quantity must be greater than 0 (got -1)"),
        (D("1"), D("100.01"), "discount must be a percentage from 0 to 100 (got 100.01)"),
        (D("1"), D("-5"), "discount must be a percentage from 0 to 100 (got -5)"),
    ],
)
def test_a_line_with_a_bad_quantity_or_discount_is_refused(quantity: D, discount: D, says: str) -> None:
    with pytest.raises(InvalidValueError) as refused:
        line_amount(quantity, D("10"), discount)
    assert str(refused.value) == says


@pytest.mark.parametrize(
    ("start", "months", "renews"),
    [
        (date(2026, 3, 2), 12, date(2027, 3, 2)),
        (date(2026, 1, 31), 1, date(2026, 2, 28)),  # February has no 31st: its last day
        (date(2028, 2, 29), 12, date(2029, 2, 28)),  # a leap day, a year on
        (date(2026, 11, 30), 3, date(2027, 2, 28)),
        (date(2026, 12, 15), 1, date(2027, 1, 15)),
    ],
)
def test_a_recurring_asset_renews_its_term_in_months_later(start: date, months: int, renews: date) -> None:
    assert add_months(start, months) == renews


def deal(currency: str = "EUR") -> Opportunity:
    return Opportunity.open(tenant_id="acme", account_id=uuid4(), name="Deal", amount=D("500"), currency=currency,
                            close_date=date(2026, 5, 1))  # fmt: skip


def widget(**changes: object) -> Product:
    fields: dict[str, object] = {"code": "WIDGET", "name": "Widget", "family": "hardware", "list_price": D("33.335"),
                                 "currency": "EUR", **changes}  # fmt: skip
    return Product.define("acme", **fields)  # type: ignore[arg-type]


def add(opportunity: Opportunity, product: Product, quantity: str = "3", discount: str = "0") -> D:
    return opportunity.add_line(
        line_id=uuid4(), product_code=product.code, product_name=product.name, product_currency=product.currency,
        quantity=D(quantity), unit_price=product.list_price, discount=D(discount), recurring=product.recurring,
        term_months=product.term_months,
    )  # fmt: skip


def test_the_first_line_replaces_the_hand_set_amount_and_a_different_amount_is_then_refused() -> None:
    opportunity = deal()
    assert add(opportunity, widget()) == D("100.01")
    assert opportunity.amount == D("100.01")  # not the 500 it was opened with
    with pytest.raises(InvalidValueError, match=r"it has 1 line\(s\), so its amount is their sum, 100.01"):
        opportunity.win(D("500"), AT)
    opportunity.win(D("100.01"), AT)  # the same amount is no contradiction
    assert opportunity.stage == "closed_won"


def test_a_line_on_a_closed_opportunity_is_refused_as_frozen() -> None:
    opportunity = deal()
    opportunity.lose("price", AT)
    with pytest.raises(FrozenAggregateError, match="cannot add a line to opportunity .* from closed_lost"):
        add(opportunity, widget())


def test_a_line_in_another_currency_is_refused() -> None:
    dollars = deal("USD")
    with pytest.raises(InvalidValueError) as refused:
        add(dollars, widget())
    assert str(refused.value) == (
        f"product 'WIDGET' is priced in EUR and opportunity {dollars.short_id} is in USD: a line must be in the "
        "opportunity's currency (crmflow converts no currency)"
    )
    assert dollars.lines == {} and dollars.amount == D("500")


def test_an_inactive_product_cannot_be_sold_and_can_be_activated_again() -> None:
    product = widget()
    product.deactivate()
    with pytest.raises(IllegalTransitionError, match="product 'WIDGET' is inactive: only active products can be sold"):
        product.check_can_be_sold()
    with pytest.raises(IllegalTransitionError, match="cannot deactivate product 'WIDGET' from inactive"):
        product.deactivate()
    product.activate()
    product.check_can_be_sold()


def test_a_product_id_is_its_tenants_code() -> None:
    assert widget().id == product_id("acme", "WIDGET")
    assert product_id("acme", "WIDGET") != product_id("globex", "WIDGET")
    assert product_id("acme", "WIDGET") != product_id("acme", "widget")  # codes are exact, case included


@pytest.mark.parametrize(
    ("recurring", "term", "says"),
    [
        (True, None, "a recurring product needs term_months"),
        (False, 12, "term_months (12) is for recurring products only"),
        (True, 0, "term_months must be from 1 to 120 (got 0)"),
    ],
)
def test_a_term_is_for_recurring_products_and_they_need_one(recurring: bool, term: int | None, says: str) -> None:
    with pytest.raises(InvalidValueError, match=says.replace("(", r"\(").replace(")", r"\)")):
        widget(recurring=recurring, term_months=term)


def test_a_line_once_an_asset_is_not_acquired_again() -> None:
    account = Account(tenant_id="acme", name="Acme", industry=None, website=None, owner=None)
    line = uuid4()
    args = {"opportunity_id": uuid4(), "line_id": line, "product_code": "WIDGET", "quantity": D("3"),
            "start_date": date(2026, 3, 2), "recurring": False, "term_months": None, "renewal_date": None}  # fmt: skip
    assert account.acquire_asset(**args) is True
    assert account.acquire_asset(**args) is False  # reopened and won again
    assert len(account.assets) == 1


USAGE = {"account_id": str(uuid4()), "product_code": "SUB-12", "quantity": "12.5", "period_start": "2026-11-01",
         "period_end": "2026-11-30"}  # fmt: skip


def test_usage_data_is_read_exactly() -> None:
    usage = usage_of(USAGE)
    assert (usage.quantity, usage.period_start, usage.period_end) == (D("12.5"), date(2026, 11, 1), date(2026, 11, 30))
    assert usage_of({**USAGE, "quantity": 40}).quantity == D(40)


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"quantity": 12.5}, "quantity 12.5 must be a decimal string"),
        ({"quantity": "-1"}, "quantity must be a number not below 0 (got -1)"),
        ({"quantity": "lots"}, "quantity 'lots' is not a decimal number"),
        ({"period_end": "2026-10-31"}, "period_end 2026-10-31 is before period_start 2026-11-01"),
        ({"period_start": "1 Nov 2026"}, "period_start '1 Nov 2026' is not a date (YYYY-MM-DD)"),
        ({"account_id": "acme-1"}, "account_id 'acme-1' is not a UUID"),
        ({"product_code": None}, "UsageReported data lacks product_code"),
    ],
)
def test_usage_that_does_not_say_what_was_used_when_is_refused_by_the_intake(changes: dict, says: str) -> None:
    document = {"specversion": "1.0", "id": "u1", "source": "/billing", "type": "UsageReported", "tenantid": "acme",
                "data": {**USAGE, **changes}}  # fmt: skip
    with pytest.raises(Rejected) as refused:
        check_inbound(json.dumps(document).encode(), InboundPolicy())
    assert refused.value.code == "bad_usage"
    assert says in refused.value.reason


def test_close_codes_are_found_whatever_their_case() -> None:
    from crmflow.aggregates.commands.product import close_codes

    assert close_codes("widget-pro", ["SUB-12", "WIDGET-PRO", "WIDGET"]) == ["WIDGET-PRO", "WIDGET"]
    assert close_codes("zzz", ["SUB-12", "WIDGET"]) == []
