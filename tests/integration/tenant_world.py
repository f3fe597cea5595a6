"""Two tenants with one record of every kind, and every command that names a record by id.

Shared by the tenant-wall tests on the application (test_tenant_walls.py) and
over HTTP (test_api_tenants.py). globex chooses every id of its records
itself, acme lets crmflow make them: so a hostile command can name globex's
records both by their stored ids and by the ids globex chose.
"""

from __future__ import annotations

import json
import typing
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from crmflow.aggregates.application import CommandResult
from crmflow.aggregates.catalog import COMMANDS

KINDS = ("campaign", "account", "contact", "article", "case", "lead", "opportunity", "activity")

# Each command's other fields, valid for the world's records, so that only the id under test can refuse it.
OTHER_FIELDS: dict[str, dict[str, Any]] = {
    "account.create": {"name": "Hostile Ltd"},
    "account.record_payment": {"invoice_id": "INV-1", "amount": "10", "paid_on": "2026-03-01"},
    "account.record_cost": {"amount": "10"},
    "account.assign": {"owner": "mallory"},
    "account.segment": {"segment": "at-risk", "why": "mallory says so"},
    "contact.create": {"name": "Mallory"},
    "contact.update": {"email": "mallory@evil.example"},
    "article.create": {"title": "T", "body": "B", "category": "c"},
    "article.publish": {},
    "article.archive": {},
    "article.revise": {"title": "Stolen"},
    "campaign.create": {"name": "C", "channel": "webinar", "budget": "1"},
    "campaign.activate": {},
    "campaign.complete": {},
    "campaign.record_cost": {"amount": "10"},
    "case.open": {"subject": "S"},
    "case.assign": {"owner": "mallory"},
    "case.respond": {},
    "case.escalate": {"reason": "r"},
    "case.hold": {"reason": "r"},
    "case.resume": {},
    "case.set_sla": {
        "first_response_due": "2026-03-03T09:00:00+00:00",
        "resolution_due": "2026-03-04T09:00:00+00:00",
    },
    "case.resolve": {"solution": "s"},
    "case.close": {},
    "case.reopen": {"reason": "r"},
    "lead.create": {"name": "Mallory"},
    "lead.assign": {"owner": "mallory"},
    "lead.work": {},
    "lead.score": {"points": 5, "reason": "r"},
    "lead.qualify": {},
    "lead.disqualify": {"reason": "r"},
    "lead.convert": {},
    "opportunity.create": {"name": "Heist", "amount": "1000000", "close_date": "2026-06-30"},
    "opportunity.advance": {},
    "opportunity.win": {},
    "opportunity.lose": {"reason": "r"},
    "opportunity.reopen": {},
    "opportunity.update": {"name": "Stolen"},
    "opportunity.assign": {"owner": "mallory"},
    # Duplicates.
    "lead.merge": {},
    "tenant.set_duplicate_rules": {},
    # An activity names the record it is about by related_kind and related_id: here the world's lead.
    "activity.schedule": {"kind": "call", "related_kind": "lead", "owner": "mallory", "subject": "S",
                          "due_at": "2026-03-03T09:00:00+00:00"},
    "activity.log": {"kind": "call", "related_kind": "lead", "owner": "mallory", "subject": "S", "outcome": "o"},
    "activity.complete": {"outcome": "o"},
    "activity.cancel": {"reason": "r"},
    "opportunity.add_line": {"product_code": "WIDGET", "quantity": "1"},
    "opportunity.remove_line": {"line_id": "5f0c4a52-1d7e-4b59-a5a0-2d6f3b8f9e10"},
}
# UUID fields that name no record: a line is part of its opportunity, found on the one opportunity_id names.
NOT_RECORDS = {("opportunity.remove_line", "line_id")}
# A field naming a record of a kind other than its name says (lead.merge's target is a lead).
KIND_OF_FIELD = {"into_lead_id": "lead"}


def _is_uuid(annotation: Any) -> bool:
    return annotation is UUID or UUID in typing.get_args(annotation)


def _chosen(info: Any) -> bool:
    return (info.description or "").startswith("choose the id")


def _kind(command: str, field_name: str) -> str:
    """The kind of record the field names: its name says it (``lead_id``), KIND_OF_FIELD does
    (``into_lead_id``), or, for ``related_id``, the payload's ``related_kind``."""
    if field_name == "related_id":
        return str(OTHER_FIELDS[command]["related_kind"])
    return KIND_OF_FIELD.get(field_name, field_name.removesuffix("_id"))


# (command, field, kind) for every id a command names that is not the new record's own chosen id.
REFERENCES: list[tuple[str, str, str]] = sorted(
    (name, field_name, _kind(name, field_name))
    for name, spec in COMMANDS.items()
    for field_name, info in spec.payload.model_fields.items()
    if _is_uuid(info.annotation) and not _chosen(info) and (name, field_name) not in NOT_RECORDS
)
# (command, field) of every create command that lets the caller choose the new record's id.
CHOSEN: list[tuple[str, str]] = sorted(
    (name, field_name)
    for name, spec in COMMANDS.items()
    for field_name, info in spec.payload.model_fields.items()
    if _is_uuid(info.annotation) and _chosen(info)
)


@dataclass
class World:
    """One tenant's records: ``stored`` ids by kind, and the ids the tenant chose (if it chose them)."""

    tenant: str
    stored: dict[str, str] = field(default_factory=dict)
    chosen: dict[str, str] = field(default_factory=dict)

    def names_of(self, kind: str) -> list[str]:
        """Every id by which the tenant itself can name its record of that kind."""
        return [self.stored[kind], *([self.chosen[kind]] if kind in self.chosen else [])]


# do(command, **payload) -> the answer: {"aggregate_id": ..., "events": [CloudEvent, ...]}
Do = Callable[..., dict[str, Any]]


def answer(result: CommandResult) -> dict[str, Any]:
    """A CommandResult as the HTTP API answers it."""
    return {"aggregate_id": str(result.aggregate_id), "events": result.events}


def build_world(do: Do, tenant: str, prefix: str, *, choose_ids: bool) -> World:
    """A campaign, an account with a contact, a published article, an open case, a qualified lead
    (of the campaign), a converted lead of the campaign whose 2,000 deal was won, an open 3,000 deal
    of the campaign, and an open call about the qualified lead."""
    world = World(tenant)

    def create(kind: str, command: str, /, **payload: Any) -> str:  # /: an activity's payload has a kind too
        if choose_ids:
            world.chosen[kind] = str(uuid.uuid4())
            payload[f"{kind}_id"] = world.chosen[kind]
        world.stored[kind] = str(do(command, **payload)["aggregate_id"])
        return world.stored[kind]

    campaign = create(
        "campaign", "campaign.create", name=f"{prefix} campaign", channel="webinar", budget="5000"
    )
    do("campaign.activate", campaign_id=campaign)
    account = create("account", "account.create", name=f"{prefix} account")
    contact = create("contact", "contact.create", account_id=account, name=f"{prefix} contact")
    article = create(
        "article", "article.create", title=f"{prefix} article", body="Restart it.", category="sync"
    )
    do("article.publish", article_id=article)
    create(
        "case", "case.open", subject=f"{prefix} case", category="sync", account_id=account, contact_id=contact
    )
    lead = create("lead", "lead.create", name=f"{prefix} lead", campaign_id=campaign)
    do("lead.work", lead_id=lead)
    do("lead.qualify", lead_id=lead)
    won = str(
        do("lead.create", name=f"{prefix} buyer", company=f"{prefix} buyer Ltd", campaign_id=campaign)[
            "aggregate_id"
        ]
    )
    do("lead.work", lead_id=won)
    do("lead.qualify", lead_id=won)
    converted = do(
        "lead.convert",
        lead_id=won,
        opportunity={"name": f"{prefix} won deal", "amount": "2000", "close_date": "2026-04-30"},
    )
    won_deal = next(e["subject"] for e in converted["events"] if e["type"] == "OpportunityCreated")
    do("opportunity.win", opportunity_id=won_deal)
    deal = create(
        "opportunity",
        "opportunity.create",
        account_id=account,
        campaign_id=campaign,
        name=f"{prefix} deal",
        amount="3000",
        close_date="2026-05-31",
    )
    create("activity", "activity.schedule", kind="call", related_kind="lead", related_id=lead,
           owner=f"{prefix.lower()}-rep", subject=f"{prefix} follow-up", due_at="2026-03-03T09:00:00+00:00")  # fmt: skip
    world.stored.update(won_lead=won, won_deal=won_deal, deal=deal)
    return world


def payload(command: str, own: World, **replace: str) -> dict[str, Any]:
    """A payload of the command naming ``own``'s records, with the fields in ``replace`` set instead."""
    data: dict[str, Any] = dict(OTHER_FIELDS[command])
    for name, field_name, kind in REFERENCES:
        if name == command:
            data[field_name] = own.stored[kind]
    data.update(replace)
    return data


def blanked(answer: dict[str, Any], identifier: str) -> str:
    """The answer with the id that was asked for blanked out: what is left must not differ."""
    return json.dumps(answer, sort_keys=True).replace(identifier, "ID")
