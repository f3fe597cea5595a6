"""The inbound checks that read the store: an event that names a record must name one of its tenant's.

``check_inbound`` (workers/inbound_checks.py) is pure; these checks run after
it, in the intake (a refusal is dead-lettered, with its code and reason, like
every other) and in ``POST /v1/events`` (answered 422). Only types crmflow
reads have any: ``UsageReported`` names an account and a product code
(aggregates/usage.py). Another tenant's account is refused exactly like an
unknown one, so a producer cannot learn that it exists.
"""

from __future__ import annotations

from typing import Any

from crmflow.aggregates.application import CrmApplication
from crmflow.aggregates.errors import AggregateNotFoundError
from crmflow.aggregates.usage import USAGE_REPORTED, check_usage_references, usage_of
from crmflow.workers.inbound_checks import Rejected


def needs_references(document: dict[str, Any]) -> bool:
    return document.get("type") == USAGE_REPORTED


def check_references(app: CrmApplication, tenant: str, document: dict[str, Any]) -> None:
    """Rejected (``unknown_reference``) if a record the checked event names is not its tenant's."""
    if not needs_references(document):
        return
    try:
        check_usage_references(app.repository, tenant, usage_of(document.get("data")))
    except AggregateNotFoundError as error:
        raise Rejected("unknown_reference", error.message) from None
