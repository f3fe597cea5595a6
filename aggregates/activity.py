"""Activity: a task, call, e-mail or meeting about one record (a lead, contact, account, opportunity or case).

open → completed | cancelled. ``activity.schedule`` makes an open activity with a due
time; ``activity.log`` records one that already happened, completed with its outcome.
The record it is about is named once, at creation, and never changes: the commands
check that it exists in the activity's tenant (aggregates.commands.activity).
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from eventsourcing.domain import event

from crmflow.aggregates.base import TenantAggregate, check_one_of
from crmflow.aggregates.errors import IllegalTransitionError, InvalidValueError

KINDS = ("task", "call", "email", "meeting")
RELATED_KINDS = ("lead", "contact", "account", "opportunity", "case")


class Activity(TenantAggregate):
    kind = "activity"
    lifecycle = {"open": {"completed", "cancelled"}}
    lifecycle_text = "open → completed | cancelled"

    # One created event for both ways in: ``status`` says whether it was scheduled (open) or
    # logged after the fact (completed, with its outcome and when it happened).
    @event("ActivityCreated")
    def __init__(
        self,
        tenant_id: str,
        activity_kind: str,
        related_kind: str,
        related_id: UUID,
        owner: str,
        subject: str,
        status: str,
        due_at: datetime | None,
        outcome: str | None,
        notes: str | None,
        completed_at: datetime | None,
    ) -> None:
        self.tenant_id = tenant_id
        # Not ``kind``: that is the catalogue name of the aggregate ("activity").
        self.activity_kind = activity_kind
        self.related_kind = related_kind
        self.related_id = related_id
        self.owner = owner
        self.subject = subject
        self.status = status
        self.due_at = due_at
        self.outcome = outcome
        self.notes = notes
        self.completed_at = completed_at
        self.cancel_reason: str | None = None

    @classmethod
    def schedule(
        cls, tenant_id: str, activity_kind: str, related_kind: str, related_id: UUID, owner: str, subject: str,
        due_at: datetime, notes: str | None = None, activity_id: UUID | None = None,
    ) -> Activity:  # fmt: skip
        _check_kinds(activity_kind, related_kind)
        return cls.construct(  # type: ignore[no-any-return]
            activity_id, tenant_id=tenant_id, activity_kind=activity_kind, related_kind=related_kind,
            related_id=related_id, owner=owner, subject=subject, status="open", due_at=due_at,
            outcome=None, notes=notes, completed_at=None,
        )  # fmt: skip

    @classmethod
    def log(
        cls, tenant_id: str, activity_kind: str, related_kind: str, related_id: UUID, owner: str, subject: str,
        outcome: str, occurred_at: datetime, now: datetime, notes: str | None = None,
        activity_id: UUID | None = None,
    ) -> Activity:  # fmt: skip
        _check_kinds(activity_kind, related_kind)
        if occurred_at > now:
            raise InvalidValueError(
                f"cannot log an activity at {occurred_at.isoformat()}: that is in the future "
                f"(now {now.isoformat()}); schedule it instead (activity.schedule)",
                field="occurred_at",
                value=occurred_at.isoformat(),
            )
        return cls.construct(  # type: ignore[no-any-return]
            activity_id, tenant_id=tenant_id, activity_kind=activity_kind, related_kind=related_kind,
            related_id=related_id, owner=owner, subject=subject, status="completed", due_at=None,
            outcome=outcome, notes=notes, completed_at=occurred_at,
        )  # fmt: skip

    # Commands.

    # The end of an activity names what it was about (kind and record): a process waiting for a lead's
    # follow-up call, or another service, can tell without reading the activity.

    def complete(self, outcome: str, notes: str | None, at: datetime) -> None:
        self.check_transition("complete", "completed")
        self._complete(status="completed", outcome=outcome, notes=notes, completed_at=at, **self._about())

    def cancel(self, reason: str, at: datetime) -> None:
        self.check_transition("cancel", "cancelled")
        self._cancel(status="cancelled", reason=reason, cancelled_at=at, **self._about())

    def _about(self) -> dict[str, object]:
        return {"activity_kind": self.activity_kind, "related_kind": self.related_kind, "related_id": self.related_id}

    # Guards.

    def check_justifies(self, related_kind: str, related_id: UUID, verb: str) -> None:
        """Refuse to let this activity justify a change of a record unless it is completed and about that record."""
        if self.status != "completed":
            raise IllegalTransitionError(
                f"cannot {verb} with activity {self.short_id}: it is {self.status}, "
                "and only a completed activity (with its outcome) can justify it",
                aggregate_id=str(self.id),
                status=self.status,
            )
        if (self.related_kind, self.related_id) != (related_kind, related_id):
            raise InvalidValueError(
                f"cannot {verb} with activity {self.short_id}: it is about {self.related_kind} "
                f"{str(self.related_id)[:8]}, not {related_kind} {str(related_id)[:8]}",
                field="activity_id",
                value=str(self.id),
            )

    # Events.

    @event("ActivityCompleted")
    def _complete(
        self, status: str, outcome: str, notes: str | None, completed_at: datetime, activity_kind: str,
        related_kind: str, related_id: UUID,
    ) -> None:  # fmt: skip
        self.status = status
        self.outcome = outcome
        if notes is not None:
            self.notes = notes
        self.completed_at = completed_at

    @event("ActivityCancelled")
    def _cancel(
        self, status: str, reason: str, cancelled_at: datetime, activity_kind: str, related_kind: str,
        related_id: UUID,
    ) -> None:  # fmt: skip
        self.status = status
        self.cancel_reason = reason


def _check_kinds(activity_kind: str, related_kind: str) -> None:
    check_one_of("kind", activity_kind, KINDS)
    check_one_of("related_kind", related_kind, RELATED_KINDS)
