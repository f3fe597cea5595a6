"""crmflow on Kafka, as tools nobody here wrote see it: confluent-kafka's client and the official CloudEvents SDK.

Other services publish with the SDK in both content modes of the CloudEvents Kafka binding; the intake takes
them and the relay republishes them, structured; every record the relay writes is read back with
confluent_kafka.Consumer and parsed by the SDK without an error.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from crmflow.aggregates.application import CommandRequest, CrmApplication
from crmflow.aggregates.inbound import inbound_id
from crmflow.workers.inbound_checks import InboundPolicy
from crmflow.workers.kafka import deadletters
from crmflow.workers.kafka.clients import KafkaClients
from crmflow.workers.kafka.intake import Intake
from tests.integration.test_intake import drain
from tests.integration.test_relay import relay_all, sales_activity
from tests.waiting import wait_until

POLICY = InboundPolicy(tenants=frozenset({"acme", "globex"}))
FORMAT = JSONFormat()


def sdk_publish(kafka: KafkaClients, *messages: ce_kafka.KafkaMessage) -> None:
    """Send SDK-made records to the inbound topic with confluent-kafka's producer."""
    producer = Producer({"bootstrap.servers": kafka.settings.bootstrap_servers})
    for message in messages:
        producer.produce(kafka.topics.inbound, key=message.key, value=message.value,
                         headers=list(message.headers.items()))  # fmt: skip
    assert producer.flush(30) == 0, "confluent-kafka did not deliver every record"


def sdk_read(kafka: KafkaClients, topic: str, at_least: int) -> list[tuple[Any, CloudEvent]]:
    """Every record of a topic read with confluent_kafka.Consumer, each parsed by the SDK as its headers say."""
    consumer = Consumer({"bootstrap.servers": kafka.settings.bootstrap_servers, "group.id": f"sdk-{uuid.uuid4()}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})  # fmt: skip
    # Assigned, not subscribed: no group to join (which the bundled broker makes wait for its session timeout).
    partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in sorted(partitions)])
    records: list[Any] = []

    def enough() -> bool:
        record = consumer.poll(0.5)
        if record is not None:
            assert record.error() is None, record.error()
            records.append(record)
        return len(records) >= at_least and record is None

    try:
        wait_until(enough, 60, interval_s=0, what=f"{at_least} records on {topic} through confluent-kafka")
    finally:
        consumer.close()
    return [(record, sdk_parse(record)) for record in records]


def sdk_parse(record: Any) -> CloudEvent:
    headers = dict(record.headers() or [])
    message = ce_kafka.KafkaMessage(headers=headers, key=record.key(), value=record.value())
    if headers.get("content-type", b"").startswith(b"application/cloudevents"):
        return ce_kafka.from_structured(message, FORMAT)
    return ce_kafka.from_binary(message, FORMAT)


def spring_invoice(event_id: str, tenant: str = "acme", **attributes: Any) -> CloudEvent:
    """What a Spring billing service publishes: its own type, a subject, a time in UTC, crmflow's tenantid."""
    return CloudEvent(attributes={
        "specversion": "1.0", "id": event_id, "source": "/spring/billing", "type": "InvoicePaid",
        "subject": f"invoice-{event_id}", "time": datetime(2026, 12, 1, 10, 0, tzinfo=timezone.utc),
        "datacontenttype": "application/json", "tenantid": tenant, **attributes,
    }, data={"invoice": event_id, "amount": "1250.00", "currency": "EUR"})  # fmt: skip


def stored(app: CrmApplication, tenant: str, source: str, event_id: str) -> list[str]:
    return [h.type for h in app.history(inbound_id(tenant, source, event_id), tenant)]


def test_every_record_the_relay_writes_is_a_structured_cloudevent_the_official_sdk_reads(
    app: CrmApplication, kafka: KafkaClients
) -> None:
    sales_activity(app, leads=6)
    app.execute(CommandRequest("case.open", "acme", {"subject": "Cannot log in", "priority": "high"}))
    # An inbound event without a subject, republished: no attribute may go out as null.
    intake = Intake(app, kafka, POLICY)
    sdk_publish(kafka, ce_kafka.to_structured(CloudEvent(attributes={
        "specversion": "1.0", "id": "form-1", "source": "/web/forms", "type": "FormSubmitted", "tenantid": "acme",
    }, data={"email": "ada@ae.example"}), FORMAT))  # fmt: skip
    drain(intake, handled=1)
    relayed = relay_all(app, kafka)

    read = sdk_read(kafka, kafka.topics.events, at_least=relayed)

    assert len(read) == relayed > 20
    versions: dict[str, list[str]] = {}
    for record, event in read:
        assert dict(record.headers())["content-type"] == b"application/cloudevents+json"
        document = json.loads(record.value())
        assert None not in document.values(), f"a null attribute in {document}"
        assert event.get_id() == document["id"] and event.get_type() == document["type"]
        if "sequence" in document:  # crmflow's own events
            assert isinstance(document["sequence"], str) and len(document["sequence"]) == 20
            versions.setdefault(document["subject"], []).append(document["sequence"])
    # Per aggregate, string order is version order: 1, 2, ... as the sequence extension defines it.
    assert versions and all(seq == sorted(seq) and [int(s) for s in seq] == list(range(1, len(seq) + 1))
                            for seq in versions.values())  # fmt: skip
    (form,) = [event for _, event in read if event.get_type() == "FormSubmitted"]
    assert form.get_subject() is None and form.get_extension("tenantid") == "acme"


@pytest.mark.parametrize("mode", ["binary", "structured"])
def test_an_event_the_sdk_sends_in_either_mode_is_accepted_and_republished_structured_as_it_was_sent(
    app: CrmApplication, kafka: KafkaClients, mode: str
) -> None:
    sent = spring_invoice("inv-7", partitionkey="invoice-inv-7", region="eu1")
    to_kafka = ce_kafka.to_binary if mode == "binary" else ce_kafka.to_structured
    intake = Intake(app, kafka, POLICY)
    sdk_publish(kafka, to_kafka(sent, FORMAT))

    drain(intake, handled=1)

    assert intake.counts["accepted"] == 1, dict(intake.counts)
    assert stored(app, "acme", "/spring/billing", "inv-7") == ["InboundEventAccepted"]
    relay_all(app, kafka)
    ((record, republished),) = sdk_read(kafka, kafka.topics.events, at_least=1)
    assert dict(record.headers())["content-type"] == b"application/cloudevents+json"
    assert republished.get_attributes() == sent.get_attributes()
    assert republished.get_data() == sent.get_data()
    # The time goes out as the text that came in: 2026-12-01T10:00:00Z, not rewritten as +00:00.
    assert json.loads(record.value())["time"] == "2026-12-01T10:00:00Z"


def test_a_binary_mode_event_from_a_spring_service_is_accepted_and_republished_structured(
    app: CrmApplication, kafka: KafkaClients
) -> None:
    # No partitionkey attribute: the binding maps the Kafka key to it; the time has an offset and nanoseconds.
    sent = spring_invoice("inv-8", time=datetime(2026, 12, 1, 11, 0, tzinfo=timezone(timedelta(hours=1))))
    message = ce_kafka.to_binary(sent, FORMAT)
    headers = {**message.headers, "ce_time": b"2026-12-01T11:00:00.123456789+01:00", "traceparent": b"00-ab-cd-01"}
    intake = Intake(app, kafka, POLICY)
    sdk_publish(kafka, ce_kafka.KafkaMessage(headers=headers, key=b"billing-eu", value=message.value))

    drain(intake, handled=1)
    relay_all(app, kafka)

    ((record, republished),) = sdk_read(kafka, kafka.topics.events, at_least=1)
    document = json.loads(record.value())
    assert document["time"] == "2026-12-01T11:00:00.123456789+01:00"
    assert document["partitionkey"] == "billing-eu"
    assert "traceparent" not in document, "a header that is not ce_ is not an attribute"
    assert (republished.get_type(), republished.get_subject(), republished.get_extension("tenantid")) == (
        "InvoicePaid", "invoice-inv-8", "acme")  # fmt: skip
    assert republished.get_data() == {"invoice": "inv-8", "amount": "1250.00", "currency": "EUR"}


def test_a_binary_mode_event_with_an_illegal_extension_name_is_dead_lettered_with_its_headers(
    app: CrmApplication, kafka: KafkaClients
) -> None:
    message = ce_kafka.to_binary(spring_invoice("inv-9"), FORMAT)
    intake = Intake(app, kafka, POLICY)
    sdk_publish(kafka, ce_kafka.KafkaMessage(headers={**message.headers, "ce_My_Ext": b"1"}, key=message.key,
                                             value=message.value))  # fmt: skip

    drain(intake, handled=1)

    (letter,) = deadletters.list_dead_letters(kafka)
    assert letter.error == "bad_attribute"
    assert "'My_Ext'" in letter.headers["crmflow-reason"]
    assert dict(letter.original_headers)["ce_My_Ext"] == b"1"
    assert relay_all(app, kafka) == 0, "nothing was stored, so nothing is republished"


def test_a_binary_mode_event_dead_lettered_for_an_unknown_tenant_is_redriven_with_its_headers_after_onboarding(
    app: CrmApplication, kafka: KafkaClients
) -> None:
    # Initech is not a tenant yet: its binary-mode invoice is dead-lettered. Key, value and every header stay.
    message = ce_kafka.to_binary(spring_invoice("inv-10", tenant="initech", partitionkey="invoice-inv-10"), FORMAT)
    first = Intake(app, kafka, POLICY)
    sdk_publish(kafka, message)
    drain(first, handled=1)
    (letter,) = deadletters.list_dead_letters(kafka)
    assert letter.error == "unknown_tenant"
    assert (letter.key, letter.value) == (message.key.encode(), message.value)
    assert dict(letter.original_headers) == message.headers

    # Onboarded: the redriven record is the original binary-mode event again, and it is accepted.
    first.close()
    onboarded = Intake(app, kafka, InboundPolicy(tenants=frozenset({"acme", "initech"})))
    assert len(deadletters.redrive(kafka, error="unknown_tenant")) == 1
    drain(onboarded, handled=1)

    assert onboarded.counts["accepted"] == 1, dict(onboarded.counts)
    assert stored(app, "initech", "/spring/billing", "inv-10") == ["InboundEventAccepted"]
    redriven = [(r, e) for r, e in sdk_read(kafka, kafka.topics.inbound, at_least=2) if e.get_id() == "inv-10"]
    # (confluent-kafka and kafka-python partition a key differently: the two may be on different partitions.)
    assert len(redriven) == 2 and all(e.get_attributes() == redriven[0][1].get_attributes() for _, e in redriven)
    assert sorted(dict(r.headers()).get("crmflow-attempts", b"-") for r, _ in redriven) == [b"-", b"1"]
