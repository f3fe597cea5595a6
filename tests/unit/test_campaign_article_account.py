"""Campaigns, knowledge articles, accounts and contacts."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

import pytest

from crmflow.aggregates.account import Account
from crmflow.aggregates.article import Article
from crmflow.aggregates.campaign import Campaign
from crmflow.aggregates.contact import Contact
from crmflow.aggregates.errors import IllegalTransitionError, InvalidValueError


def new_campaign() -> Campaign:
    return Campaign.plan(tenant_id="acme", name="Spring webinar", channel="webinar", budget=Decimal("5000"),
                         currency="EUR", start_date=date(2026, 3, 1), end_date=date(2026, 3, 31))  # fmt: skip


def test_a_campaign_is_planned_run_and_completed_and_costs_add_up() -> None:
    campaign = new_campaign()
    campaign.activate()
    campaign.record_cost(Decimal("3000"), "platform")
    campaign.complete()
    campaign.record_cost(Decimal("2500"), "late invoice")  # invoices arrive after the end
    events = campaign.collect_events()
    assert (campaign.status, campaign.actual_cost) == ("completed", Decimal("5500"))
    assert [e.over_budget for e in events if type(e).__name__ == "CampaignCostRecorded"] == [False, True]


@pytest.mark.parametrize(
    ("steps", "verb", "message"),
    [
        ([], "complete", "cannot complete campaign .* from planned: allowed from active"),
        (["activate"], "activate", "cannot activate campaign .* from active: allowed from planned"),
        (["activate", "complete"], "activate", "from completed: allowed from planned"),
        (["activate", "complete"], "complete", "from completed: allowed from active"),
    ],
)
def test_a_campaign_refuses_moves_outside_planned_active_completed(steps: list[str], verb: str, message: str) -> None:
    campaign = new_campaign()
    for step in steps:
        getattr(campaign, step)()
    with pytest.raises(IllegalTransitionError, match=message):
        getattr(campaign, verb)()


def test_a_campaign_on_an_unknown_channel_is_refused() -> None:
    with pytest.raises(InvalidValueError, match="channel 'fax' is not allowed"):
        Campaign.plan(tenant_id="acme", name="x", channel="fax", budget=Decimal(1), currency="EUR",
                      start_date=None, end_date=None)  # fmt: skip


def new_article() -> Article:
    return Article(tenant_id="acme", title="Reset your password", body="Click 'forgot password'.",
                   category="login", tags=["password"])  # fmt: skip


def test_an_article_is_drafted_published_archived_and_published_again() -> None:
    article = new_article()
    with pytest.raises(IllegalTransitionError, match="only published articles can resolve cases"):
        article.check_is_published()
    article.publish()
    article.check_is_published()
    article.archive()
    with pytest.raises(IllegalTransitionError, match="it is archived; publish it again first"):
        article.revise("New title", None)
    with pytest.raises(IllegalTransitionError, match="cannot archive article .* from archived"):
        article.archive()
    article.publish()
    article.revise("Reset your password (2026)", None)
    assert (article.status, article.title) == ("published", "Reset your password (2026)")


def test_an_account_adds_up_payments_and_costs_to_serve() -> None:
    account = Account(tenant_id="acme", name="Globex", industry="manufacturing", website=None, owner="maria")
    account.record_payment("INV-1", Decimal("1200.50"), "EUR", date(2026, 3, 5))
    account.record_payment("INV-2", Decimal("800"), "EUR", date(2026, 4, 5))
    account.record_cost(Decimal("300"), "support", None)
    assert (account.revenue, account.cost_to_serve) == (Decimal("2000.50"), Decimal("300"))
    with pytest.raises(InvalidValueError, match="amount must not be negative"):
        account.record_payment("INV-3", Decimal("-5"), "EUR", date(2026, 4, 5))


def test_a_contact_of_another_account_cannot_be_linked() -> None:
    contact = Contact(tenant_id="acme", account_id=uuid.uuid4(), name="Hank", email=None, phone=None, title=None)
    with pytest.raises(InvalidValueError, match="link a contact of the same account"):
        contact.check_belongs_to(uuid.uuid4())
    contact.update(None, "+49 30 1234", None)
    assert (contact.phone, contact.email) == ("+49 30 1234", None)
