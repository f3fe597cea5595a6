"""campaign.* commands."""

from __future__ import annotations

from datetime import date
from typing import Literal
from uuid import UUID

from pydantic import Field

from crmflow.aggregates.campaign import CHANNELS, Campaign
from crmflow.aggregates.commanding import CommandContext, Payload, command
from crmflow.aggregates.commands.fields import Currency, Money, Name, Text

CampaignChannel = Literal[CHANNELS]  # type: ignore[valid-type]


class CreateCampaign(Payload):
    campaign_id: UUID | None = Field(None, description="choose the id (else one is made)")
    name: Name
    channel: CampaignChannel
    budget: Money
    currency: Currency = "EUR"
    start_date: date | None = None
    end_date: date | None = None


class CampaignRef(Payload):
    campaign_id: UUID


class RecordCampaignCost(Payload):
    campaign_id: UUID
    amount: Money
    description: Text | None = None


@command("campaign.create", CreateCampaign, emits=("CampaignCreated",))
def create_campaign(ctx: CommandContext, p: CreateCampaign) -> Campaign:
    """Plan a campaign with a channel and a budget (status planned)."""
    campaign_id = ctx.claim_id(Campaign, p.campaign_id)
    return ctx.add(
        Campaign.plan(
            tenant_id=ctx.tenant, name=p.name, channel=p.channel, budget=p.budget,
            currency=p.currency, start_date=p.start_date, end_date=p.end_date,
            campaign_id=campaign_id,
        )
    )  # fmt: skip


@command("campaign.activate", CampaignRef, emits=("CampaignActivated",))
def activate_campaign(ctx: CommandContext, p: CampaignRef) -> Campaign:
    """Start the campaign: planned → active."""
    campaign = ctx.load(Campaign, p.campaign_id)
    campaign.activate()
    return campaign


@command("campaign.complete", CampaignRef, emits=("CampaignCompleted",))
def complete_campaign(ctx: CommandContext, p: CampaignRef) -> Campaign:
    """End the campaign: active → completed."""
    campaign = ctx.load(Campaign, p.campaign_id)
    campaign.complete()
    return campaign


@command("campaign.record_cost", RecordCampaignCost, emits=("CampaignCostRecorded",))
def record_campaign_cost(ctx: CommandContext, p: RecordCampaignCost) -> Campaign:
    """Add to the campaign's actual cost (accepted in every status)."""
    campaign = ctx.load(Campaign, p.campaign_id)
    campaign.record_cost(p.amount, p.description)
    return campaign
