"""The relay parks what it cannot publish, holds back that aggregate's later events, and moves on."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import pytest
from kafka import TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaError

from crmflow.aggregates.application import CommandRequest, CrmApplication
from crmflow.aggregates.inbound import InboundEvent
from crmflow.aggregates.limits import MAX_EVENT_BYTES
from crmflow.aggregates.metadata import event_metadata
from crmflow.workers.kafka.clients import KafkaClients, KafkaSettings
from crmflow.workers.kafka.parking import ParkedEvents
from crmflow.workers.kafka.relay import Relay
from crmflow.workers.metrics import RELAY_EVENTS_PARKED
from crmflow.workers.shutdown import StopSignal
from tests.conftest import Broker
from tests.waiting import read_topic, wait_until

# What the brokers take by default (Apache Kafka's message.max.bytes is 1 MB), so a retry may send 600 KB.
BROKER_DEFAULT_BYTES = 1_000_000


def nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = [value]
    return value


def store_inbound_directly(app: CrmApplication, event_id: str, data: Any) -> None:
    """An inbound event stored without the intake's checks, as an older release might have stored it."""
    document = {"specversion": "1.0", "id": event_id, "source": "/billing", "type": "InvoicePaid",
                "tenantid": "acme", "data": data}  # fmt: skip
    app.save(InboundEvent.accept(document, "acme"))


def rescore_directly(app: CrmApplication, lead_id: str, reason: Any) -> None:
    """A lead event stored without the command's checks (the reason is free text)."""
    lead = app.repository.get(UUID(lead_id))
    with event_metadata({"tenant": "acme", "command": "lead.rescore"}):
        lead._rescore(score=lead.score + 1, points=1, reason=reason)
    app.save(lead)


def create_lead(app: CrmApplication, name: str) -> str:
    lead = str(app.execute(CommandRequest("lead.create", "acme", {"name": name})).aggregate_id)
    app.execute(CommandRequest("lead.assign", "acme", {"lead_id": lead, "owner": "maria"}))
    return lead


def stored_ids(app: CrmApplication) -> dict[int, str]:
    """Notification id -> CloudEvent id of every stored event, whatever the relay can do with it."""
    from crmflow.aggregates.envelope import event_id

    return {n.id: event_id(n.originator_id, n.originator_version)
            for n in app.recorder.select_notifications(start=1, limit=100_000)}  # fmt: skip


def published(kafka: KafkaClients, at_least: int) -> list[dict[str, Any]]:
    return [json.loads(r.value) for r in read_topic(kafka, kafka.topics.events, at_least=at_least)]


def every_partition_has_a_leader(kafka: KafkaClients, topic: str, partitions: int) -> None:
    """A topic created a moment ago takes records once each partition has a leader."""
    probe = kafka.consumer(group_id=None)

    def ready() -> bool:
        probe.topics()
        found = probe.partitions_for_topic(topic) or set()
        if len(found) != partitions:
            return False
        try:
            probe.end_offsets([TopicPartition(topic, p) for p in found])
        except KafkaError:
            return False
        return True

    try:
        wait_until(ready, 30, what=f"every partition of {topic} to have a leader")
    finally:
        probe.close()


def relay_all(app: CrmApplication, kafka: KafkaClients) -> Relay:
    relay = Relay(app, kafka)
    relay.run(StopSignal(), until_caught_up=True)
    return relay


def test_three_poison_events_in_the_middle_of_a_stream_are_parked_and_every_other_event_is_published(
    app: CrmApplication, kafka: KafkaClients
) -> None:
    before = [create_lead(app, f"Early {i}") for i in range(3)]  # 3 leads x 2 events = notifications 1..6
    store_inbound_directly(app, "deep", {"lines": nested(300)})  # 7: orjson stops at 255 levels
    store_inbound_directly(app, "huge-number", {"amount": 18446744073709551616})  # 8: 2**64
    store_inbound_directly(app, "huge", {"pdf": "x" * 1_300_000})  # 9: 1.3 MB, over the 512 KiB limit
    after = [create_lead(app, f"Late {i}") for i in range(3)]  # 10..15
    parked_before = RELAY_EVENTS_PARKED.labels(reason="unencodable")._value.get()

    relay = relay_all(app, kafka)

    parked = ParkedEvents(app).all()
    assert [p.notification_id for p in parked] == [7, 8, 9]
    deep, number, huge = parked
    assert "cannot be encoded as JSON" in deep.reason and "Recursion limit" in deep.reason
    assert "Integer exceeds 64-bit range" in number.reason
    assert (
        huge.reason.startswith("the event is 1,300,") and f"limit of {MAX_EVENT_BYTES:,} bytes" in huge.reason
    )
    assert {p.tenant for p in parked} == {"acme"} and all(
        p.retried == 0 and p.waits_for is None for p in parked
    )
    assert RELAY_EVENTS_PARKED.labels(reason="unencodable")._value.get() == parked_before + 2
    # The relay went on to the end: 15 stored, 3 parked, 12 published.
    assert relay.position == 15 and relay.published == 12
    ids = stored_ids(app)
    messages = published(kafka, at_least=12)
    assert sorted(m["id"] for m in messages) == sorted(ids[n] for n in ids if n not in (7, 8, 9))
    assert {m["subject"] for m in messages} == set(before + after)


def test_a_parked_aggregate_holds_its_later_events_across_a_restart_until_a_retry_publishes_them_in_order(
    app: CrmApplication, kafka: KafkaClients
) -> None:
    ada = create_lead(app, "Ada")  # notifications 1, 2
    rescore_directly(app, ada, "r" * 600_000)  # 3: 600 KB, over the relay's 512 KiB
    app.execute(CommandRequest("lead.work", "acme", {"lead_id": ada}))  # 4: must not overtake 3
    grace = create_lead(app, "Grace")  # 5, 6: another aggregate, flows

    relay_all(app, kafka)
    parked = ParkedEvents(app).all()
    assert [(p.notification_id, p.waits_for) for p in parked] == [(3, None), (4, 3)]
    assert parked[1].reason == "waits for parked notification 3" and parked[1].key == ada

    # After a restart the parked table still holds Ada back; Grace goes on.
    app.execute(CommandRequest("lead.qualify", "acme", {"lead_id": ada}))  # 7
    app.execute(CommandRequest("lead.work", "acme", {"lead_id": grace}))  # 8
    relay_all(app, kafka)
    assert [p.notification_id for p in ParkedEvents(app).all()] == [3, 4, 7]
    # 8 stored, 3 parked: 5 published, Grace's three and Ada's first two.
    assert [m["subject"] for m in published(kafka, at_least=5)].count(grace) == 3
    assert [int(m["sequence"]) for m in published(kafka, at_least=5) if m["subject"] == ada] == [1, 2]

    # A retry under the same limit fails again: counted, with the reason; the later ones keep waiting.
    outcome = Relay(app, kafka).retry_parked()
    assert outcome.published == [] and outcome.still_parked == [3, 4, 7]
    first, *waiting = ParkedEvents(app).all()
    assert first.retried == 1 and "over the relay's limit of 524,288 bytes" in first.reason
    assert [(p.retried, p.waits_for) for p in waiting] == [(0, 3), (0, 3)]

    # Once the brokers take 1 MB messages, a retry with that limit publishes all three, in order.
    outcome = Relay(app, kafka, max_event_bytes=BROKER_DEFAULT_BYTES).retry_parked(notification=7)
    assert outcome.published == [3, 4, 7] and outcome.still_parked == []
    assert ParkedEvents(app).all() == []
    ada_events = [m for m in published(kafka, at_least=8) if m["subject"] == ada]  # 5 + the 3 retried
    assert [int(m["sequence"]) for m in ada_events] == [1, 2, 3, 4, 5]
    assert len(ada_events[2]["data"]["reason"]) == 600_000

    # Nothing holds Ada back any more: her next event is published straight away, after the others.
    app.execute(CommandRequest("lead.assign", "acme", {"lead_id": ada, "owner": "ines"}))  # 9
    relay_all(app, kafka)
    assert ParkedEvents(app).all() == []
    # 9 stored, none parked: 9 published, Ada's six in her order.
    assert [int(m["sequence"]) for m in published(kafka, at_least=9) if m["subject"] == ada] == [1, 2, 3, 4, 5, 6]


def test_a_record_kafka_refuses_is_parked_and_the_records_sent_with_it_are_published(
    app: CrmApplication, kafka_settings: KafkaSettings, broker: Broker
) -> None:
    if broker.name == "bundled":
        pytest.skip("the bundled broker takes messages of any size: it does not enforce max.message.bytes")
    with KafkaClients(kafka_settings, name="test") as kafka:
        admin = kafka.admin()
        try:  # a topic that takes 100 KB at most, below the relay's own 512 KiB limit
            admin.create_topics([NewTopic(kafka.topics.events, kafka_settings.partitions, 1,
                                          topic_configs={"max.message.bytes": "100000"})])  # fmt: skip
        finally:
            admin.close()
        kafka.ensure_topics()
        every_partition_has_a_leader(kafka, kafka.topics.events, kafka_settings.partitions)
        ada = create_lead(app, "Ada")  # 1, 2
        grace = create_lead(app, "Grace")  # 3, 4
        rescore_directly(app, ada, "r" * 200_000)  # 5: passes the relay's checks, over the topic's limit
        ines = create_lead(app, "Ines")  # 6, 7

        relay_all(app, kafka)
        parked = ParkedEvents(app).all()
        assert [p.notification_id for p in parked] == [5], [(p.notification_id, p.reason) for p in parked]
        (refused,) = parked
        assert refused.notification_id == 5 and refused.reason.startswith("Kafka refused it: ")
        assert "MessageSizeTooLarge" in refused.reason
        # 7 stored, 1 parked: 6 published.
        assert sorted(m["subject"] for m in published(kafka, at_least=6)) == sorted([ada, ada, grace, grace,
                                                                                    ines, ines])  # fmt: skip

        app.execute(CommandRequest("lead.work", "acme", {"lead_id": ada}))  # 8: waits for 5
        relay_all(app, kafka)
        assert [(p.notification_id, p.waits_for) for p in ParkedEvents(app).all()] == [(5, None), (8, 5)]
