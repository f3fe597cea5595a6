"""Contact: a person at an account."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import event

from crmflow.aggregates.base import TenantAggregate
from crmflow.aggregates.errors import InvalidValueError


class Contact(TenantAggregate):
    kind = "contact"

    @event("ContactCreated")
    def __init__(
        self,
        tenant_id: str,
        account_id: UUID,
        name: str,
        email: str | None,
        phone: str | None,
        title: str | None,
    ) -> None:
        self.tenant_id = tenant_id
        self.account_id = account_id
        self.name = name
        self.email = email
        self.phone = phone
        self.title = title
        self.status = "active"

    def update(self, email: str | None, phone: str | None, title: str | None) -> None:
        self._update(
            email=email if email is not None else self.email,
            phone=phone if phone is not None else self.phone,
            title=title if title is not None else self.title,
        )

    def flag_duplicate(self, existing_contact_id: UUID, rule: str, keys: list[str]) -> None:
        """Say that this contact looks like ``existing_contact_id`` by ``rule`` (docs/domain.md, "Duplicates")."""
        self._flag_duplicate(existing_contact_id=existing_contact_id, rule=rule, keys=keys)

    def check_belongs_to(self, account_id: UUID) -> None:
        if self.account_id != account_id:
            raise InvalidValueError(
                f"contact {self.short_id} belongs to account {str(self.account_id)[:8]}, "
                f"not {str(account_id)[:8]}: link a contact of the same account",
                contact_id=str(self.id),
                account_id=str(self.account_id),
            )

    @event("ContactUpdated")
    def _update(self, email: str | None, phone: str | None, title: str | None) -> None:
        self.email = email
        self.phone = phone
        self.title = title

    @event("ContactDuplicateFlagged")
    def _flag_duplicate(self, existing_contact_id: UUID, rule: str, keys: list[str]) -> None:
        pass  # nothing changes on the contact: the flag is for people (and the duplicates report)
