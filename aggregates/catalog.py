"""The catalogue: every command and event type, with its JSON Schema.

Event data schemas are derived from the event classes themselves (the
annotations of their ``@event`` methods), so the catalogue cannot drift from
what is stored and published.
"""

from __future__ import annotations

import difflib
import inspect
import typing
from functools import cache
from typing import Any
from uuid import UUID

from eventsourcing.domain import CommandMethodDecorator
from eventsourcing.utils import get_topic
from pydantic import BaseModel, ConfigDict, create_model

import crmflow.aggregates.commands  # noqa: F401  (registers every command)
from crmflow.aggregates.account import Account
from crmflow.aggregates.activity import Activity
from crmflow.aggregates.article import Article
from crmflow.aggregates.base import TenantAggregate
from crmflow.aggregates.campaign import Campaign
from crmflow.aggregates.case import Case
from crmflow.aggregates.commanding import COMMANDS, CommandSpec
from crmflow.aggregates.contact import Contact
from crmflow.aggregates.duplicate_rules import DuplicateRules
from crmflow.aggregates.envelope import ENVELOPE_FIELDS, CloudEvent, version_of
from crmflow.aggregates.errors import UnknownCommandError
from crmflow.aggregates.lead import Lead
from crmflow.aggregates.opportunity import Opportunity
from crmflow.aggregates.product import Product

AGGREGATES: tuple[type[TenantAggregate], ...] = (
    Lead, Opportunity, Case, Account, Contact, Campaign, Article,
    # Duplicates: a tenant's duplicate rules.
    DuplicateRules,
    # Activities.
    Activity,
    # The price list (opportunities' line items sell its products).
    Product,
)  # fmt: skip

EVENT_CLASSES: dict[str, type] = {
    cls.__name__: cls for aggregate in AGGREGATES for cls in aggregate.event_classes()
}
_AGGREGATE_OF_EVENT: dict[type, type[TenantAggregate]] = {
    cls: aggregate for aggregate in AGGREGATES for cls in aggregate.event_classes()
}


class UnknownEventTypeError(LookupError):
    """The event type is not a crmflow domain event."""


def command_spec(name: str) -> CommandSpec:
    try:
        return COMMANDS[name]
    except KeyError:
        close = difflib.get_close_matches(name, COMMANDS, n=3)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        raise UnknownCommandError(
            f"unknown command {name!r}{hint} (`crmflow catalog` lists all {len(COMMANDS)})",
            command=name,
            suggestions=close,
        ) from None


def command_specs() -> list[CommandSpec]:
    return [COMMANDS[name] for name in sorted(COMMANDS)]


def event_class(type_name: str) -> type:
    try:
        return EVENT_CLASSES[type_name]
    except KeyError:
        raise UnknownEventTypeError(f"unknown event type {type_name!r}") from None


def aggregate_class_of(event_cls: type) -> type[TenantAggregate]:
    return _AGGREGATE_OF_EVENT[event_cls]


def _event_defaults(aggregate: type) -> dict[str, dict[str, Any]]:
    """Per event type, the defaults of its ``@event`` method's parameters.

    A field added to an event later has a default, so that events stored before it load; the
    event classes eventsourcing builds do not keep those defaults, the decorated methods do.
    """
    out: dict[str, dict[str, Any]] = {}
    for klass in aggregate.__mro__:
        for attribute in vars(klass).values():
            if isinstance(attribute, CommandMethodDecorator) and attribute.event_cls_name:
                parameters = inspect.signature(attribute.decorated_func).parameters.values()
                defaults = {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}
                out.setdefault(attribute.event_cls_name, defaults)
    return out


_EVENT_DEFAULTS: dict[str, dict[str, Any]] = {
    name: defaults for aggregate in AGGREGATES for name, defaults in _event_defaults(aggregate).items()
}


@cache
def event_data_model(event_cls: type) -> type[BaseModel]:
    """A pydantic model of the event's data (its fields less the envelope).

    A field with a default (one that older stored events lack) is optional; every other is required.
    """
    hints = typing.get_type_hints(event_cls)
    defaults = _EVENT_DEFAULTS.get(event_cls.__name__, {})
    fields: dict[str, Any] = {
        name: (hint, defaults.get(name, ...))
        for name, hint in hints.items()
        if name not in ENVELOPE_FIELDS and typing.get_origin(hint) is not typing.ClassVar
    }
    return create_model(  # type: ignore[call-overload, no-any-return]
        event_cls.__name__, __config__=ConfigDict(extra="forbid"), **fields
    )


def catalogue() -> dict[str, Any]:
    """The whole catalogue as plain data (what `crmflow catalog --format json` prints)."""
    return {
        "commands": [
            {
                "name": spec.name,
                "summary": spec.summary,
                "emits": list(spec.emits),
                "schema": spec.payload.model_json_schema(),
            }
            for spec in command_specs()
        ],
        "events": [
            {
                "type": name,
                "aggregate": aggregate_class_of(cls).kind,
                "schema": event_data_model(cls).model_json_schema(),
            }
            for name, cls in sorted(EVENT_CLASSES.items())
        ],
    }


def from_cloudevent(document: CloudEvent | dict[str, Any]) -> Any:
    """Rebuild the domain event of a crmflow CloudEvent (the inverse of ``envelope.to_cloudevent_dict``)."""
    ce = document if isinstance(document, CloudEvent) else CloudEvent.model_validate(document)
    cls = event_class(ce.type)
    data = event_data_model(cls).model_validate(ce.data or {})
    state: dict[str, Any] = {
        "originator_id": UUID(ce.subject) if ce.subject else None,
        "originator_version": version_of(ce.sequence) if ce.sequence is not None else None,
        "timestamp": ce.time,
        **{name: getattr(data, name) for name in type(data).model_fields},
    }
    if "originator_topic" in typing.get_type_hints(cls):  # a "created" event
        state["originator_topic"] = get_topic(aggregate_class_of(cls))
    state["meta"] = {
        "tenant": ce.tenantid,
        "correlation_id": ce.correlationid,
        "causation_id": ce.causationid,
    }
    domain_event = object.__new__(cls)
    object.__setattr__(domain_event, "__dict__", state)
    return domain_event

