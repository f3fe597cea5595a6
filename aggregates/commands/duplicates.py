"""tenant.set_duplicate_rules and lead.merge (docs/domain.md, "Duplicates")."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field

from crmflow.aggregates.commanding import CommandContext, Payload, command
from crmflow.aggregates.duplicate_rules import (
    DEFAULT_RULES,
    DuplicateRules,
    check_region,
    check_rules,
    duplicate_rules_id,
)
from crmflow.aggregates.errors import AggregateNotFoundError
from crmflow.aggregates.lead import Lead

RuleName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$", description="lower-case, digits, '-', '_'")]


class RuleSpec(Payload):
    name: RuleName
    keys: list[Literal["email", "phone", "company"]] = Field(
        min_length=1, max_length=3, description="every one must be present on both records and equal, normalised"
    )
    action: Literal["flag", "merge"] = "flag"


class SetDuplicateRules(Payload):
    leads: list[RuleSpec] = Field(
        default_factory=lambda: [RuleSpec(**r) for r in DEFAULT_RULES], max_length=10,
        description="in order (the first matching merge rule merges); default: flag on email, flag on phone",
    )  # fmt: skip
    contacts: list[RuleSpec] = Field(
        default_factory=lambda: [RuleSpec(**r) for r in DEFAULT_RULES], max_length=10,
        description="default: flag on email, flag on phone",
    )  # fmt: skip
    default_region: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] | None = Field(
        None, description="ISO 3166 alpha-2 region a phone number without '+' is read in (none: such numbers match nothing)"
    )


class MergeLead(Payload):
    lead_id: UUID = Field(description="the duplicate: closed as merged")
    into_lead_id: UUID = Field(description="the lead that stays (new, working or qualified)")


@command("tenant.set_duplicate_rules", SetDuplicateRules, emits=("DuplicateRulesSet", "DuplicateRulesChanged"))
def set_duplicate_rules(ctx: CommandContext, p: SetDuplicateRules) -> DuplicateRules:
    """Replace the tenant's duplicate rules for leads and contacts (a list left out is the default)."""
    leads = [rule.model_dump() for rule in p.leads]
    contacts = [rule.model_dump() for rule in p.contacts]
    check_rules("leads", leads)
    check_rules("contacts", contacts)
    check_region(p.default_region)
    try:
        record = ctx.load(DuplicateRules, duplicate_rules_id(ctx.tenant))
    except AggregateNotFoundError:
        return ctx.add(DuplicateRules(tenant_id=ctx.tenant, leads=leads, contacts=contacts,
                                      default_region=p.default_region))  # fmt: skip
    record.replace(leads, contacts, p.default_region)
    return record


@command("lead.merge", MergeLead, emits=("LeadMerged", "LeadMergeAbsorbed"))
def merge_lead(ctx: CommandContext, p: MergeLead) -> Lead:
    """Merge a duplicate lead into another: the duplicate closes as merged, the other takes the fields it lacks."""
    source = ctx.load(Lead, p.lead_id)
    target = ctx.load(Lead, p.into_lead_id)
    source.merge_into(target)
    return source
