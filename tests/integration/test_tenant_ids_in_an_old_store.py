"""Records stored before ids were scoped per tenant keep their ids: the store written by release 0.1
(tests/fixtures/store-0.1.sqlite, see test_store_from_release_0_1.py) is commanded, read and referred to
by the ids it holds, its tenant cannot create a second record under one, and another tenant can."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID

import pytest

from crmflow.aggregates.application import CommandRequest, CrmApplication
from crmflow.aggregates.errors import AggregateExistsError, AggregateNotFoundError
from crmflow.aggregates.ids import scoped_id
from tests.integration.test_store_from_release_0_1 import OLD_ROWS


def first_of(topic: str) -> UUID:
    return next(UUID(str(row.originator_id)) for row in OLD_ROWS if row.topic == topic)


@pytest.fixture
def old_store(database_url: str) -> Iterator[CrmApplication]:
    app = CrmApplication(database_url)
    app.recorder.insert_events(OLD_ROWS)
    yield app
    app.close()


def test_an_old_record_is_commanded_and_referred_to_by_its_stored_id(old_store: CrmApplication) -> None:
    lead = next(
        UUID(str(row.originator_id))
        for row in OLD_ROWS
        if row.topic == "aggregates.lead:Lead.LeadCreated"
        and old_store.state(row.originator_id, "acme")["status"] in ("new", "working")
    )
    campaign = first_of("aggregates.campaign:Campaign.CampaignCreated")
    account = first_of("aggregates.account:Account.AccountCreated")

    old_store.execute(
        CommandRequest("lead.score", "acme", {"lead_id": str(lead), "points": 5, "reason": "call"})
    )
    linked = old_store.execute(
        CommandRequest("lead.create", "acme", {"name": "New", "campaign_id": str(campaign)})
    )
    case = old_store.execute(
        CommandRequest("case.open", "acme", {"subject": "S", "account_id": str(account)})
    )

    assert old_store.state(linked.aggregate_id, "acme")["campaign_id"] == str(campaign)
    assert old_store.state(case.aggregate_id, "acme")["account_id"] == str(account)
    assert old_store.history(lead, "acme")[-1].type == "LeadScoreChanged"


def test_an_old_id_is_taken_for_its_own_tenant_and_free_for_another(old_store: CrmApplication) -> None:
    lead = first_of("aggregates.lead:Lead.LeadCreated")
    before = old_store.recorder.max_notification_id()

    with pytest.raises(
        AggregateExistsError, match=f"^cannot create account {lead}: that id is already taken$"
    ):
        old_store.execute(CommandRequest("account.create", "acme", {"account_id": str(lead), "name": "Twin"}))
    assert old_store.recorder.max_notification_id() == before

    theirs = old_store.execute(
        CommandRequest("lead.create", "globex", {"lead_id": str(lead), "name": "Hank"})
    )
    assert theirs.aggregate_id == scoped_id("globex", lead)
    assert old_store.state(lead, "globex")["name"] == "Hank", "globex names its own record by the id it chose"
    assert old_store.state(lead, "acme")["name"] != "Hank", "acme's old lead is still acme's"
    with pytest.raises(AggregateNotFoundError):
        old_store.execute(CommandRequest("lead.work", "globex", {"lead_id": str(scoped_id("acme", lead))}))
