"""Whole stories through the command service, stored in SQLite and in PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest

from crmflow.aggregates.application import CrmApplication
from crmflow.aggregates.errors import (
    AggregateExistsError,
    IllegalTransitionError,
    InvalidCommandError,
    UnknownCommandError,
)
from tests.conftest import Clock, Run


def max_notification_id(app: CrmApplication) -> int:
    return app.recorder.max_notification_id() or 0


def test_a_webinar_lead_becomes_a_won_deal(app: CrmApplication, run: Run) -> None:
    # Marketing plans and runs a webinar campaign.
    campaign = run("campaign.create", name="Spring webinar", channel="webinar", budget="5000").aggregate_id
    run("campaign.activate", campaign_id=campaign)
    # A lead registers; sales works and qualifies it.
    lead = run("lead.create", name="Ada", company="Analytical Engines", source="webinar",
               campaign_id=campaign).aggregate_id  # fmt: skip
    run("lead.assign", lead_id=lead, owner="maria")
    run("lead.work", lead_id=lead)
    run("lead.qualify", lead_id=lead)
    # Conversion opens the deal, which moves through the pipeline and is won.
    converted = run("lead.convert", lead_id=lead, opportunity={
        "name": "100 seats", "amount": "50000", "close_date": "2026-06-30"})  # fmt: skip
    deal = next(e["subject"] for e in converted.events if e["type"] == "OpportunityCreated")
    for stage in ("qualification", "proposal", "negotiation"):
        run("opportunity.advance", opportunity_id=deal, stage=stage)
    won = run("opportunity.win", opportunity_id=deal, amount="48000")

    assert won.events[0]["data"] | {"closed_at": None} == {
        "stage": "closed_won", "previous_stage": "negotiation", "probability": 100,
        "amount": "48000", "closed_at": None}  # fmt: skip
    state = app.state(converted.aggregate_id, "acme")
    assert (state["status"], state["opportunity_id"]) == ("converted", deal)
    deal_state = app.state(won.aggregate_id, "acme")
    assert (deal_state["campaign_id"], deal_state["owner"]) == (str(campaign), "maria")


def test_an_urgent_case_is_answered_escalated_resolved_with_an_article_and_closed(
    app: CrmApplication, run: Run, clock: Clock
) -> None:
    article = run(
        "article.create", title="Reset MFA", body="Use the recovery codes.", category="login"
    ).aggregate_id
    run("article.publish", article_id=article)
    case = run(
        "case.open", subject="Locked out after MFA reset", priority="urgent", channel="phone"
    ).aggregate_id

    clock.advance(minutes=20)
    run("case.respond", case_id=case, message="Looking into it")
    clock.advance(hours=2)
    run("case.escalate", case_id=case, reason="needs tier 2")
    clock.advance(hours=1)
    resolved = run("case.resolve", case_id=case, solution="Recovery codes", article_id=article)
    run("case.close", case_id=case)

    state = app.state(case, "acme")
    assert state["status"] == "closed"
    assert state["first_responded_at"] == (clock.now - timedelta(hours=3)).isoformat()
    assert resolved.events[0]["data"]["within_sla"] is True  # 3h20m of an 8h resolution SLA
    assert resolved.events[0]["time"] == clock.now.isoformat()


def test_a_case_cannot_be_resolved_with_a_draft_article(app: CrmApplication, run: Run) -> None:
    draft = run("article.create", title="WIP", body="...", category="billing").aggregate_id
    case = run("case.open", subject="Invoice wrong").aggregate_id
    run("case.respond", case_id=case)
    with pytest.raises(IllegalTransitionError, match="is draft: only published articles can resolve cases"):
        run("case.resolve", case_id=case, solution="see article", article_id=draft)


def test_a_refused_command_stores_nothing(app: CrmApplication, run: Run) -> None:
    lead = run("lead.create", name="Bob").aggregate_id
    before = max_notification_id(app)

    with pytest.raises(IllegalTransitionError, match="cannot qualify lead .* from new: allowed from working"):
        run("lead.qualify", lead_id=lead)

    assert max_notification_id(app) == before
    assert app.state(lead, "acme")["status"] == "new"


def test_unknown_commands_and_bad_payloads_are_named_precisely(run: Run) -> None:
    with pytest.raises(UnknownCommandError, match="unknown command 'lead.qualfy'; did you mean lead.qualify"):
        run("lead.qualfy")
    with pytest.raises(InvalidCommandError) as bad:
        run(
            "opportunity.create",
            account_id="not-a-uuid",
            name="",
            amount="-5",
            close_date="soon",
            colour="red",
        )
    problems = bad.value.details["errors"]
    assert any(p.startswith("account_id: Input should be a valid UUID") for p in problems)
    assert any(p.startswith("amount: Input should be greater than or equal to 0") for p in problems)
    assert any(p.startswith("close_date:") for p in problems)
    assert "colour: unknown field; allowed: opportunity_id, account_id, name, amount, currency, close_date, " \
        "owner, stage, campaign_id" in problems


def test_a_caller_chosen_id_cannot_be_taken_twice(run: Run) -> None:
    import uuid

    from crmflow.aggregates.ids import scoped_id

    lead_id = uuid.uuid4()
    # A chosen id is the tenant's own (docs/domain.md, "Ids are per tenant"): stored scoped to acme.
    assert run("lead.create", lead_id=lead_id, name="Ada").aggregate_id == scoped_id("acme", lead_id)
    with pytest.raises(AggregateExistsError, match=f"cannot create lead {lead_id}: that id is already taken"):
        run("lead.create", lead_id=lead_id, name="Eve")
