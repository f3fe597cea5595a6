"""Lead: someone who might buy, from a campaign or another service.

new → working → qualified | disqualified; qualified → converted. Any lead but a converted one may be
merged into an open lead (docs/domain.md, "Duplicates"): it is then closed for good, and every later
command addressed to it is refused, naming the lead it was merged into.
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import event

from crmflow.aggregates.base import TenantAggregate
from crmflow.aggregates.errors import IllegalTransitionError, LeadMergedError

SOURCES = ("web", "webinar", "email", "event", "referral", "partner", "phone", "social", "search", "other")


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
        phone: str | None = None,  # added with duplicate matching: older LeadCreated events have none
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
        self.phone = phone
        self.merged_into: UUID | None = None
        # Per lead this one was flagged against: the first rule that flagged it, and that rule's keys.
        self.flagged_against: dict[str, tuple[str, list[str]]] = {}
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

    def flag_duplicate(self, existing_lead_id: UUID, rule: str, keys: list[str]) -> None:
        """Say that this lead looks like ``existing_lead_id`` by ``rule``; a person decides (or a merge rule)."""
        self._flag_duplicate(existing_lead_id=existing_lead_id, rule=rule, keys=keys)

    def merge_into(self, target: Lead, rule: str | None = None, keys: list[str] | None = None) -> None:
        """Close this lead as merged into ``target``, which takes the fields it lacks; both keep their history."""
        self.check_not_merged("merge")
        if target.id == self.id:
            raise IllegalTransitionError(
                f"cannot merge lead {self.short_id} into itself: name another lead as the target",
                aggregate_id=str(self.id), status=self.status,
            )  # fmt: skip
        if self.status == "converted":
            raise IllegalTransitionError(
                f"cannot merge lead {self.short_id}: it is converted (its account and contact exist); "
                "disqualify the other lead instead",
                aggregate_id=str(self.id), status=self.status,
            )  # fmt: skip
        if target.merged_into is not None:
            raise LeadMergedError(
                f"cannot merge lead {self.short_id} into lead {target.short_id}: that lead was merged into "
                f"lead {target.merged_into}; merge into that one",
                aggregate_id=str(target.id), status=target.status, merged_into=str(target.merged_into),
            )  # fmt: skip
        if target.status not in MERGE_TARGETS:
            raise IllegalTransitionError(
                f"cannot merge lead {self.short_id} into lead {target.short_id}: it is {target.status}; "
                "merge only into a new, working or qualified lead",
                aggregate_id=str(target.id), status=target.status, allowed=list(MERGE_TARGETS),
            )  # fmt: skip
        if rule is None:  # a person's merge of a flagged pair counts under the rule that flagged it
            flag = self.flagged_against.get(str(target.id)) or target.flagged_against.get(str(self.id))
            rule, keys = flag or (None, keys)
        taken = {name: str(getattr(self, name)) for name in MERGED_FIELDS
                 if getattr(target, name) is None and getattr(self, name) is not None}  # fmt: skip
        target._absorb(merged_lead_id=self.id, fields=taken, rule=rule)
        self._merge(status="merged", previous_status=self.status, merged_into=target.id, rule=rule,
                    keys=list(keys or []))  # fmt: skip

    # Guards.

    def check_transition(self, verb: str, target: str) -> None:
        self.check_not_merged(verb)
        super().check_transition(verb, target)

    def check_not_merged(self, verb: str) -> None:
        if self.merged_into is not None:
            raise LeadMergedError(
                f"cannot {verb} lead {self.short_id}: it was merged into lead {self.merged_into}; "
                "send commands to that lead",
                aggregate_id=str(self.id), status=self.status, merged_into=str(self.merged_into),
            )  # fmt: skip

    def check_is_open(self, verb: str) -> None:
        self.check_not_merged(verb)
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

    @event("LeadDuplicateFlagged")
    def _flag_duplicate(self, existing_lead_id: UUID, rule: str, keys: list[str]) -> None:
        # Nothing else changes on the lead: the flag is for people (and the duplicates report).
        self.flagged_against.setdefault(str(existing_lead_id), (rule, keys))

    @event("LeadMerged")
    def _merge(
        self, status: str, previous_status: str, merged_into: UUID, rule: str | None, keys: list[str]
    ) -> None:
        self.status = status
        self.merged_into = merged_into

    @event("LeadMergeAbsorbed")
    def _absorb(self, merged_lead_id: UUID, fields: dict[str, str], rule: str | None) -> None:
        for name, value in fields.items():
            setattr(self, name, UUID(value) if name == "campaign_id" else value)


# Open leads a lead may be merged into; the fields a merge fills in on the target where it has none.
MERGE_TARGETS = ("new", "working", "qualified")
MERGED_FIELDS = ("company", "email", "phone", "owner", "campaign_id")
