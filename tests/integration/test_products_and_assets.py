"""Stories of the price list, line items, assets and usage, on SQLite and PostgreSQL (figures worked out by hand)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal as D
from typing import Any

import pytest

from crmflow.aggregates.application import CrmApplication
from crmflow.aggregates.errors import (
    AggregateExistsError,
    AggregateNotFoundError,
    DomainError,
    FrozenAggregateError,
    IllegalTransitionError,
    InvalidCommandError,
    InvalidValueError,
)
from crmflow.projections.db import Database
from crmflow.projections.projector import apply_all
from crmflow.projections.reports import REPORTS, pipeline
from crmflow.workers.history import stored_history
from crmflow.workers.inbound_checks import InboundPolicy
from crmflow.workers.kafka import deadletters
from crmflow.workers.kafka.clients import KafkaClients
from crmflow.workers.kafka.intake import Intake
from tests.conftest import Clock, Run
from tests.integration.api_harness import Api
from tests.integration.test_intake import drain, publish


def stored(app: CrmApplication) -> int:
    """How many events the store holds: unchanged means nothing was stored."""
    return int(app.recorder.max_notification_id() or 0)


def price_list(run: Run) -> None:
    run("product.create", code="WIDGET", name="Widget", family="hardware", list_price="33.335")
    run("product.create", code="SUB-12", name="Support subscription", family="services", list_price="100.00",
        recurring=True, term_months=12)  # fmt: skip


@pytest.fixture
def deal(run: Run) -> dict[str, Any]:
    """Acme's price list, and an open 1,000 EUR opportunity of the account Initech."""
    price_list(run)
    account = run("account.create", name="Initech").aggregate_id
    opportunity = run("opportunity.create", account_id=account, name="Initech rollout", amount="1000",
                      close_date="2026-04-30", owner="maria").aggregate_id  # fmt: skip
    return {"account": account, "opportunity": opportunity}


def project(app: CrmApplication, reports: Database) -> Database:
    apply_all(reports, stored_history(app))
    return reports


def test_an_opportunity_with_two_lines_is_worth_their_sum_and_winning_it_gives_the_account_two_assets(
    app: CrmApplication, run: Run, clock: Clock, reports: Database, deal: dict[str, Any]
) -> None:
    # 3 widgets at the list price 33.335 with 12.5% off: 100.005 × 0.875 = 87.504375 → 87.50.
    widgets = run("opportunity.add_line", opportunity_id=deal["opportunity"], product_code="WIDGET", quantity="3",
                  discount="12.5")  # fmt: skip
    # 2 support subscriptions at 95.00 (not the list price 100.00): 2 × 95.00 = 190.00.
    run("opportunity.add_line", opportunity_id=deal["opportunity"], product_code="SUB-12", quantity="2",
        unit_price="95.00")  # fmt: skip
    assert widgets.events[0]["data"]["line_amount"] == "87.50"
    # The opportunity is worth its lines, 87.50 + 190.00 = 277.50, no longer the 1,000 it was opened with.
    assert app.state(deal["opportunity"], "acme")["amount"] == "277.50"
    assert pipeline(project(app, reports), "acme")[0]["amount"] == D("277.50")

    clock.advance(days=1)  # won on Tuesday 3 March 2026
    won = run("opportunity.win", opportunity_id=deal["opportunity"])
    assert [e["type"] for e in won.events] == ["OpportunityWon", "AccountAssetAcquired", "AccountAssetAcquired"]
    assert won.events[0]["data"]["amount"] == "277.50"

    rows = project(app, reports).query(
        "SELECT account_id, product_code, quantity, start_date, recurring, term_months, renewal_date FROM rm_assets "
        "WHERE tenant = 'acme' ORDER BY product_code"
    )  # fmt: skip
    assets = [{k: str(v) if v is not None else None for k, v in row.items()} for row in rows]
    assert assets == [
        # A subscription's asset renews 12 months after the win: 3 March 2027.
        {"account_id": str(deal["account"]), "product_code": "SUB-12", "quantity": "2", "start_date": "2026-03-03",
         "recurring": "1", "term_months": "12", "renewal_date": "2027-03-03"},
        {"account_id": str(deal["account"]), "product_code": "WIDGET", "quantity": "3", "start_date": "2026-03-03",
         "recurring": "0", "term_months": None, "renewal_date": None},
    ]  # fmt: skip
    (won_row,) = reports.query("SELECT stage, amount FROM rm_opportunities WHERE tenant = 'acme'")
    assert (won_row["stage"], D(str(won_row["amount"]))) == ("closed_won", D("277.50"))
    lines = reports.query("SELECT product_code, amount FROM rm_opportunity_lines WHERE tenant = 'acme' "
                          "ORDER BY product_code")  # fmt: skip
    assert [(r["product_code"], D(str(r["amount"]))) for r in lines] == [("SUB-12", D("190.00")), ("WIDGET", D("87.50"))]


def test_a_line_with_an_unknown_product_code_is_refused_and_nothing_is_stored(
    app: CrmApplication, run: Run, deal: dict[str, Any]
) -> None:
    before = stored(app)
    with pytest.raises(AggregateNotFoundError) as refused:
        run("opportunity.add_line", opportunity_id=deal["opportunity"], product_code="WIDGTE", quantity="1")
    assert str(refused.value) == "product code 'WIDGTE' not found in tenant acme; did you mean 'WIDGET'?"
    assert stored(app) == before
    assert app.state(deal["opportunity"], "acme")["amount"] == "1000"


def test_another_tenants_product_code_is_unknown_too(run: Run, deal: dict[str, Any]) -> None:
    run("product.create", tenant="globex", code="GLOBEX-ONLY", name="Theirs", list_price="5")
    with pytest.raises(AggregateNotFoundError, match="product code 'GLOBEX-ONLY' not found in tenant acme$"):
        run("opportunity.add_line", opportunity_id=deal["opportunity"], product_code="GLOBEX-ONLY", quantity="1")


def test_a_second_product_with_the_same_code_is_refused_and_another_tenant_may_use_the_code(
    app: CrmApplication, run: Run
) -> None:
    price_list(run)
    before = stored(app)
    with pytest.raises(AggregateExistsError) as refused:
        run("product.create", code="WIDGET", name="Another widget", list_price="1")
    assert str(refused.value) == (
        "cannot create product 'WIDGET': tenant acme has a product with that code already (product.update changes it)"
    )
    assert stored(app) == before
    theirs = run("product.create", tenant="globex", code="WIDGET", name="Globex widget", list_price="2")
    assert theirs.events[0]["data"]["code"] == "WIDGET"


@pytest.mark.parametrize(
    ("setup", "line", "error", "says"),
    [
        ("lose", {"product_code": "WIDGET", "quantity": "1"}, FrozenAggregateError,
         "cannot add a line to opportunity {short} from closed_lost: closed opportunities are frozen; reopen it first"),
        ("deactivate", {"product_code": "WIDGET", "quantity": "1"}, IllegalTransitionError,
         "product 'WIDGET' is inactive: only active products can be sold (product.activate it first)"),
        ("dollars", {"product_code": "DOLLAR-KIT", "quantity": "1"}, InvalidValueError,
         "product 'DOLLAR-KIT' is priced in USD and opportunity {short} is in EUR: a line must be in the "
         "opportunity's currency (crmflow converts no currency)"),
        (None, {"product_code": "WIDGET", "quantity": "0"}, InvalidCommandError,
         "opportunity.add_line payload is invalid: quantity: Input should be greater than 0"),
        (None, {"product_code": "WIDGET", "quantity": "1", "discount": "100.5"}, InvalidCommandError,
         "opportunity.add_line payload is invalid: discount: Input should be less than or equal to 100"),
        (None, {"product_code": "WIDGET", "quantity": "1", "discount": "-1"}, InvalidCommandError,
         "opportunity.add_line payload is invalid: discount: Input should be greater than or equal to 0"),
    ],
    ids=["closed", "inactive-product", "other-currency", "zero-quantity", "discount-over-100", "negative-discount"],
)  # fmt: skip
def test_a_refused_line_is_refused_in_one_line_and_nothing_is_stored(
    app: CrmApplication, run: Run, deal: dict[str, Any], setup: str | None, line: dict[str, str],
    error: type[DomainError], says: str,
) -> None:  # fmt: skip
    if setup == "lose":
        run("opportunity.lose", opportunity_id=deal["opportunity"], reason="budget")
    elif setup == "deactivate":
        run("product.deactivate", code="WIDGET")
    elif setup == "dollars":
        run("product.create", code="DOLLAR-KIT", name="Kit", list_price="10", currency="USD")
    before = stored(app)
    with pytest.raises(error) as refused:
        run("opportunity.add_line", opportunity_id=deal["opportunity"], **line)
    assert str(refused.value) == says.format(short=str(deal["opportunity"])[:8])
    assert "\n" not in str(refused.value)
    assert stored(app) == before


def test_removing_a_line_leaves_the_opportunity_worth_the_lines_left(
    app: CrmApplication, run: Run, reports: Database, deal: dict[str, Any]
) -> None:
    first = run("opportunity.add_line", opportunity_id=deal["opportunity"], product_code="WIDGET", quantity="3")
    run("opportunity.add_line", opportunity_id=deal["opportunity"], product_code="SUB-12", quantity="1")
    # 3 × 33.335 = 100.005 → 100.01; + 1 × 100.00 = 200.01; without the widgets: 100.00.
    assert app.state(deal["opportunity"], "acme")["amount"] == "200.01"
    line_id = first.events[0]["data"]["line_id"]
    removed = run("opportunity.remove_line", opportunity_id=deal["opportunity"], line_id=line_id)
    assert removed.events[0]["data"]["amount"] == "100.00"
    project(app, reports)
    assert [r["product_code"] for r in reports.query("SELECT product_code FROM rm_opportunity_lines")] == ["SUB-12"]
    (row,) = reports.query("SELECT amount FROM rm_opportunities WHERE tenant = 'acme'")
    assert D(str(row["amount"])) == D("100.00")
    with pytest.raises(InvalidValueError, match=f"has no line {line_id}"):
        run("opportunity.remove_line", opportunity_id=deal["opportunity"], line_id=line_id)


def test_a_won_deal_reopened_and_won_again_gives_no_second_asset_for_a_line(
    app: CrmApplication, run: Run, reports: Database, deal: dict[str, Any]
) -> None:
    run("opportunity.add_line", opportunity_id=deal["opportunity"], product_code="SUB-12", quantity="5")
    run("opportunity.win", opportunity_id=deal["opportunity"])
    run("opportunity.reopen", opportunity_id=deal["opportunity"])
    again = run("opportunity.win", opportunity_id=deal["opportunity"])
    assert [e["type"] for e in again.events] == ["OpportunityWon"]
    assert len(project(app, reports).query("SELECT asset_id FROM rm_assets")) == 1


def test_a_price_change_and_a_deactivation_land_in_the_products_table(
    app: CrmApplication, run: Run, reports: Database
) -> None:
    price_list(run)
    run("product.update", code="WIDGET", list_price="35.5")
    run("product.deactivate", code="SUB-12")
    rows = project(app, reports).query("SELECT code, list_price, active, recurring, term_months FROM rm_products "
                                       "WHERE tenant = 'acme' ORDER BY code")  # fmt: skip
    assert [(r["code"], D(str(r["list_price"])), r["active"], r["recurring"], r["term_months"]) for r in rows] == [
        ("SUB-12", D("100.00"), 0, 1, 12),
        ("WIDGET", D("35.5"), 1, 0, None),
    ]


def usage(tenant: str, account: Any, event_id: str, quantity: str = "1250.5", code: str = "SUB-12") -> bytes:
    return json.dumps({
        "specversion": "1.0", "id": event_id, "source": "/billing/metering", "type": "UsageReported",
        "tenantid": tenant, "time": "2026-12-01T06:00:00Z",
        "data": {"account_id": str(account), "product_code": code, "quantity": quantity,
                 "period_start": "2026-11-01", "period_end": "2026-11-30"},
    }).encode()  # fmt: skip


@pytest.fixture
def intake(app: CrmApplication, kafka: KafkaClients) -> Iterator[Intake]:
    """The intake as deployed, on a real broker (the bundled one and Apache Kafka: tests/conftest.py)."""
    worker = Intake(app, kafka, InboundPolicy())
    yield worker
    worker.close()


def test_usage_reported_by_billing_lands_in_the_usage_table(
    app: CrmApplication, run: Run, reports: Database, deal: dict[str, Any], kafka: KafkaClients, intake: Intake
) -> None:
    run("account.create", tenant="globex", name="Hooli")
    # One key, so one partition: the four arrive in the order sent, the repeat after the first.
    publish(
        kafka,
        usage("acme", deal["account"], "m-1"),
        # globex's billing names acme's account: refused exactly as an account nobody has.
        usage("globex", deal["account"], "m-2"),
        # acme's billing names a product code acme does not sell.
        usage("acme", deal["account"], "m-3", code="SUB-21"),
        usage("acme", deal["account"], "m-1"),  # the first one delivered again: a duplicate
    )

    drain(intake, handled=4)

    assert (intake.counts["accepted"], intake.counts["duplicate"], intake.counts["unknown_reference"]) == (1, 1, 2)
    # Both refusals are on the dead-letter topic, as sent, with the one-line reason.
    dead = deadletters.list_dead_letters(kafka)
    letters = {json.loads(letter.value)["id"]: letter for letter in dead}
    assert len(dead) == 2 and sorted(letters) == ["m-2", "m-3"]
    assert {k: (v.error, v.headers["crmflow-reason"]) for k, v in letters.items()} == {
        "m-2": ("unknown_reference", f"account {deal['account']} not found in tenant globex"),
        "m-3": ("unknown_reference", "product code 'SUB-21' not found in tenant acme; did you mean 'SUB-12'?"),
    }
    assert letters["m-2"].value == usage("globex", deal["account"], "m-2")
    assert letters["m-2"].headers["crmflow-original-topic"] == kafka.topics.inbound
    rows = project(app, reports).query("SELECT * FROM rm_usage")
    assert [(r["tenant"], r["event_id"], r["account_id"], r["product_code"], D(str(r["quantity"])),
             str(r["period_start"]), str(r["period_end"])) for r in rows] == [
        ("acme", "m-1", str(deal["account"]), "SUB-12", D("1250.5"), "2026-11-01", "2026-11-30"),
    ]  # fmt: skip
    # Applying the history again (a rebuild overlapping the live stream) writes no second row.
    project(app, reports)
    assert len(reports.query("SELECT event_id FROM rm_usage")) == 1


def test_usage_sent_over_http_for_another_tenants_account_is_refused_and_nothing_is_stored(api: Api) -> None:
    acme, globex = api.user("acme", "admin"), api.user("globex", "admin")
    account = acme.created("account.create", name="Initech")
    acme.created("product.create", code="SUB-12", name="Support", list_price="100", recurring=True, term_months=12)
    before = api.stored()
    refused = globex.post("/v1/events", content=usage("globex", account, "h-1"),
                          headers={"Content-Type": "application/cloudevents+json"})  # fmt: skip
    assert refused.status_code == 422
    assert refused.json()["error"] == "unknown_reference"
    assert refused.json()["message"] == f"account {account} not found in tenant globex"
    assert api.stored() == before
    accepted = acme.post("/v1/events", content=usage("acme", account, "h-1"),
                         headers={"Content-Type": "application/cloudevents+json"})  # fmt: skip
    assert (accepted.status_code, accepted.json()) == (202, {"stored": True})


def test_the_products_report_shows_the_open_pipeline_the_assets_and_the_last_periods_usage(
    app: CrmApplication, run: Run, reports: Database, deal: dict[str, Any]
) -> None:
    other = run("account.create", name="Umbrella").aggregate_id
    # The open deal: 3 widgets with 12.5% off (87.50) and 2 subscriptions at 95.00 (190.00).
    run("opportunity.add_line", opportunity_id=deal["opportunity"], product_code="WIDGET", quantity="3", discount="12.5")
    run("opportunity.add_line", opportunity_id=deal["opportunity"], product_code="SUB-12", quantity="2", unit_price="95")
    # A won deal: 1 subscription, now Umbrella's asset; a lost one: 4 widgets, in no pipeline.
    won = run("opportunity.create", account_id=other, name="Won", amount="1", close_date="2026-04-30").aggregate_id
    run("opportunity.add_line", opportunity_id=won, product_code="SUB-12", quantity="1")
    run("opportunity.win", opportunity_id=won)
    lost = run("opportunity.create", account_id=other, name="Lost", amount="1", close_date="2026-04-30").aggregate_id
    run("opportunity.add_line", opportunity_id=lost, product_code="WIDGET", quantity="4")
    run("opportunity.lose", opportunity_id=lost, reason="price")
    # globex sells a WIDGET too: none of its figures are acme's.
    run("product.create", tenant="globex", code="WIDGET", name="Theirs", list_price="1")
    theirs = run("account.create", tenant="globex", name="Hooli").aggregate_id
    globex_deal = run("opportunity.create", tenant="globex", account_id=theirs, name="G", amount="1",
                      close_date="2026-04-30").aggregate_id  # fmt: skip
    run("opportunity.add_line", tenant="globex", opportunity_id=globex_deal, product_code="WIDGET", quantity="1000")
    # Usage of SUB-12: October 300 (Initech); November 1,250.5 (Initech) + 49.5 (Umbrella) = 1,300.0.
    for event_id, account, amount, start, end in [("u-1", deal["account"], "300", "2026-10-01", "2026-10-31"),
                                                  ("u-2", deal["account"], "1250.5", "2026-11-01", "2026-11-30"),
                                                  ("u-3", other, "49.5", "2026-11-01", "2026-11-30")]:  # fmt: skip
        document = json.loads(usage("acme", account, event_id, amount))
        document["data"].update(period_start=start, period_end=end)
        assert app.accept_inbound([("acme", document)]) == [True]

    rows = REPORTS["products"].run(project(app, reports), "acme")
    assert rows == [
        {"code": "SUB-12", "name": "Support subscription", "family": "services", "active": True, "currency": "EUR",
         "list_price": D("100.00"), "open_lines": 1, "open_quantity": D("2"), "open_amount": D("190.00"),
         "assets": 1, "asset_quantity": D("1"), "last_usage_period": "2026-11-01..2026-11-30",
         "last_usage_quantity": D("1300.0")},
        {"code": "WIDGET", "name": "Widget", "family": "hardware", "active": True, "currency": "EUR",
         "list_price": D("33.335"), "open_lines": 1, "open_quantity": D("3"), "open_amount": D("87.50"),
         "assets": 0, "asset_quantity": D("0"), "last_usage_period": None, "last_usage_quantity": None},
    ]  # fmt: skip


def test_usage_naming_an_account_by_the_id_the_tenant_chose_is_filed_under_the_stored_id(
    app: CrmApplication, run: Run, reports: Database, kafka: KafkaClients, intake: Intake
) -> None:
    price_list(run)
    chosen = "0b5e3c7a-6a4f-4f7e-9d0c-3a1b2c3d4e5f"
    stored_id = str(run("account.create", account_id=chosen, name="Initech").aggregate_id)
    assert stored_id != chosen  # stored per tenant (aggregates/ids.py)
    publish(kafka, usage("acme", chosen, "c-1"))
    drain(intake, handled=1)
    assert intake.counts["accepted"] == 1
    rows = project(app, reports).query("SELECT account_id FROM rm_usage")
    assert rows == [{"account_id": stored_id}], "joins rm_accounts like every other row of the account"
