"""The intake when the database or a message misbehaves (hand-written fakes that record)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from eventsourcing.persistence import OperationalError

from crmflow.workers.inbound_checks import InboundPolicy
from crmflow.workers.kafka.clients import KafkaSettings, Topics
from crmflow.workers.kafka.intake import Intake


@dataclass
class Record:
    value: bytes
    offset: int
    topic: str = "crm.inbound"
    partition: int = 0
    key: bytes | None = None
    headers: list[tuple[str, bytes]] = field(default_factory=list)


class FakeFuture:
    def succeeded(self) -> bool:
        return True


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send(self, topic: str, **message: Any) -> FakeFuture:
        self.sent.append({"topic": topic, **message})
        return FakeFuture()

    def flush(self, timeout: float | None = None) -> None:
        pass


class FakeConsumer:
    def __init__(self, records: list[Record]) -> None:
        self.records = records
        self.seeks: list[tuple[str, int]] = []
        self.commits = 0

    def poll(self, timeout_ms: int) -> dict[str, list[Record]]:
        return {"crm.inbound-0": self.records}

    def seek(self, partition: str, offset: int) -> None:
        self.seeks.append((partition, offset))

    def commit(self) -> None:
        self.commits += 1


class FakeKafka:
    def __init__(self) -> None:
        self.settings = KafkaSettings(topic_prefix="crm", retry_backoff_s=0.0)
        self.topics = Topics("crm")
        self.producer = FakeProducer()


class FlakyStore:
    """Fails the first N stores like a database that is down, then records what it stores."""

    def __init__(self, outages: int = 0, poison_id: str | None = None) -> None:
        self.outages = outages
        self.poison_id = poison_id
        self.stored: list[str] = []

    def accept_inbound(self, documents: list[tuple[str, dict[str, Any]]]) -> list[bool]:
        if self.outages:
            self.outages -= 1
            raise OperationalError("connection refused")
        if any(d["id"] == self.poison_id for _, d in documents):
            raise ValueError("value out of range for the column")
        self.stored += [d["id"] for _, d in documents]
        return [True] * len(documents)


def event(event_id: str) -> bytes:
    return json.dumps({"specversion": "1.0", "id": event_id, "source": "/s", "type": "FormSubmitted",
                       "tenantid": "acme", "data": {}}).encode()  # fmt: skip


def intake_with(store: FlakyStore, records: list[Record]) -> tuple[Intake, FakeConsumer, FakeKafka]:
    kafka, consumer = FakeKafka(), FakeConsumer(records)
    intake = Intake(store, kafka, InboundPolicy())  # type: ignore[arg-type]
    intake._consumer = consumer
    return intake, consumer, kafka


def test_a_database_outage_rewinds_the_batch_and_commits_nothing_until_it_is_stored() -> None:
    store = FlakyStore(outages=1)
    intake, consumer, kafka = intake_with(store, [Record(event("a"), 10), Record(event("b"), 11)])

    assert intake.poll_once() == 0  # the database is down
    assert (consumer.commits, consumer.seeks, store.stored) == (0, [("crm.inbound-0", 10)], [])
    assert kafka.producer.sent == [], "an outage is not the message's fault: nothing is dead-lettered"

    assert intake.poll_once() == 2  # back up: the same batch again
    assert (consumer.commits, store.stored) == (1, ["a", "b"])


def test_a_message_that_cannot_be_stored_is_dead_lettered_and_the_rest_are_stored() -> None:
    store = FlakyStore(poison_id="b")
    intake, consumer, kafka = intake_with(store, [Record(event("a"), 1), Record(event("b"), 2), Record(event("c"), 3)])

    assert intake.poll_once() == 3

    assert store.stored == ["a", "c"]
    (letter,) = kafka.producer.sent
    headers = dict(letter["headers"])
    assert (letter["topic"], headers["crmflow-error"], headers["crmflow-error-class"]) == (
        "crm.deadletter", b"store_failed", b"ValueError")  # fmt: skip
    assert headers["crmflow-original-offset"] == b"2"
    assert consumer.commits == 1


def test_a_redriven_message_that_fails_again_counts_its_attempts() -> None:
    intake, _, kafka = intake_with(FlakyStore(), [Record(b"not json", 5, headers=[("crmflow-attempts", b"2")])])
    intake.poll_once()
    assert dict(kafka.producer.sent[0]["headers"])["crmflow-attempts"] == b"3"
