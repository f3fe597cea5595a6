"""Lead: someone who might buy, from a campaign or another service.

new → working → qualified | disqualified; qualified → converted.
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import event

from crmflow.aggregates.base import TenantAggregate
from crmflow.aggregates.errors import IllegalTransitionError

SOURCES = ("web", "webinar", "email", "event", "referral", "partner", "phone", "social", "other")


class Lead(TenantAggregate):
    kind = "lead"
    lifecycle = {
        "new": {"working"},
        "working": {"qualified", "disqualified"},
        "qualified": {"converted"},
    }
    lifecycle_text = "new → working → qualified | disqualified; qualified → converted"

    @event("LeadCreated")
    def __init__(
        self,
        tenant_id: str,
        name: str,
        company: str | None,
        email: str | None,
        source: str,
        campaign_id: UUID | None,
        owner: str | None,
        score: int,
    ) -> None:
        self.tenant_id = tenant_id
        self.name = name
        self.company = company
        self.email = email
        self.source = source
        self.campaign_id = campaign_id
        self.owner = owner
        self.score = score
        self.status = "new"
        self.account_id: UUID | None = None
        self.contact_id: UUID | None = None
        self.opportunity_id: UUID | None = None
        self.disqualify_reason: str | None = None
        self.qualifying_activity_id: UUID | None = None

    # Commands.

    def assign(self, owner: str) -> None:
        self.check_is_open("assign")
        self._assign(owner=owner, previous_owner=self.owner)

    def start_working(self) -> None:
        self.check_transition("start working on", "working")
        self._change_status(status="working", previous_status=self.status)

    def rescore(self, points: int, reason: str) -> None:
        self.check_is_open("rescore")
        self._rescore(score=max(0, self.score + points), points=points, reason=reason)

    def qualify(self, activity_id: UUID | None = None) -> None:
        """``activity_id``: the completed activity about this lead whose outcome justified it (checked by the
        command, aggregates.commands.lead)."""
        self.check_transition("qualify", "qualified")
        self._qualify(status="qualified", previous_status=self.status, activity_id=activity_id)

    def disqualify(self, reason: str) -> None:
        self.check_transition("disqualify", "disqualified")
        self._disqualify(status="disqualified", previous_status=self.status, reason=reason)

    def convert(self, account_id: UUID, contact_id: UUID, opportunity_id: UUID | None) -> None:
        self.check_transition("convert", "converted")
        self._convert(
            status="converted",
            account_id=account_id,
            contact_id=contact_id,
            opportunity_id=opportunity_id,
        )

    # Guards.

    def check_is_open(self, verb: str) -> None:
        if self.status in ("converted", "disqualified"):
            raise IllegalTransitionError(
                f"cannot {verb} lead {self.short_id}: it is {self.status}, "
                f"and {self.status} leads are closed",
                aggregate_id=str(self.id),
                status=self.status,
            )

    # Events: they only assign state, because they run again on every replay.

    @event("LeadAssigned")
    def _assign(self, owner: str, previous_owner: str | None) -> None:
        self.owner = owner

    @event("LeadStatusChanged")
    def _change_status(self, status: str, previous_status: str) -> None:
        self.status = status

    @event("LeadScoreChanged")
    def _rescore(self, score: int, points: int, reason: str) -> None:
        self.score = score

    # activity_id defaults to None: LeadQualified events stored before it existed still load.
    @event("LeadQualified")
    def _qualify(self, status: str, previous_status: str, activity_id: UUID | None = None) -> None:
        self.status = status
        self.qualifying_activity_id = activity_id

    @event("LeadDisqualified")
    def _disqualify(self, status: str, previous_status: str, reason: str) -> None:
        self.status = status
        self.disqualify_reason = reason

    @event("LeadConverted")
    def _convert(
        self, status: str, account_id: UUID, contact_id: UUID, opportunity_id: UUID | None
    ) -> None:
        self.status = status
        self.account_id = account_id
        self.contact_id = contact_id
        self.opportunity_id = opportunity_id
