"""The relay publishes exactly what the store holds, in aggregate order, and survives restarts."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from crmflow.aggregates.application import CommandRequest, CrmApplication
from crmflow.aggregates.envelope import to_cloudevent_dict
from crmflow.workers.kafka.clients import KafkaClients
from crmflow.workers.kafka.relay import Relay
from crmflow.workers.shutdown import StopSignal
from tests.waiting import read_topic


def sales_activity(app: CrmApplication, leads: int = 40) -> None:
    """Leads created, assigned, worked and some qualified: several events per aggregate."""
    for i in range(leads):
        lead = str(app.execute(CommandRequest("lead.create", "acme", {"name": f"Lead {i}"})).aggregate_id)
        app.execute_batch([
            CommandRequest("lead.assign", "acme", {"lead_id": lead, "owner": f"rep-{i % 3}"}),
            CommandRequest("lead.work", "acme", {"lead_id": lead}),
        ])  # fmt: skip
        if i % 2:
            app.execute(CommandRequest("lead.qualify", "acme", {"lead_id": lead}))


def published(kafka: KafkaClients, at_least: int) -> list[dict[str, Any]]:
    return [json.loads(r.value) | {"_key": r.key.decode(), "_partition": r.partition}
            for r in read_topic(kafka, kafka.topics.events, at_least=at_least)]  # fmt: skip


def relay_all(app: CrmApplication, kafka: KafkaClients) -> int:
    return Relay(app, kafka).run(StopSignal(), until_caught_up=True)


def test_every_stored_event_is_published_once_keyed_by_aggregate_in_order(app: CrmApplication, kafka: KafkaClients) -> None:
    sales_activity(app)
    stored = [app.mapper.to_domain_event(n) for n in app.recorder.select_notifications(start=1, limit=10_000)]

    relay_all(app, kafka)
    messages = published(kafka, at_least=len(stored))

    assert len(messages) == len(stored)
    assert {m["id"] for m in messages} == {to_cloudevent_dict(e)["id"] for e in stored}
    by_subject: dict[str, list[int]] = defaultdict(list)
    partitions: dict[str, set[int]] = defaultdict(set)
    for m in messages:  # read in partition order: per key, that is publish order
        assert m["_key"] == m["subject"]
        by_subject[m["subject"]].append(int(m["sequence"]))
        partitions[m["subject"]].add(m["_partition"])
    assert all(seq == list(range(1, len(seq) + 1)) for seq in by_subject.values())
    assert all(len(p) == 1 for p in partitions.values()), "one aggregate, one partition"
    assert len({p for ps in partitions.values() for p in ps}) > 1, "aggregates spread over partitions"
    first = next(m for m in messages if m["type"] == "LeadCreated")
    stored_first = next(to_cloudevent_dict(e) for e in stored if str(e.originator_id) == first["subject"])
    assert {k: v for k, v in first.items() if not k.startswith("_")} == stored_first


def test_a_new_relay_resumes_after_what_was_acknowledged(app: CrmApplication, kafka: KafkaClients) -> None:
    sales_activity(app, leads=5)
    first_run = relay_all(app, kafka)
    app.execute(CommandRequest("lead.create", "acme", {"name": "Late lead"}))

    # A restarted relay (new object, position read from the store) sends only the new event.
    assert relay_all(app, kafka) == 1
    messages = published(kafka, at_least=first_run + 1)
    assert len(messages) == first_run + 1
    assert messages and sum(m["data"].get("name") == "Late lead" for m in messages) == 1


def test_idempotency_records_stay_in_the_store(app: CrmApplication, kafka: KafkaClients) -> None:
    app.execute(CommandRequest("lead.create", "acme", {"name": "Ada"}, idempotency_key="form-1"))
    relay_all(app, kafka)
    assert [m["type"] for m in published(kafka, at_least=1)] == ["LeadCreated"]


def test_accepted_inbound_events_are_published_as_their_producer_sent_them(app: CrmApplication, kafka: KafkaClients) -> None:
    sent = {"specversion": "1.0", "id": "sub-77", "source": "/web/forms/contact", "type": "FormSubmitted",
            "time": "2026-03-02T09:00:00+00:00", "tenantid": "acme", "formid": "contact-us",
            "data": {"email": "ada@ae.example", "name": "Ada"}}  # fmt: skip
    app.accept_inbound([("acme", sent)])
    relay_all(app, kafka)
    (message,) = published(kafka, at_least=1)
    assert {k: v for k, v in message.items() if not k.startswith("_") and v is not None} == sent | {
        "datacontenttype": "application/json"}  # fmt: skip
    assert message["_key"] == "sub-77"  # no subject: keyed by id
