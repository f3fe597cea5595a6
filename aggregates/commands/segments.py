"""account.segment: record where the tenant's segmentation places an account, so that processes can act on it.

`crmflow segments apply` issues it for every account from the profitability figures; a placement the
account has already is recorded once, so applying again changes nothing (docs/domain.md, "Segmentation
that drives action").
"""

from __future__ import annotations

from uuid import UUID

from pydantic import Field

from crmflow.aggregates.account import Account
from crmflow.aggregates.commanding import CommandContext, Payload, command
from crmflow.aggregates.commands.fields import Name, Text


class SegmentAccount(Payload):
    account_id: UUID
    segment: Name = Field(description="the segment's name, as the tenant's Segmentation document names it")
    usage_tier: Name | None = Field(None, description="the usage tier (none when the document has no tiers)")
    why: Text = Field(description="the bounds that held, in words (the placement's why)")


@command("account.segment", SegmentAccount, emits=("AccountSegmented",))
def segment_account(ctx: CommandContext, p: SegmentAccount) -> Account:
    """Record the account's segment and usage tier, and why; nothing when the placement has not changed."""
    account = ctx.load(Account, p.account_id)
    account.place_in_segment(p.segment, p.usage_tier, p.why)
    return account
