"""activity.* commands."""

from __future__ import annotations

from datetime import timezone
from typing import Literal
from uuid import UUID

from pydantic import AwareDatetime, Field

from crmflow.aggregates.account import Account
from crmflow.aggregates.activity import KINDS, RELATED_KINDS, Activity
from crmflow.aggregates.base import TenantAggregate
from crmflow.aggregates.case import Case
from crmflow.aggregates.commanding import CommandContext, Payload, command
from crmflow.aggregates.commands.fields import Name, Owner, Reason, Text
from crmflow.aggregates.contact import Contact
from crmflow.aggregates.lead import Lead
from crmflow.aggregates.opportunity import Opportunity

ActivityKind = Literal[KINDS]  # type: ignore[valid-type]
RelatedKind = Literal[RELATED_KINDS]  # type: ignore[valid-type]

# The records an activity can be about, by the name a payload gives them.
RELATED: dict[str, type[TenantAggregate]] = {
    "lead": Lead, "contact": Contact, "account": Account, "opportunity": Opportunity, "case": Case,
}  # fmt: skip


class NewActivity(Payload):
    """What scheduling and logging an activity both say: which, about what, whose."""

    activity_id: UUID | None = Field(None, description="choose the id (else one is made)")
    kind: ActivityKind
    related_kind: RelatedKind = Field(description="the kind of record it is about")
    related_id: UUID = Field(description="the record it is about, in the same tenant")
    owner: Owner
    subject: Name


class ScheduleActivity(NewActivity):
    due_at: AwareDatetime = Field(description="when it is due (stored in UTC)")
    notes: Text | None = None


class LogActivity(NewActivity):
    outcome: Reason = Field(description="what came of it")
    occurred_at: AwareDatetime | None = Field(None, description="when it happened (default: now; not later)")
    notes: Text | None = None


class CompleteActivity(Payload):
    activity_id: UUID
    outcome: Reason = Field(description="what came of it")
    notes: Text | None = None


class CancelActivity(Payload):
    activity_id: UUID
    reason: Reason


def related_record(ctx: CommandContext, related_kind: str, related_id: UUID) -> UUID:
    """The stored id of the record the activity is about; refused (nothing stored) unless the tenant has it.

    Another tenant's record is answered exactly like one that does not exist (ctx.reference).
    """
    stored = ctx.reference(RELATED[related_kind], related_id)
    assert stored is not None
    return stored


@command("activity.schedule", ScheduleActivity, emits=("ActivityCreated",))
def schedule_activity(ctx: CommandContext, p: ScheduleActivity) -> Activity:
    """Schedule a task, call, e-mail or meeting about a record (status open, with a due time)."""
    activity_id = ctx.claim_id(Activity, p.activity_id)
    related_id = related_record(ctx, p.related_kind, p.related_id)
    return ctx.add(
        Activity.schedule(
            tenant_id=ctx.tenant, activity_kind=p.kind, related_kind=p.related_kind, related_id=related_id,
            owner=p.owner, subject=p.subject, due_at=p.due_at.astimezone(timezone.utc), notes=p.notes,
            activity_id=activity_id,
        )
    )  # fmt: skip


@command("activity.log", LogActivity, emits=("ActivityCreated",))
def log_activity(ctx: CommandContext, p: LogActivity) -> Activity:
    """Log an activity that already happened (status completed, with its outcome)."""
    activity_id = ctx.claim_id(Activity, p.activity_id)
    related_id = related_record(ctx, p.related_kind, p.related_id)
    occurred_at = p.occurred_at.astimezone(timezone.utc) if p.occurred_at is not None else ctx.at
    return ctx.add(
        Activity.log(
            tenant_id=ctx.tenant, activity_kind=p.kind, related_kind=p.related_kind, related_id=related_id,
            owner=p.owner, subject=p.subject, outcome=p.outcome, occurred_at=occurred_at, now=ctx.at,
            notes=p.notes, activity_id=activity_id,
        )
    )  # fmt: skip


@command("activity.complete", CompleteActivity, emits=("ActivityCompleted",))
def complete_activity(ctx: CommandContext, p: CompleteActivity) -> Activity:
    """Complete an open activity with its outcome: open → completed."""
    activity = ctx.load(Activity, p.activity_id)
    activity.complete(p.outcome, p.notes, ctx.at)
    return activity


@command("activity.cancel", CancelActivity, emits=("ActivityCancelled",))
def cancel_activity(ctx: CommandContext, p: CancelActivity) -> Activity:
    """Cancel an open activity, saying why: open → cancelled."""
    activity = ctx.load(Activity, p.activity_id)
    activity.cancel(p.reason, ctx.at)
    return activity
