"""opportunity.* commands."""

from __future__ import annotations

from datetime import date
from typing import Literal
from uuid import UUID

from pydantic import Field

from crmflow.aggregates.account import Account
from crmflow.aggregates.campaign import Campaign
from crmflow.aggregates.commanding import CommandContext, Payload, command
from crmflow.aggregates.commands.fields import Currency, Money, Name, Owner, Reason
from crmflow.aggregates.commands.lines import record_assets
from crmflow.aggregates.opportunity import Opportunity

OpenStage = Literal["prospecting", "qualification", "proposal", "negotiation"]


class CreateOpportunity(Payload):
    opportunity_id: UUID | None = Field(None, description="choose the id (else one is made)")
    account_id: UUID
    name: Name
    amount: Money
    currency: Currency = "EUR"
    close_date: date
    owner: Owner | None = None
    stage: OpenStage = "prospecting"
    campaign_id: UUID | None = None


class AdvanceOpportunity(Payload):
    opportunity_id: UUID
    stage: OpenStage | None = Field(None, description="a later open stage; default: the next")


class WinOpportunity(Payload):
    opportunity_id: UUID
    amount: Money | None = Field(None, description="final amount; default: the current amount")


class LoseOpportunity(Payload):
    opportunity_id: UUID
    reason: Reason


class ReopenOpportunity(Payload):
    opportunity_id: UUID
    stage: OpenStage = "negotiation"


class UpdateOpportunity(Payload):
    opportunity_id: UUID
    name: Name | None = None
    amount: Money | None = None
    close_date: date | None = None


class AssignOpportunity(Payload):
    opportunity_id: UUID
    owner: Owner


@command("opportunity.create", CreateOpportunity, emits=("OpportunityCreated",))
def create_opportunity(ctx: CommandContext, p: CreateOpportunity) -> Opportunity:
    """Open an opportunity for an account of the tenant."""
    opportunity_id = ctx.claim_id(Opportunity, p.opportunity_id)
    account_id = ctx.reference(Account, p.account_id)
    campaign_id = ctx.reference(Campaign, p.campaign_id)
    return ctx.add(
        Opportunity.open(
            tenant_id=ctx.tenant, account_id=account_id, name=p.name, amount=p.amount,
            currency=p.currency, close_date=p.close_date, owner=p.owner, stage=p.stage,
            campaign_id=campaign_id, opportunity_id=opportunity_id,
        )
    )  # fmt: skip


@command("opportunity.advance", AdvanceOpportunity, emits=("OpportunityStageChanged",))
def advance_opportunity(ctx: CommandContext, p: AdvanceOpportunity) -> Opportunity:
    """Move forward in the pipeline: to the next stage or a named later one."""
    opportunity = ctx.load(Opportunity, p.opportunity_id)
    opportunity.advance(p.stage)
    return opportunity


@command("opportunity.win", WinOpportunity, emits=("OpportunityWon", "AccountAssetAcquired"))
def win_opportunity(ctx: CommandContext, p: WinOpportunity) -> Opportunity:
    """Close the opportunity as won (from any open stage); its lines become the account's assets."""
    opportunity = ctx.load(Opportunity, p.opportunity_id)
    opportunity.win(p.amount, ctx.at)
    record_assets(ctx, opportunity)
    return opportunity


@command("opportunity.lose", LoseOpportunity, emits=("OpportunityLost",))
def lose_opportunity(ctx: CommandContext, p: LoseOpportunity) -> Opportunity:
    """Close the opportunity as lost (from any open stage), with the reason."""
    opportunity = ctx.load(Opportunity, p.opportunity_id)
    opportunity.lose(p.reason, ctx.at)
    return opportunity


@command("opportunity.reopen", ReopenOpportunity, emits=("OpportunityReopened",))
def reopen_opportunity(ctx: CommandContext, p: ReopenOpportunity) -> Opportunity:
    """Reopen a closed opportunity at an open stage."""
    opportunity = ctx.load(Opportunity, p.opportunity_id)
    opportunity.reopen(p.stage)
    return opportunity


@command("opportunity.update", UpdateOpportunity, emits=("OpportunityUpdated",))
def update_opportunity(ctx: CommandContext, p: UpdateOpportunity) -> Opportunity:
    """Change name, amount or expected close date of an open opportunity."""
    opportunity = ctx.load(Opportunity, p.opportunity_id)
    opportunity.update(p.amount, p.close_date, p.name)
    return opportunity


@command("opportunity.assign", AssignOpportunity, emits=("OpportunityAssigned",))
def assign_opportunity(ctx: CommandContext, p: AssignOpportunity) -> Opportunity:
    """Give an open opportunity a new owner."""
    opportunity = ctx.load(Opportunity, p.opportunity_id)
    opportunity.assign(p.owner)
    return opportunity
