"""The intake when the database or a message misbehaves (hand-written fakes that record)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from eventsourcing.persistence import OperationalError
from kafka.errors import CommitFailedError, KafkaTimeoutError, MessageSizeTooLargeError

from crmflow.workers.inbound_checks import InboundPolicy
from crmflow.workers.kafka import deadletters
from crmflow.workers.kafka import intake as intake_module
from crmflow.workers.kafka.clients import KafkaSettings, Topics
from crmflow.workers.kafka.intake import DEAD_LETTER_ATTEMPTS, Intake


@dataclass
class Record:
    value: bytes
    offset: int
    topic: str = "crm.inbound"
    partition: int = 0
    key: bytes | None = None
    headers: list[tuple[str, bytes | None]] = field(default_factory=list)
    timestamp: int = 0


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
    intake, consumer, kafka = intake_with(
        store, [Record(event("a"), 1), Record(event("b"), 2), Record(event("c"), 3)]
    )

    assert intake.poll_once() == 3

    assert store.stored == ["a", "c"]
    (letter,) = kafka.producer.sent
    headers = dict(letter["headers"])
    assert (letter["topic"], headers["crmflow-error"], headers["crmflow-error-class"]) == (
        "crm.deadletter", b"store_failed", b"ValueError")  # fmt: skip
    assert headers["crmflow-original-offset"] == b"2"
    assert consumer.commits == 1


def test_a_redriven_message_that_fails_again_counts_its_attempts() -> None:
    intake, _, kafka = intake_with(
        FlakyStore(), [Record(b"not json", 5, headers=[("crmflow-attempts", b"2")])]
    )
    intake.poll_once()
    assert dict(kafka.producer.sent[0]["headers"])["crmflow-attempts"] == b"3"


def test_an_attempts_header_that_is_not_a_number_counts_as_a_first_failure() -> None:
    garbage = [("crmflow-attempts", b"not-a-number"), ("crmflow-attempts", b"\xff\xfe"), ("x", b"\xff")]
    intake, consumer, kafka = intake_with(FlakyStore(), [Record(b"not json", 5, headers=garbage)])
    assert intake.poll_once() == 1
    assert dict(kafka.producer.sent[0]["headers"])["crmflow-attempts"] == b"1"
    assert consumer.commits == 1


def test_any_header_bytes_and_any_key_leave_the_record_stored_or_dead_lettered() -> None:
    odd = [("crmflow-attempts", b"9" * 5000), ("crmflow-attempts", None), ("\u00e9", b"\x00\xff")]
    records = [
        Record(event("a"), 1, key=b"\xff" * 10, headers=odd),
        Record(b"\xff\xfe", 2, key=None, headers=odd),
    ]
    store = FlakyStore()
    intake, consumer, kafka = intake_with(store, records)  # type: ignore[arg-type]
    assert intake.poll_once() == 2
    assert store.stored == ["a"]
    assert [dict(m["headers"])["crmflow-error"] for m in kafka.producer.sent] == [b"not_utf8"]


def test_a_dead_letter_keeps_the_original_headers_but_not_crmflows_own_from_an_earlier_failure() -> None:
    original = [("ce_id", b"inv-1"), ("traceparent", b"00-ab-cd-01"), ("crmflow-attempts", b"2"),
                ("crmflow-error", b"unknown_tenant"), ("ce_region", None)]  # fmt: skip
    intake, _, kafka = intake_with(FlakyStore(), [Record(b"not json", 5, key=b"inv-1", headers=original)])

    assert intake.poll_once() == 1

    (letter,) = kafka.producer.sent
    kept = [(k, v) for k, v in letter["headers"] if not k.startswith("crmflow-")]
    # A null header value is kept as empty: kafka-python, which writes the letter, cannot write a null one.
    assert kept == [("ce_id", b"inv-1"), ("traceparent", b"00-ab-cd-01"), ("ce_region", b"")]
    assert [v for k, v in letter["headers"] if k == "crmflow-attempts"] == [b"3"]
    # ce_ headers make it binary mode, where a header without a value is the first thing wrong.
    assert [v for k, v in letter["headers"] if k == "crmflow-error"] == [b"bad_attribute"]


def test_original_headers_over_64_kib_are_not_kept_and_such_a_letter_is_never_redriven() -> None:
    intake, _, kafka = intake_with(FlakyStore(), [Record(b"not json", 5, headers=[("ce_note", b"x" * 70_000)])])
    intake.poll_once()
    (sent,) = kafka.producer.sent
    assert not [k for k, _ in sent["headers"] if not k.startswith("crmflow-")]
    letter = deadletters._from_record(Record(sent["value"], 0, headers=sent["headers"]))  # as listed from Kafka
    assert letter.truncated and letter.headers["crmflow-original-headers-dropped"] == "1"


def test_a_message_of_ten_megabytes_is_dead_lettered_as_its_first_64_kib_with_its_size_and_digest() -> None:
    huge = b'{"data": "' + b"x" * (10 * 1024 * 1024) + b'"}'
    intake, consumer, kafka = intake_with(FlakyStore(), [Record(huge, 7, key=b"k" * 100_000)])

    assert intake.poll_once() == 1

    (letter,) = kafka.producer.sent
    headers = dict(letter["headers"])
    assert headers["crmflow-error"] == b"oversize" and headers["crmflow-limit"] == b"message_bytes"
    assert letter["value"] == huge[: 64 * 1024] and len(letter["key"]) == 64 * 1024
    assert headers["crmflow-original-bytes"] == str(len(huge)).encode()  # 10 * 1024 * 1024 + 12 = 10,485,772
    assert headers["crmflow-original-sha256"] == hashlib.sha256(huge).hexdigest().encode()
    assert consumer.commits == 1


class RefusingProducer(FakeProducer):
    """Refuses every dead letter the way kafka-python refuses a record over max_request_size: at once."""

    def send(self, topic: str, **message: Any) -> FakeFuture:
        raise MessageSizeTooLargeError("the message is 10485772 bytes when serialized")


def test_a_dead_letter_kafka_refuses_for_good_is_retried_a_bounded_number_of_times_then_passed_over() -> None:
    intake, consumer, kafka = intake_with(FlakyStore(), [Record(b"not json", 3)])
    kafka.producer = RefusingProducer()

    handled = [intake.poll_once() for _ in range(DEAD_LETTER_ATTEMPTS)]

    # Four batches rewound and retried, the fifth passed over and committed.
    assert handled == [0] * (DEAD_LETTER_ATTEMPTS - 1) + [1]
    assert consumer.seeks == [("crm.inbound-0", 3)] * (DEAD_LETTER_ATTEMPTS - 1)
    assert (consumer.commits, intake.counts["dead_letter_lost"]) == (1, 1)


class TimingOutProducer(FakeProducer):
    def send(self, topic: str, **message: Any) -> FakeFuture:
        raise KafkaTimeoutError("metadata not available after 60000 ms")


def test_a_dead_letter_that_meets_a_kafka_outage_is_retried_for_as_long_as_it_lasts() -> None:
    intake, consumer, kafka = intake_with(FlakyStore(), [Record(b"not json", 3)])
    kafka.producer = TimingOutProducer()
    assert [intake.poll_once() for _ in range(DEAD_LETTER_ATTEMPTS * 2)] == [0] * DEAD_LETTER_ATTEMPTS * 2
    assert consumer.commits == 0 and intake.counts["dead_letter_lost"] == 0
    kafka.producer = FakeProducer()
    assert intake.poll_once() == 1 and consumer.commits == 1


class RebalancedConsumer(FakeConsumer):
    """Its first commit is refused as after a rebalance during a long database outage."""

    refusals = 1

    def commit(self) -> None:
        if self.refusals:
            self.refusals -= 1
            raise CommitFailedError(
                "the group has already rebalanced and assigned the partitions to another member"
            )
        super().commit()


def test_a_commit_refused_after_a_rebalance_rewinds_the_batch_and_the_intake_carries_on() -> None:
    store = FlakyStore(outages=2)
    intake, _, _ = intake_with(store, [Record(event("a"), 10)])
    consumer = intake._consumer = RebalancedConsumer([Record(event("a"), 10)])

    # Two polls meet the outage, the third stores and its commit is refused, the fourth commits.
    assert [intake.poll_once() for _ in range(4)] == [0, 0, 0, 1]
    assert consumer.seeks == [("crm.inbound-0", 10)] * 3
    assert store.stored == ["a", "a"], (
        "stored again after the refused commit (a real store finds a duplicate)"
    )
    assert (consumer.commits, consumer.refusals) == (1, 0)


class BrokenPollConsumer(FakeConsumer):
    def poll(self, timeout_ms: int) -> dict[str, list[Record]]:
        raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")


def test_a_poll_that_raises_is_logged_and_retried_never_raised() -> None:
    intake, _, _ = intake_with(FlakyStore(), [])
    intake._consumer = BrokenPollConsumer([])
    assert [intake.poll_once() for _ in range(3)] == [0, 0, 0]
    assert intake.failures == 3


def test_a_check_that_breaks_on_a_record_dead_letters_it_and_stores_the_rest(monkeypatch: Any) -> None:
    real = intake_module.check_record

    def breaks_on_b(value: bytes, headers: Any, key: Any, policy: InboundPolicy) -> Any:
        if b'"b"' in value:
            raise RecursionError("maximum recursion depth exceeded")
        return real(value, headers, key, policy)

    monkeypatch.setattr(intake_module, "check_record", breaks_on_b)
    store = FlakyStore()
    intake, consumer, kafka = intake_with(store, [Record(event("a"), 1), Record(event("b"), 2)])
    assert intake.poll_once() == 2
    assert store.stored == ["a"]
    headers = dict(kafka.producer.sent[0]["headers"])
    assert (headers["crmflow-error"], headers["crmflow-error-class"]) == (b"check_failed", b"RecursionError")
