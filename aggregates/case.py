"""Case: a customer's question or problem, answered and resolved within its SLA.

new → working → escalated / on_hold → resolved → closed; resolved → working on
reopen. The SLA clock stops while a case is on hold: resuming moves the due
times later by the time spent on hold.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

from eventsourcing.domain import event

from crmflow.aggregates.base import TenantAggregate, check_one_of
from crmflow.aggregates.errors import IllegalTransitionError

PRIORITIES = ("low", "medium", "high", "urgent")
CHANNELS = ("email", "phone", "web", "chat", "social", "other")

# Default SLA in calendar hours: (first response, resolution). A process
# definition can replace these with business-time due dates (case.set_sla);
# the shipped case-sla instead announces verdicts, which the sla report prefers (projections.sla).
DEFAULT_SLA_HOURS = {
    "urgent": (1, 8),
    "high": (4, 24),
    "medium": (8, 72),
    "low": (24, 120),
}


class Case(TenantAggregate):
    kind = "case"
    lifecycle = {
        "new": {"working", "escalated"},
        "working": {"escalated", "on_hold", "resolved"},
        "escalated": {"escalated", "on_hold", "resolved"},
        "on_hold": {"working"},  # via resume, back to the status before the hold
        "resolved": {"closed", "working"},
    }
    lifecycle_text = (
        "new → working → escalated / on_hold → resolved → closed; resolved → working (reopen)"
    )

    @event("CaseOpened")
    def __init__(
        self,
        tenant_id: str,
        account_id: UUID | None,
        contact_id: UUID | None,
        subject: str,
        description: str | None,
        category: str | None,
        priority: str,
        channel: str,
        owner: str | None,
        opened_at: datetime,
        first_response_due: datetime,
        resolution_due: datetime,
    ) -> None:
        self.tenant_id = tenant_id
        self.account_id = account_id
        self.contact_id = contact_id
        self.subject = subject
        self.description = description
        self.category = category
        self.priority = priority
        self.channel = channel
        self.owner = owner
        self.opened_at = opened_at
        self.first_response_due = first_response_due
        self.resolution_due = resolution_due
        self.status = "new"
        self.first_responded_at: datetime | None = None
        self.resolved_at: datetime | None = None
        self.hold_started_at: datetime | None = None
        self.status_before_hold: str | None = None
        self.escalation_level = 0
        self.solution: str | None = None
        self.article_id: UUID | None = None
        # Quick replies (crmflow.aggregates.replies): the articles suggested when the case opened, and
        # whether its resolution was counted in its category's ArticleUsage (not before quick replies).
        self.suggested_articles: list[UUID] = []
        self.usage_counted = False

    @classmethod
    def open(
        cls,
        tenant_id: str,
        subject: str,
        priority: str,
        channel: str,
        opened_at: datetime,
        account_id: UUID | None = None,
        contact_id: UUID | None = None,
        description: str | None = None,
        category: str | None = None,
        owner: str | None = None,
        first_response_due: datetime | None = None,
        resolution_due: datetime | None = None,
        case_id: UUID | None = None,
    ) -> Case:
        check_one_of("priority", priority, PRIORITIES)
        check_one_of("channel", channel, CHANNELS)
        respond_hours, resolve_hours = DEFAULT_SLA_HOURS[priority]
        return cls.construct(
            case_id, tenant_id=tenant_id, account_id=account_id, contact_id=contact_id,
            subject=subject, description=description, category=category, priority=priority,
            channel=channel, owner=owner, opened_at=opened_at,
            first_response_due=first_response_due or opened_at + timedelta(hours=respond_hours),
            resolution_due=resolution_due or opened_at + timedelta(hours=resolve_hours),
        )  # fmt: skip

    # Commands.

    def assign(self, owner: str) -> None:
        self.check_not_closed("assign")
        self._assign(owner=owner, previous_owner=self.owner)

    def suggest_replies(self, article_ids: list[UUID], reasons: list[str]) -> None:
        """Offer the agent these articles to answer with, best first, each with why (one reason each)."""
        if article_ids:
            self._suggest(article_ids=list(article_ids), reasons=list(reasons))

    def respond(self, message: str | None, at: datetime, article_id: UUID | None = None) -> None:
        """Answer the customer, maybe with an article; the first answer stops the first-response clock."""
        self.check_not_closed("respond to")
        if self.status in ("resolved", "on_hold"):
            raise IllegalTransitionError(
                f"cannot respond to case {self.short_id} while {self.status}: "
                f"{'reopen' if self.status == 'resolved' else 'resume'} it first",
                aggregate_id=str(self.id),
                status=self.status,
            )
        first = self.first_responded_at is None
        self._respond(
            message=message,
            responded_at=at,
            first_response=first,
            within_sla=at <= self.first_response_due if first else None,
            status="working" if self.status == "new" else self.status,
            article_id=article_id,
            suggested=article_id is not None and article_id in self.suggested_articles,
        )

    def escalate(self, reason: str, at: datetime) -> None:
        self.check_transition("escalate", "escalated")
        self._escalate(
            status="escalated", previous_status=self.status, reason=reason,
            level=self.escalation_level + 1, escalated_at=at,
        )  # fmt: skip

    def hold(self, reason: str, at: datetime) -> None:
        self.check_transition("put on hold", "on_hold")
        self._hold(status="on_hold", previous_status=self.status, reason=reason, held_at=at)

    def resume(self, at: datetime) -> None:
        if self.status != "on_hold" or self.hold_started_at is None:
            raise IllegalTransitionError(
                f"cannot resume case {self.short_id} from {self.status}: only on_hold cases resume",
                aggregate_id=str(self.id),
                status=self.status,
            )
        paused = at - self.hold_started_at
        # The SLA clock stood still while on hold: both deadlines move by that time.
        self._resume(
            status=self.status_before_hold or "working",
            paused_seconds=paused.total_seconds(),
            first_response_due=self.first_response_due + paused,
            resolution_due=self.resolution_due + paused,
        )

    def set_sla(self, first_response_due: datetime, resolution_due: datetime) -> None:
        self.check_not_closed("set the SLA of")
        self._set_sla(first_response_due=first_response_due, resolution_due=resolution_due)

    def resolve(
        self, solution: str, article_id: UUID | None, at: datetime, usage_counted: bool = False
    ) -> None:
        """``usage_counted``: the command counts the article in the category's ArticleUsage with it."""
        self.check_transition("resolve", "resolved")
        self._resolve(
            status="resolved", previous_status=self.status, solution=solution,
            article_id=article_id, resolved_at=at, within_sla=at <= self.resolution_due,
            usage_counted=usage_counted and article_id is not None,
        )  # fmt: skip

    def close(self) -> None:
        self.check_transition("close", "closed")
        self._close(status="closed")

    def reopen(self, reason: str) -> None:
        if self.status != "resolved":
            raise IllegalTransitionError(
                f"cannot reopen case {self.short_id} from {self.status}: "
                f"only resolved cases reopen ({self.lifecycle_text})",
                aggregate_id=str(self.id),
                status=self.status,
            )
        self._reopen(status="working", reason=reason)

    # Guards.

    def check_not_closed(self, verb: str) -> None:
        if self.status == "closed":
            raise IllegalTransitionError(
                f"cannot {verb} case {self.short_id}: it is closed, and closed cases are final",
                aggregate_id=str(self.id),
                status=self.status,
            )

    # Events.

    @event("CaseAssigned")
    def _assign(self, owner: str, previous_owner: str | None) -> None:
        self.owner = owner

    @event("CaseRepliesSuggested")
    def _suggest(self, article_ids: list[UUID], reasons: list[str]) -> None:
        self.suggested_articles = article_ids

    @event("CaseResponded")
    def _respond(
        self,
        message: str | None,
        responded_at: datetime,
        first_response: bool,
        within_sla: bool | None,
        status: str,
        # Both absent from responses stored before quick replies: no article, so none suggested.
        article_id: UUID | None = None,
        suggested: bool = False,
    ) -> None:
        if first_response:
            self.first_responded_at = responded_at
        self.status = status

    @event("CaseEscalated")
    def _escalate(
        self, status: str, previous_status: str, reason: str, level: int, escalated_at: datetime
    ) -> None:
        self.status = status
        self.escalation_level = level

    @event("CaseOnHold")
    def _hold(self, status: str, previous_status: str, reason: str, held_at: datetime) -> None:
        self.status = status
        self.status_before_hold = previous_status
        self.hold_started_at = held_at

    @event("CaseResumed")
    def _resume(
        self,
        status: str,
        paused_seconds: float,
        first_response_due: datetime,
        resolution_due: datetime,
    ) -> None:
        self.status = status
        self.hold_started_at = None
        self.status_before_hold = None
        self.first_response_due = first_response_due
        self.resolution_due = resolution_due

    @event("CaseSlaSet")
    def _set_sla(self, first_response_due: datetime, resolution_due: datetime) -> None:
        self.first_response_due = first_response_due
        self.resolution_due = resolution_due

    @event("CaseResolved")
    def _resolve(
        self,
        status: str,
        previous_status: str,
        solution: str,
        article_id: UUID | None,
        resolved_at: datetime,
        within_sla: bool,
        usage_counted: bool = False,  # absent before quick replies: those resolutions were never counted
    ) -> None:
        self.status = status
        self.solution = solution
        self.article_id = article_id
        self.resolved_at = resolved_at
        self.usage_counted = usage_counted

    @event("CaseClosed")
    def _close(self, status: str) -> None:
        self.status = status

    @event("CaseReopened")
    def _reopen(self, status: str, reason: str) -> None:
        self.status = status
        self.resolved_at = None
        self.usage_counted = False
