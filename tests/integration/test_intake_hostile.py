"""Hostile messages on the inbound topic, among good ones: the intake keeps running, dead-letters each with
its reason and stores every good one. Found as crash loops (RecursionError, "Exceeds the limit (4300
digits)", "invalid literal for int()") and as events stored that the relay could not publish."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from kafka import KafkaProducer
from kafka.admin import NewTopic

from crmflow.aggregates.application import CrmApplication
from crmflow.aggregates.inbound import inbound_id
from crmflow.workers.inbound_checks import InboundPolicy
from crmflow.workers.kafka import deadletters
from crmflow.workers.kafka.clients import KafkaClients, KafkaSettings
from crmflow.workers.kafka.intake import Intake
from crmflow.workers.shutdown import StopSignal
from tests.waiting import run_in_background, wait_until

POLICY = InboundPolicy(tenants=frozenset({"acme"}))  # crmflow's own limits: 262,144 bytes a message


def form(event_id: str, data_json: str = '{"email": "ada@ae.example"}', tenant: str = "acme") -> bytes:
    """A web form event, its data written as JSON text by hand (json.dumps cannot nest 2,000 deep)."""
    return ('{"specversion": "1.0", "id": "%s", "source": "/web/forms", "type": "FormSubmitted", '
            '"tenantid": %s, "data": %s}' % (event_id, json.dumps(tenant), data_json)).encode()  # fmt: skip


# name -> (value, headers, the error code expected, the limit named, if any)
HOSTILE: dict[str, tuple[bytes, list[tuple[str, bytes]], str, str | None]] = {
    "open_brackets": (b"[" * 100_000, [], "limit_exceeded", "json_depth"),  # 100,000 bytes
    "data_2000_deep": (form("h-1", '{"a": ' * 2000 + "1" + "}" * 2000), [], "limit_exceeded", "json_depth"),
    "data_300_deep": (form("h-2", "[" * 300 + "]" * 300), [], "limit_exceeded", "json_depth"),
    "integer_of_5000_digits": (form("h-3", "1" * 5000), [], "limit_exceeded", "integer_range"),
    "integer_2_to_the_64": (form("h-4", str(2**64)), [], "limit_exceeded", "integer_range"),
    "attempts_not_a_number": (b"{not json", [("crmflow-attempts", b"not-a-number")], "not_json", None),
    "headers_not_utf8": (
        b"\xff\xfe{}",
        [("crmflow-attempts", b"\xff\xfe"), ("trace", b"\x80\x81")],
        "not_utf8",
        None,
    ),
    "tenant_with_a_newline": (form("h-5", tenant="acme\n"), [], "bad_tenant", None),
    "nan": (form("h-6", "[NaN]"), [], "not_json", None),
    "lone_surrogate": (form("h-7", '"\\ud800"'), [], "not_utf8", None),
}


@pytest.fixture
def stop() -> Iterator[StopSignal]:
    signal = StopSignal()
    yield signal
    signal.set()


def stored(app: CrmApplication, event_id: str) -> bool:
    return bool(app.history(inbound_id("acme", "/web/forms", event_id), "acme"))


def letters_by_key(kafka: KafkaClients, count: int) -> dict[bytes, deadletters.DeadLetter]:
    found: dict[bytes, deadletters.DeadLetter] = {}

    def all_there() -> bool:
        found.update({d.key: d for d in deadletters.list_dead_letters(kafka) if d.key})
        return len(found) >= count

    wait_until(all_there, 60, interval_s=0.2, what=f"{count} dead letters")
    return found


def test_hostile_messages_among_good_ones_are_dead_lettered_and_every_good_one_is_stored(
    app: CrmApplication, kafka: KafkaClients, stop: StopSignal
) -> None:
    # Good, hostile, good, hostile, ...: each hostile one sits between two good ones on the same partition.
    for i, (name, (value, headers, _, _)) in enumerate(HOSTILE.items()):
        kafka.producer.send(kafka.topics.inbound, key=b"same-partition", value=form(f"ok-{i}"))
        kafka.producer.send(kafka.topics.inbound, key=b"same-partition", value=value, headers=headers)
    kafka.producer.send(kafka.topics.inbound, key=b"same-partition", value=form(f"ok-{len(HOSTILE)}"))
    kafka.producer.flush()
    intake = Intake(app, kafka, POLICY)
    thread, escaped = run_in_background(intake, stop)

    good = [f"ok-{i}" for i in range(len(HOSTILE) + 1)]
    wait_until(lambda: all(stored(app, e) for e in good), 60, interval_s=0.2, what="every good event stored")
    wait_until(
        lambda: intake.handled >= 2 * len(HOSTILE) + 1, 60, interval_s=0.2, what="every message committed"
    )

    assert thread.is_alive() and escaped == [], "the intake is still running"
    letters = deadletters.list_dead_letters(kafka)
    assert len(letters) == len(HOSTILE)
    by_value = {d.value: d for d in letters}
    for name, (value, _, code, limit) in HOSTILE.items():
        letter = by_value[value]  # kept whole: every one is under the 262,144-byte limit
        assert (letter.error, letter.headers.get("crmflow-limit")) == (code, limit), name
        assert letter.headers["crmflow-reason"], name
        assert letter.headers["crmflow-attempts"] == "1", name
        assert letter.headers["crmflow-original-sha256"] == hashlib.sha256(value).hexdigest(), name
        assert not letter.truncated
    assert [e for e in ("h-1", "h-2", "h-3", "h-4", "h-6") if stored(app, e)] == [], (
        "nothing hostile is stored"
    )


TEN_MB = 10 * 1024 * 1024


@pytest.fixture
def big_topics(kafka_settings: KafkaSettings) -> Iterator[KafkaClients]:
    """Topics whose inbound topic takes a 10 MB message (Kafka's default is 1 MB), for a sender that may."""
    with KafkaClients(kafka_settings, name="test") as clients:
        admin = clients.admin()
        try:
            admin.create_topics([
                NewTopic(clients.topics.inbound, num_partitions=1, replication_factor=1,
                         topic_configs={"max.message.bytes": str(2 * TEN_MB)}),
            ])  # fmt: skip
        finally:
            admin.close()
        clients.ensure_topics()
        yield clients


def test_a_ten_megabyte_message_is_dead_lettered_as_its_first_64_kib_with_its_size_and_digest(
    app: CrmApplication, big_topics: KafkaClients, stop: StopSignal
) -> None:
    kafka = big_topics
    huge = form("huge", json.dumps({"notes": "x" * TEN_MB}))
    sender = KafkaProducer(bootstrap_servers=kafka.settings.bootstrap_servers, max_request_size=2 * TEN_MB)
    try:
        for value in (form("before"), huge, form("after")):
            sender.send(kafka.topics.inbound, key=b"k", value=value).get(timeout=60)
    finally:
        sender.close()
    intake = Intake(app, kafka, POLICY)
    thread, escaped = run_in_background(intake, stop)

    wait_until(
        lambda: stored(app, "before") and stored(app, "after"), 90, interval_s=0.2, what="both good events"
    )
    (letter,) = letters_by_key(kafka, 1).values()

    assert thread.is_alive() and escaped == []
    assert (letter.error, letter.headers["crmflow-limit"]) == ("oversize", "message_bytes")
    assert letter.value == huge[: 64 * 1024] and letter.truncated
    assert letter.original_bytes == len(huge)  # the 10,485,760 x's and the event around them
    assert letter.headers["crmflow-original-sha256"] == hashlib.sha256(huge).hexdigest()
    summary: dict[str, Any] = letter.summary()
    assert (summary["original_bytes"], summary["truncated"], summary["bytes"]) == (len(huge), True, 65_536)
    # A truncated letter cannot be sent back whole: redrive passes it over, and marks it done.
    assert deadletters.redrive(kafka) == []
    assert deadletters.redrive(kafka, dry_run=True) == []
