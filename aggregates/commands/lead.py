"""lead.* commands."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field

from crmflow.aggregates.account import Account
from crmflow.aggregates.activity import Activity
from crmflow.aggregates.campaign import Campaign
from crmflow.aggregates.commanding import CommandContext, Payload, command
from crmflow.aggregates.commands.fields import Currency, Email, Money, Name, Owner, Reason
from crmflow.aggregates.contact import Contact
from crmflow.aggregates.duplicates import detect_lead_duplicates
from crmflow.aggregates.lead import SOURCES, Lead
from crmflow.aggregates.opportunity import Opportunity

LeadSource = Literal[SOURCES]  # type: ignore[valid-type]
Phone = Annotated[str, Field(min_length=1, max_length=40)]


class CreateLead(Payload):
    lead_id: UUID | None = Field(None, description="choose the id (else one is made)")
    name: Name
    company: Name | None = None
    email: Email | None = None
    phone: Phone | None = Field(None, description="as written; matched in E.164 (docs/domain.md, Duplicates)")
    source: LeadSource = "web"
    campaign_id: UUID | None = None
    owner: Owner | None = None
    score: int = Field(0, ge=0, le=1000)


class AssignLead(Payload):
    lead_id: UUID
    owner: Owner


class LeadRef(Payload):
    lead_id: UUID


class QualifyLead(Payload):
    lead_id: UUID
    activity_id: UUID | None = Field(
        None, description="the completed activity about this lead whose outcome justified it"
    )


class RescoreLead(Payload):
    lead_id: UUID
    points: int = Field(ge=-1000, le=1000, description="added to the score (floor 0)")
    reason: Reason


class DisqualifyLead(Payload):
    lead_id: UUID
    reason: Reason


class NewOpportunity(Payload):
    name: Name
    amount: Money
    currency: Currency = "EUR"
    close_date: date


class ConvertLead(Payload):
    lead_id: UUID
    account_id: UUID | None = Field(None, description="link this account instead of creating one")
    contact_id: UUID | None = Field(None, description="link this contact instead of creating one")
    opportunity: NewOpportunity | None = Field(None, description="also open this opportunity")


@command("lead.create", CreateLead,
         emits=("LeadCreated", "LeadDuplicateFlagged", "LeadMerged", "LeadMergeAbsorbed"))  # fmt: skip
def create_lead(ctx: CommandContext, p: CreateLead) -> Lead:
    """Create a lead (status new); flagged, or merged, where it matches an open lead (the tenant's duplicate rules)."""
    lead_id = ctx.claim_id(Lead, p.lead_id)
    campaign_id = ctx.reference(Campaign, p.campaign_id)
    lead = ctx.add(
        Lead.construct(
            lead_id,
            tenant_id=ctx.tenant,
            name=p.name,
            company=p.company,
            email=p.email,
            source=p.source,
            campaign_id=campaign_id,
            owner=p.owner,
            score=p.score,
            phone=p.phone,
        )  # fmt: skip
    )
    # Last, once nothing can refuse the command: the process runtime keeps what an accepted command changed.
    detect_lead_duplicates(ctx, lead)
    return lead


@command("lead.assign", AssignLead, emits=("LeadAssigned",))
def assign_lead(ctx: CommandContext, p: AssignLead) -> Lead:
    """Give the lead an owner (not once converted or disqualified)."""
    lead = ctx.load(Lead, p.lead_id)
    lead.assign(p.owner)
    return lead


@command("lead.work", LeadRef, emits=("LeadStatusChanged",))
def work_lead(ctx: CommandContext, p: LeadRef) -> Lead:
    """Start working the lead: new → working."""
    lead = ctx.load(Lead, p.lead_id)
    lead.start_working()
    return lead


@command("lead.score", RescoreLead, emits=("LeadScoreChanged",))
def score_lead(ctx: CommandContext, p: RescoreLead) -> Lead:
    """Add points to (or take them from) the lead's score."""
    lead = ctx.load(Lead, p.lead_id)
    lead.rescore(p.points, p.reason)
    return lead


@command("lead.qualify", QualifyLead, emits=("LeadQualified",))
def qualify_lead(ctx: CommandContext, p: QualifyLead) -> Lead:
    """Qualify the lead: working → qualified, optionally naming the completed activity that justified it."""
    lead = ctx.load(Lead, p.lead_id)
    activity_id = None
    if p.activity_id is not None:
        # Loaded to read its status (it records nothing); another tenant's is answered like an unknown one.
        activity = ctx.load(Activity, p.activity_id)
        activity.check_justifies("lead", lead.id, f"qualify lead {lead.short_id}")
        activity_id = activity.id
    lead.qualify(activity_id)
    return lead


@command("lead.disqualify", DisqualifyLead, emits=("LeadDisqualified",))
def disqualify_lead(ctx: CommandContext, p: DisqualifyLead) -> Lead:
    """Disqualify the lead: working → disqualified."""
    lead = ctx.load(Lead, p.lead_id)
    lead.disqualify(p.reason)
    return lead


@command(
    "lead.convert",
    ConvertLead,
    emits=("LeadConverted", "AccountCreated", "ContactCreated", "OpportunityCreated"),
)
def convert_lead(ctx: CommandContext, p: ConvertLead) -> Lead:
    """Convert a qualified lead into an account, a contact and optionally an opportunity, atomically."""
    lead = ctx.load(Lead, p.lead_id)
    # Check the lead first, so a refused conversion creates nothing.
    lead.check_transition("convert", "converted")
    if p.account_id is not None:
        account = ctx.load(Account, p.account_id)
    else:
        account = ctx.add(
            Account(tenant_id=ctx.tenant, name=lead.company or lead.name, industry=None,
                    website=None, owner=lead.owner,
                    currency=p.opportunity.currency if p.opportunity is not None else None)
        )  # fmt: skip
    if p.contact_id is not None:
        contact = ctx.load(Contact, p.contact_id)
        contact.check_belongs_to(account.id)
    else:
        contact = ctx.add(
            Contact(tenant_id=ctx.tenant, account_id=account.id, name=lead.name,
                    email=lead.email, phone=None, title=None)
        )  # fmt: skip
    opportunity = None
    if p.opportunity is not None:
        opportunity = ctx.add(
            Opportunity.open(
                tenant_id=ctx.tenant, account_id=account.id, name=p.opportunity.name,
                amount=p.opportunity.amount, currency=p.opportunity.currency,
                close_date=p.opportunity.close_date, owner=lead.owner, lead_id=lead.id,
                campaign_id=lead.campaign_id,
            )
        )  # fmt: skip
    lead.convert(account.id, contact.id, opportunity.id if opportunity else None)
    return lead
