"""Duplicate detection on ``lead.create``: the duplicate key index, and what a match does.

The index is one small internal record per (tenant, record kind, rule keys, normalised value), its id
derived by ``uuid5`` from those, as inbound events and round-robin turns are: the lead that holds the key.
So a lookup is one read by id, inside the command's unit of work, and consistent with the store:

- a key nobody holds: the record is created for the new lead, in the lead's transaction. Two leads with the
  same new key saved at once collide on the record's id (the store's unique (id, version)); the loser's
  transaction stores nothing and is a concurrency conflict, and run again (``conflict_retries``) it finds the
  key held, and is flagged;
- a key held by an open lead (new, working, qualified; a merged holder is followed to the lead it was merged
  into): a match. The record is only read;
- a key held by a closed lead (converted, disqualified): no match; the record moves to the new lead.

Contacts (``contact.create``) are looked up the same way, in records of their own kind, and only flagged.

Internal, like idempotency records: never published, not in the catalogue. A rule added later matches the
leads created after it only: the index holds the keys of the rules in force when each lead was created.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event

from crmflow.aggregates.base import TenantAggregate
from crmflow.aggregates.commanding import CommandContext
from crmflow.aggregates.contact import Contact
from crmflow.aggregates.duplicate_rules import tenant_rules
from crmflow.aggregates.lead import MERGE_TARGETS, Lead
from crmflow.aggregates.matching import Rule, normalised_keys
from crmflow.aggregates.reading import find

DUPLICATE_KEY_NAMESPACE = uuid5(NAMESPACE_URL, "https://crmflow.dev/duplicate-keys")
MERGE_HOPS = 20  # how far a chain of merges is followed (each merge target was open, so chains are short)


def duplicate_key_id(tenant_id: str, record_kind: str, fields: str, key: str) -> UUID:
    return uuid5(DUPLICATE_KEY_NAMESPACE, f"{tenant_id}\n{record_kind}\n{fields}\n{key}")


class DuplicateKey(TenantAggregate):
    """Internal: never published. Which record holds one normalised key (the value is only in the id)."""

    kind = "duplicate_key"

    class Event(TenantAggregate.Event):
        published = False

    @event("DuplicateKeyIndexed")
    def __init__(self, tenant_id: str, record_kind: str, fields: str, record_id: UUID) -> None:
        self.tenant_id = tenant_id
        self.record_kind = record_kind
        self.fields = fields
        self.record_id = record_id
        self.status = "indexed"

    def move(self, record_id: UUID) -> None:
        self._move(record_id=record_id, previous_record_id=self.record_id)

    @event("DuplicateKeyMoved")
    def _move(self, record_id: UUID, previous_record_id: UUID) -> None:
        self.record_id = record_id


@dataclass(frozen=True)
class Match:
    rule: Rule
    existing: Any  # the Lead or Contact that holds the key


@dataclass
class Lookup:
    """What the index says of a new record: the matches, and the keys to index for the record that stays."""

    matches: list[Match] = field(default_factory=list)
    free: list[tuple[Rule, UUID, DuplicateKey | None]] = field(default_factory=list)  # (rule, id, record to move)

    def index(self, ctx: CommandContext, record_kind: str, holder: UUID) -> None:
        for rule, key_id, record in self.free:
            if record is None:
                ctx.add(DuplicateKey.construct(key_id, tenant_id=ctx.tenant, record_kind=record_kind,
                                               fields=rule.fields, record_id=holder))  # fmt: skip
            elif record.record_id != holder:
                record.move(holder)
                ctx.add(record)


def look_up(
    ctx: CommandContext, record_kind: str, rules: tuple[Rule, ...], normalised: dict[str, str | None],
    holder_of: Callable[[UUID], Any | None],
) -> Lookup:
    """Each rule's key in the index: held by a record ``holder_of`` accepts (a match), or free to index."""
    found = Lookup()
    looked_up: set[UUID] = set()
    for rule in rules:
        key = rule.key(normalised)
        if key is None:
            continue
        key_id = duplicate_key_id(ctx.tenant, record_kind, rule.fields, key)
        record = _held_or_stored(ctx, key_id)
        first = key_id not in looked_up  # two rules of the same keys share one record
        looked_up.add(key_id)
        holder = None if record is None else holder_of(record.record_id)
        if holder is not None:
            found.matches.append(Match(rule, holder))
        elif first:
            found.free.append((rule, key_id, record))
    return found


def detect_lead_duplicates(ctx: CommandContext, lead: Lead) -> None:
    """Flag ``lead`` (new, added to ``ctx``) against the open leads it matches, or merge it where a rule says so.

    Every matching rule flags (one LeadDuplicateFlagged each); if any matching rule merges, the first of
    them merges the lead into its match instead, and nothing is flagged. Keys nobody holds yet are then
    indexed for the lead that stays.
    """
    rules = tenant_rules(ctx)
    normalised = normalised_keys(lead.email, lead.phone, lead.company, rules.default_region)
    found = look_up(ctx, "lead", rules.leads, normalised, lambda lead_id: _open_lead(ctx, lead_id))
    survivor = lead
    merge = next((m for m in found.matches if m.rule.action == "merge"), None)
    if merge is not None:
        lead.merge_into(merge.existing, merge.rule.name, list(merge.rule.keys))
        survivor = merge.existing
    else:
        for match in found.matches:
            lead.flag_duplicate(match.existing.id, match.rule.name, list(match.rule.keys))
    found.index(ctx, "lead", survivor.id)


def detect_contact_duplicates(ctx: CommandContext, contact: Contact, account_name: Callable[[], str]) -> None:
    """Flag ``contact`` (new) against the tenant's contacts it matches; its company is its account's name.

    Contacts are only flagged (rules for contacts cannot merge): every contact is a match, there is no
    closed one.
    """
    rules = tenant_rules(ctx)
    company = account_name() if any("company" in rule.keys for rule in rules.contacts) else None
    normalised = normalised_keys(contact.email, contact.phone, company, rules.default_region)
    found = look_up(ctx, "contact", rules.contacts, normalised, lambda contact_id: ctx.load(Contact, contact_id))
    for match in found.matches:
        contact.flag_duplicate(match.existing.id, match.rule.name, list(match.rule.keys))
    found.index(ctx, "contact", contact.id)


def _held_or_stored(ctx: CommandContext, record_id: UUID) -> DuplicateKey | None:
    record = ctx.loaded.get(record_id)
    if record is None:
        record = find(ctx.repository, record_id)
    return record if isinstance(record, DuplicateKey) and record.tenant_id == ctx.tenant else None


def _open_lead(ctx: CommandContext, lead_id: UUID) -> Lead | None:
    """The lead the key's holder is now (itself, or the lead it was in turn merged into), if it is open."""
    lead = ctx.load(Lead, lead_id)
    for _ in range(MERGE_HOPS):
        if lead.merged_into is None:
            return lead if lead.status in MERGE_TARGETS else None
        lead = ctx.load(Lead, lead.merged_into)
    return None
