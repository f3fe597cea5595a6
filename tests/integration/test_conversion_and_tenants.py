"""Lead conversion is all or nothing, and one tenant never touches another's records."""

from __future__ import annotations

import pytest

from crmflow.aggregates.application import CrmApplication
from crmflow.aggregates.errors import AggregateNotFoundError, IllegalTransitionError, InvalidValueError
from tests.conftest import Run


def qualified_lead(run: Run, tenant: str = "acme") -> str:
    lead = run("lead.create", tenant=tenant, name="Ada", company="Analytical Engines", email="ada@ae.example")
    run("lead.work", tenant=tenant, lead_id=lead.aggregate_id)
    run("lead.qualify", tenant=tenant, lead_id=lead.aggregate_id)
    return str(lead.aggregate_id)


def test_conversion_creates_account_contact_and_opportunity_in_one_transaction(app: CrmApplication, run: Run) -> None:
    lead = qualified_lead(run)
    before = app.recorder.max_notification_id() or 0

    result = run("lead.convert", lead_id=lead, opportunity={"name": "Pilot", "amount": "9000", "close_date": "2026-05-31"})

    notifications = app.recorder.select_notifications(start=before + 1, limit=10)
    # Four events, stored together, new records before the lead that points at them.
    assert [n.topic.rsplit(".", 1)[1] for n in notifications] == [
        "AccountCreated", "ContactCreated", "OpportunityCreated", "LeadConverted"]  # fmt: skip
    data = {e["type"]: e for e in result.events}
    account_id = data["AccountCreated"]["subject"]
    assert data["AccountCreated"]["data"]["name"] == "Analytical Engines"
    contact = data["ContactCreated"]["data"]
    assert (contact["account_id"], contact["email"]) == (account_id, "ada@ae.example")
    assert data["LeadConverted"]["data"]["account_id"] == account_id
    assert len({e["correlationid"] for e in result.events}) == 1


def test_conversion_links_an_existing_account_and_contact(app: CrmApplication, run: Run) -> None:
    account = run("account.create", name="Analytical Engines").aggregate_id
    contact = run("contact.create", account_id=account, name="Ada").aggregate_id
    lead = qualified_lead(run)

    result = run("lead.convert", lead_id=lead, account_id=account, contact_id=contact)

    assert [e["type"] for e in result.events] == ["LeadConverted"]
    assert app.state(result.aggregate_id, "acme")["account_id"] == str(account)


@pytest.mark.parametrize("problem", ["contact_of_other_account", "unknown_account", "lead_not_qualified"])
def test_a_refused_conversion_stores_nothing_at_all(app: CrmApplication, run: Run, problem: str) -> None:
    account = run("account.create", name="Globex").aggregate_id
    other = run("account.create", name="Initech").aggregate_id
    stranger = run("contact.create", account_id=other, name="Peter").aggregate_id
    lead = qualified_lead(run) if problem != "lead_not_qualified" else str(run("lead.create", name="X").aggregate_id)
    before = app.recorder.max_notification_id()
    args = {
        "contact_of_other_account": {"account_id": account, "contact_id": stranger},
        "unknown_account": {"account_id": "00000000-0000-4000-8000-000000000000"},
        "lead_not_qualified": {"opportunity": {"name": "P", "amount": "1", "close_date": "2026-05-31"}},
    }[problem]
    expected = {"contact_of_other_account": InvalidValueError, "unknown_account": AggregateNotFoundError,
                "lead_not_qualified": IllegalTransitionError}[problem]  # fmt: skip

    with pytest.raises(expected):
        run("lead.convert", lead_id=lead, **args)

    assert app.recorder.max_notification_id() == before
    assert app.state(lead, "acme")["status"] in ("qualified", "new")


def test_another_tenant_cannot_see_or_touch_a_lead(app: CrmApplication, run: Run) -> None:
    lead = run("lead.create", tenant="acme", name="Ada").aggregate_id

    # Globex knows the id (say it leaked), and still cannot act on it or read it.
    for name, data in [("lead.assign", {"owner": "mallory"}), ("lead.work", {}), ("lead.score", {"points": 5, "reason": "x"})]:
        with pytest.raises(AggregateNotFoundError, match=f"lead {lead} not found in tenant globex"):
            run(name, tenant="globex", lead_id=lead, **data)
    with pytest.raises(AggregateNotFoundError):
        app.state(lead, "globex")
    assert app.history(lead, "globex") == []
    assert [h.type for h in app.history(lead, "acme")] == ["LeadCreated"]


def test_another_tenant_cannot_link_records_across_tenants(run: Run) -> None:
    acme_account = run("account.create", tenant="acme", name="Acme Corp").aggregate_id
    globex_lead = qualified_lead(run, tenant="globex")
    with pytest.raises(AggregateNotFoundError, match="account .* not found in tenant globex"):
        run("lead.convert", tenant="globex", lead_id=globex_lead, account_id=acme_account)
    with pytest.raises(AggregateNotFoundError):
        run("opportunity.create", tenant="globex", account_id=acme_account, name="x", amount="1", close_date="2026-01-01")
    with pytest.raises(AggregateNotFoundError):
        run("case.open", tenant="globex", subject="x", account_id=acme_account)


def test_a_malformed_tenant_id_is_refused(run: Run) -> None:
    with pytest.raises(InvalidValueError, match="tenant 'Acme Corp' is not a valid tenant id"):
        run("lead.create", tenant="Acme Corp", name="Ada")
