"""Record ids are per tenant: where a tenant's record with a given id is stored.

Ids crmflow makes are random (uuid4) and stored as they are. An id a client
chooses on a create command works like a Salesforce external id: the record is
stored under ``uuid5(CHOSEN_ID_NAMESPACE, "<tenant>\\n<chosen id>")``, so two
tenants choosing the same id get two records, and whether another tenant has
an id never changes an answer. Every command and read that takes an id tries
the id as given first (ids crmflow made, and ids chosen before ids were scoped),
then the tenant's scoped form of it (docs/domain.md, "Ids are per tenant").
"""

from __future__ import annotations

from uuid import NAMESPACE_URL, UUID, uuid5

CHOSEN_ID_NAMESPACE = uuid5(NAMESPACE_URL, "https://crmflow.dev/chosen-ids")


def scoped_id(tenant: str, chosen: UUID) -> UUID:
    """The stored id of the record that ``tenant`` created with the id ``chosen``."""
    return uuid5(CHOSEN_ID_NAMESPACE, f"{tenant}\n{chosen}")


def stored_candidates(tenant: str, aggregate_id: UUID) -> tuple[UUID, UUID]:
    """Where a record the tenant names by ``aggregate_id`` may be stored, in the order to look."""
    return aggregate_id, scoped_id(tenant, aggregate_id)
