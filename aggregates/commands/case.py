"""case.* commands."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import AwareDatetime, Field

from crmflow.aggregates.account import Account
from crmflow.aggregates.article import Article
from crmflow.aggregates.case import Case
from crmflow.aggregates.commanding import CommandContext, Payload, command
from crmflow.aggregates.commands.fields import Name, Owner, Reason, Text
from crmflow.aggregates.commands.quick_replies import count_usage, suggest_replies
from crmflow.aggregates.contact import Contact

Priority = Literal["low", "medium", "high", "urgent"]
Channel = Literal["email", "phone", "web", "chat", "social", "other"]


class OpenCase(Payload):
    case_id: UUID | None = Field(None, description="choose the id (else one is made)")
    account_id: UUID | None = None
    contact_id: UUID | None = None
    subject: Name
    description: Text | None = None
    category: Name | None = None
    priority: Priority = "medium"
    channel: Channel = "email"
    owner: Owner | None = None
    first_response_due: AwareDatetime | None = Field(None, description="default: by priority")
    resolution_due: AwareDatetime | None = Field(None, description="default: by priority")


class CaseRef(Payload):
    case_id: UUID


class AssignCase(Payload):
    case_id: UUID
    owner: Owner


class RespondToCase(Payload):
    case_id: UUID
    message: Text | None = None
    article_id: UUID | None = Field(None, description="answer with this published article (a quick reply)")


class CaseWithReason(Payload):
    case_id: UUID
    reason: Reason


class SetCaseSla(Payload):
    case_id: UUID
    first_response_due: AwareDatetime
    resolution_due: AwareDatetime


class ResolveCase(Payload):
    case_id: UUID
    solution: Text
    article_id: UUID | None = Field(None, description="the published article that solved it")


@command("case.open", OpenCase, emits=("CaseOpened", "CaseRepliesSuggested"))
def open_case(ctx: CommandContext, p: OpenCase) -> Case:
    """Open a case; SLA due times default to the priority's first-response and resolution hours."""
    case_id = ctx.claim_id(Case, p.case_id)
    account_id = ctx.reference(Account, p.account_id)
    contact_id = ctx.reference(Contact, p.contact_id)
    case = ctx.add(
        Case.open(
            tenant_id=ctx.tenant, subject=p.subject, priority=p.priority, channel=p.channel,
            opened_at=ctx.at, account_id=account_id, contact_id=contact_id,
            description=p.description, category=p.category, owner=p.owner,
            first_response_due=p.first_response_due, resolution_due=p.resolution_due,
            case_id=case_id,
        )
    )  # fmt: skip
    suggest_replies(ctx, case)  # the articles that resolved most cases like it (quick replies)
    return case


@command("case.assign", AssignCase, emits=("CaseAssigned",))
def assign_case(ctx: CommandContext, p: AssignCase) -> Case:
    """Give the case an owner."""
    case = ctx.load(Case, p.case_id)
    case.assign(p.owner)
    return case


@command("case.respond", RespondToCase, emits=("CaseResponded",))
def respond_to_case(ctx: CommandContext, p: RespondToCase) -> Case:
    """Answer the customer, maybe with an article; the first answer stops the first-response clock."""
    case = ctx.load(Case, p.case_id)
    article_id = None
    if p.article_id is not None:
        article = ctx.load(Article, p.article_id)
        article.check_is_published("answer cases")
        article_id = article.id
    case.respond(p.message, ctx.at, article_id)
    return case


@command("case.escalate", CaseWithReason, emits=("CaseEscalated",))
def escalate_case(ctx: CommandContext, p: CaseWithReason) -> Case:
    """Escalate the case (again raises the escalation level)."""
    case = ctx.load(Case, p.case_id)
    case.escalate(p.reason, ctx.at)
    return case


@command("case.hold", CaseWithReason, emits=("CaseOnHold",))
def hold_case(ctx: CommandContext, p: CaseWithReason) -> Case:
    """Put the case on hold; its SLA clock stops."""
    case = ctx.load(Case, p.case_id)
    case.hold(p.reason, ctx.at)
    return case


@command("case.resume", CaseRef, emits=("CaseResumed",))
def resume_case(ctx: CommandContext, p: CaseRef) -> Case:
    """Take the case off hold; its due times move by the time it was on hold."""
    case = ctx.load(Case, p.case_id)
    case.resume(ctx.at)
    return case


@command("case.set_sla", SetCaseSla, emits=("CaseSlaSet",))
def set_case_sla(ctx: CommandContext, p: SetCaseSla) -> Case:
    """Set the case's first-response and resolution due times (e.g. in business time)."""
    case = ctx.load(Case, p.case_id)
    case.set_sla(p.first_response_due, p.resolution_due)
    return case


@command("case.resolve", ResolveCase, emits=("CaseResolved",))
def resolve_case(ctx: CommandContext, p: ResolveCase) -> Case:
    """Resolve the case with a solution, optionally a published knowledge article."""
    case = ctx.load(Case, p.case_id)
    article_id = None
    if p.article_id is not None:
        article = ctx.load(Article, p.article_id)
        article.check_is_published()
        article_id = article.id
    case.resolve(p.solution, article_id, ctx.at, usage_counted=True)
    if article_id is not None:
        count_usage(ctx, case, +1)
    return case


@command("case.close", CaseRef, emits=("CaseClosed",))
def close_case(ctx: CommandContext, p: CaseRef) -> Case:
    """Close a resolved case for good."""
    case = ctx.load(Case, p.case_id)
    case.close()
    return case


@command("case.reopen", CaseWithReason, emits=("CaseReopened",))
def reopen_case(ctx: CommandContext, p: CaseWithReason) -> Case:
    """Reopen a resolved case: resolved → working."""
    case = ctx.load(Case, p.case_id)
    counted = case.usage_counted
    case.reopen(p.reason)
    if counted:
        count_usage(ctx, case, -1)  # the article did not resolve it after all
    return case
