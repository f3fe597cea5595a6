"""Stored domain events travel as CloudEvents 1.0 structured JSON, and come back unchanged."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from crmflow.aggregates.application import CommandRequest, CrmApplication
from crmflow.aggregates.catalog import EVENT_CLASSES, UnknownEventTypeError, catalogue, from_cloudevent
from crmflow.aggregates.envelope import CloudEvent, event_id, event_meta, to_cloudevent_dict

AT = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def app() -> CrmApplication:
    return CrmApplication("memory://", clock=lambda: AT)


def test_a_stored_event_becomes_a_structured_cloudevent(app: CrmApplication) -> None:
    result = app.execute(CommandRequest("lead.create", "acme", {"name": "Ada", "source": "webinar"},
                                        caller="web-form", correlation_id="corr-1"))  # fmt: skip
    lead_id = result.aggregate_id

    document = result.events[0]

    CloudEvent.model_validate(document)  # valid against the envelope model
    assert document["specversion"] == "1.0"
    assert document["type"] == "LeadCreated"
    assert document["subject"] == str(lead_id)
    assert document["sequence"] == "00000000000000000001"  # a string that sorts as the versions do
    assert document["tenantid"] == "acme"
    assert document["source"] == "/crmflow/acme/lead"
    assert document["time"] == AT.isoformat()
    assert document["datacontenttype"] == "application/json"
    assert document["correlationid"] == "corr-1"
    assert document["data"]["source"] == "webinar"
    json.dumps(document)  # plain JSON all the way down


def test_the_id_is_stable_across_re_publication(app: CrmApplication) -> None:
    lead_id = app.execute(CommandRequest("lead.create", "acme", {"name": "Ada"})).aggregate_id
    stored = next(iter(app.events.get(lead_id)))
    first, again = to_cloudevent_dict(stored), to_cloudevent_dict(next(iter(app.events.get(lead_id))))
    assert first["id"] == again["id"] == event_id(lead_id, 1)
    assert event_id(lead_id, 2) != first["id"]


def test_every_kind_of_value_survives_the_round_trip(app: CrmApplication) -> None:
    account = app.execute(CommandRequest("account.create", "acme", {"name": "Globex"})).aggregate_id
    deal = app.execute(CommandRequest("opportunity.create", "acme", {
        "account_id": str(account), "name": "Fleet", "amount": "125000.50", "close_date": "2026-06-30",
    })).aggregate_id  # fmt: skip
    app.execute(CommandRequest("opportunity.win", "acme", {"opportunity_id": str(deal)}))

    for stored in app.events.get(deal):
        document = json.loads(json.dumps(to_cloudevent_dict(stored)))
        back = from_cloudevent(document)
        assert type(back) is type(stored)
        meta = event_meta(stored)
        assert vars(back) == {**vars(stored), "meta": {k: meta[k] for k in ("tenant", "correlation_id", "causation_id")}}
    created = from_cloudevent(to_cloudevent_dict(next(iter(app.events.get(deal)))))
    assert (created.amount, created.close_date, created.account_id) == (Decimal("125000.50"), date(2026, 6, 30), account)


def test_an_unknown_event_type_is_named_in_the_error() -> None:
    with pytest.raises(UnknownEventTypeError, match="unknown event type 'LeadTeleported'"):
        from_cloudevent({"specversion": "1.0", "id": "1", "source": "x", "type": "LeadTeleported",
                         "subject": str(uuid.uuid4()), "sequence": 2})  # fmt: skip


def test_the_catalogue_lists_every_command_and_event_with_a_schema() -> None:
    data = catalogue()
    names = {c["name"] for c in data["commands"]}
    assert {"lead.create", "lead.assign", "lead.qualify", "lead.convert", "opportunity.advance",
            "opportunity.win", "opportunity.lose", "case.open", "case.respond", "case.escalate",
            "case.resolve", "campaign.record_cost"} <= names  # fmt: skip
    assert {e["type"] for e in data["events"]} == set(EVENT_CLASSES)
    emitted = {t for c in data["commands"] for t in c["emits"]}
    assert emitted <= set(EVENT_CLASSES), "every event a command emits is in the catalogue"
    lead_create = next(c for c in data["commands"] if c["name"] == "lead.create")
    assert lead_create["schema"]["required"] == ["name"]
    assert lead_create["schema"]["additionalProperties"] is False


def test_command_ids_are_distinct_version_4_uuids() -> None:
    from crmflow.aggregates.unit_of_work import new_command_id

    ids = [new_command_id() for _ in range(5000)]
    assert len(set(ids)) == len(ids)
    assert all(uuid.UUID(i).version == 4 and uuid.UUID(i).variant == uuid.RFC_4122 and str(uuid.UUID(i)) == i for i in ids)


def test_the_relays_fast_path_renders_exactly_what_the_domain_event_path_renders() -> None:
    from crmflow.aggregates.publication import is_published, wire_document

    app = CrmApplication("memory://", clock=lambda: AT)
    # A bit of everything: ids, money, dates, times, lists, nulls, metadata with and without correlation.
    campaign = app.execute(CommandRequest("campaign.create", "acme", {"name": "Spring", "channel": "webinar", "budget": "5000.50",
                                                                      "start_date": "2026-03-01"})).aggregate_id  # fmt: skip
    account = app.execute(CommandRequest("account.create", "acme", {"name": "Globex"}, correlation_id="c-9")).aggregate_id
    deal = app.execute(CommandRequest("opportunity.create", "acme", {"account_id": str(account), "name": "Fleet",
                                      "amount": "125000.50", "close_date": "2026-06-30", "campaign_id": str(campaign)})).aggregate_id  # fmt: skip
    app.execute(CommandRequest("opportunity.win", "acme", {"opportunity_id": str(deal)}))
    app.execute(CommandRequest("article.create", "acme", {"title": "T", "body": "B", "category": "c", "tags": ["a", "b"]}))
    app.execute(CommandRequest("case.open", "acme", {"subject": "Help", "priority": "urgent"}))
    notifications = app.recorder.select_notifications(start=1, limit=100)
    assert len(notifications) >= 6
    for n in notifications:
        if is_published(n.topic):
            assert wire_document(app, n) == app.mapper.to_domain_event(n).to_wire(), n.topic


def test_an_event_a_process_command_recorded_carries_its_process_hops_on_both_render_paths() -> None:
    from crmflow.aggregates.publication import wire_document

    app = CrmApplication("memory://", clock=lambda: AT)
    cause = {"process": "echo", "version": 1, "step": "again", "instance": "i-1", "trigger": "LeadCreated", "hops": 3}
    by_process = app.execute(CommandRequest("lead.create", "acme", {"name": "Echo"}, caller="process:echo@1",
                                            cause=cause)).aggregate_id  # fmt: skip
    by_person = app.execute(CommandRequest("lead.create", "acme", {"name": "Ada"})).aggregate_id

    rendered = {n.originator_id: wire_document(app, n) for n in app.recorder.select_notifications(start=1, limit=10)}

    assert rendered[by_process]["processhops"] == 3
    assert "processhops" not in rendered[by_person]  # a person's command starts no chain
    (stored,) = app.events.get(by_process)
    assert to_cloudevent_dict(stored)["processhops"] == 3


def test_event_ids_are_uuid5_of_aggregate_and_version() -> None:
    aggregate = uuid.uuid4()
    assert event_id(aggregate, 7) == str(uuid.uuid5(uuid.uuid5(uuid.NAMESPACE_URL, "https://crmflow.dev/events"), f"{aggregate}/7"))
