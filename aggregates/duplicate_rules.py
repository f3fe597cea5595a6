"""A tenant's duplicate rules: which keys must match for a new lead (or contact) to be a duplicate, and what then.

One record per tenant, its id derived from the tenant (``uuid5``), set with ``tenant.set_duplicate_rules``:
a command like any other, so a change is refused or stored whole, carries who made it (``crmflow explain``),
and is read by ``lead.create`` inside the same unit of work as the lead it judges. A tenant that never set
any has ``DEFAULT_RULES`` (docs/domain.md, "Duplicates").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event

from crmflow.aggregates.base import TenantAggregate
from crmflow.aggregates.commanding import CommandContext
from crmflow.aggregates.errors import InvalidValueError
from crmflow.aggregates.matching import Rule, is_known_region
from crmflow.aggregates.reading import find

DUPLICATE_RULES_NAMESPACE = uuid5(NAMESPACE_URL, "https://crmflow.dev/duplicate-rules")

# Flag a new record that shares an e-mail address, or a phone number, with an open one; merge never.
DEFAULT_RULES: tuple[dict[str, Any], ...] = (
    {"name": "email", "keys": ["email"], "action": "flag"},
    {"name": "phone", "keys": ["phone"], "action": "flag"},
)


def duplicate_rules_id(tenant_id: str) -> UUID:
    return uuid5(DUPLICATE_RULES_NAMESPACE, tenant_id)


@dataclass(frozen=True)
class TenantRules:
    """What the tenant's record says, or the defaults."""

    leads: tuple[Rule, ...]
    contacts: tuple[Rule, ...]
    default_region: str | None


def rules_of(documents: Sequence[dict[str, Any]]) -> tuple[Rule, ...]:
    return tuple(Rule(d["name"], tuple(d["keys"]), d["action"]) for d in documents)


DEFAULTS = TenantRules(rules_of(DEFAULT_RULES), rules_of(DEFAULT_RULES), None)


class DuplicateRules(TenantAggregate):
    kind = "duplicate_rules"

    @staticmethod
    def create_id(tenant_id: str, **_: Any) -> UUID:
        return duplicate_rules_id(tenant_id)

    @event("DuplicateRulesSet")
    def __init__(
        self, tenant_id: str, leads: list[dict[str, Any]], contacts: list[dict[str, Any]], default_region: str | None
    ) -> None:
        self.tenant_id = tenant_id
        self.leads = leads
        self.contacts = contacts
        self.default_region = default_region
        self.status = "set"

    def replace(self, leads: list[dict[str, Any]], contacts: list[dict[str, Any]], default_region: str | None) -> None:
        self._replace(leads=leads, contacts=contacts, default_region=default_region)

    @event("DuplicateRulesChanged")
    def _replace(self, leads: list[dict[str, Any]], contacts: list[dict[str, Any]], default_region: str | None) -> None:
        self.leads = leads
        self.contacts = contacts
        self.default_region = default_region

    @property
    def rules(self) -> TenantRules:
        return TenantRules(rules_of(self.leads), rules_of(self.contacts), self.default_region)


def check_rules(kind: str, documents: Sequence[dict[str, Any]]) -> None:
    """Refuse a rule list with a name used twice or a key named twice in one rule (the schema checks the rest)."""
    names = [d["name"] for d in documents]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise InvalidValueError(
            f"{kind} rule name {twice[0]!r} is used twice: give each rule its own name", field=kind, value=twice[0]
        )
    for d in documents:
        if kind == "contacts" and d["action"] == "merge":
            raise InvalidValueError(
                f"contacts rule {d['name']!r} merges: contacts are only flagged (there is no contact.merge); "
                "use action flag",
                field=kind, value=d["name"],
            )  # fmt: skip
        if len(set(d["keys"])) != len(d["keys"]):
            raise InvalidValueError(
                f"{kind} rule {d['name']!r} names a key twice ({', '.join(d['keys'])}): name each key once",
                field=kind, value=d["name"],
            )  # fmt: skip


def check_region(region: str | None) -> None:
    if region is not None and not is_known_region(region):
        raise InvalidValueError(
            f"default_region {region!r} is not a region with phone numbering data: use an ISO 3166 "
            "alpha-2 code such as GB, DE, US",
            field="default_region", value=region,
        )  # fmt: skip


def tenant_rules(ctx: CommandContext) -> TenantRules:
    """The rules in force for the command's tenant: as set earlier in the unit, else as stored, else the defaults."""
    record_id = duplicate_rules_id(ctx.tenant)
    record = ctx.loaded.get(record_id)
    if record is None:
        record = find(ctx.repository, record_id)
        if record is None:
            return DEFAULTS
    assert isinstance(record, DuplicateRules) and record.tenant_id == ctx.tenant
    return record.rules
