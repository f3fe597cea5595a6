"""Reading and redriving ``<prefix>.deadletter``: what failed, why, and sending it back.

Listing reads the whole topic without a consumer group. Redrive remembers what
it has sent back as the committed offsets of the group ``<prefix>.redrive``,
using manual partition assignment (no group join, no rebalance), so a dead
letter is redriven once however often the command runs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import structlog

from crmflow.workers.kafka.clients import KafkaClients, committable, topic_partitions
from crmflow.workers.kafka.intake import ATTEMPTS_HEADER

log = structlog.get_logger("crmflow.deadletter")


@dataclass(frozen=True)
class DeadLetter:
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, str]
    timestamp_ms: int

    @property
    def position(self) -> str:
        return f"{self.partition}:{self.offset}"

    @property
    def error(self) -> str:
        return self.headers.get("crmflow-error", "?")

    def summary(self) -> dict[str, Any]:
        h = self.headers
        return {
            "position": self.position,
            "error": self.error,
            "reason": h.get("crmflow-reason"),
            "original": f"{h.get('crmflow-original-topic')}[{h.get('crmflow-original-partition')}]"
            f"@{h.get('crmflow-original-offset')}",
            "attempts": int(h.get(ATTEMPTS_HEADER, "1")),
            "failed_at": h.get("crmflow-failed-at"),
            "bytes": len(self.value),
        }


def _from_record(record: Any) -> DeadLetter:
    headers = {k: (v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)) for k, v in record.headers or ()}
    return DeadLetter(record.partition, record.offset, record.key, record.value or b"", headers, record.timestamp)


def _read_to_end(consumer: Any, partitions: list[Any], timeout_s: float) -> list[Any]:
    """Everything from the consumer's positions up to the end offsets of now."""
    end = consumer.end_offsets(partitions)
    records: list[Any] = []
    deadline = time.monotonic() + timeout_s
    while any(consumer.position(tp) < end[tp] for tp in partitions) and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=200).values():
            records.extend(batch)
    return sorted(records, key=lambda r: (r.partition, r.offset))


def list_dead_letters(kafka: KafkaClients, timeout_s: float = 15.0) -> list[DeadLetter]:
    consumer = kafka.consumer(group_id=None)
    partitions = topic_partitions(consumer, kafka.topics.deadletter)
    if not partitions:
        return []
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    return [_from_record(r) for r in _read_to_end(consumer, partitions, timeout_s)]


def find_dead_letter(kafka: KafkaClients, position: str) -> DeadLetter | None:
    return next((d for d in list_dead_letters(kafka) if d.position == position), None)


def redrive(kafka: KafkaClients, *, error: str | None = None, dry_run: bool = False,
            timeout_s: float = 15.0) -> list[DeadLetter]:  # fmt: skip
    """Send dead letters not yet redriven back to their original topic; return them."""
    group = f"{kafka.settings.topic_prefix}.redrive"
    consumer = kafka.consumer(group_id=group)
    partitions = topic_partitions(consumer, kafka.topics.deadletter)
    if not partitions:
        return []
    consumer.assign(partitions)
    for tp in partitions:
        committed = consumer.committed(tp)
        if committed is None:
            consumer.seek_to_beginning(tp)
        else:
            consumer.seek(tp, committed)
    records = _read_to_end(consumer, partitions, timeout_s)
    letters = [_from_record(r) for r in records]
    chosen = [d for d in letters if error is None or d.error == error]
    if dry_run or not records:
        return chosen
    futures = []
    for letter in chosen:
        target = letter.headers.get("crmflow-original-topic") or kafka.topics.inbound
        # The attempts so far travel along, so a second failure counts 2.
        headers = [(ATTEMPTS_HEADER, letter.headers.get(ATTEMPTS_HEADER, "1").encode())]
        futures.append(kafka.producer.send(target, key=letter.key, value=letter.value, headers=headers))
    kafka.producer.flush(timeout=30)
    if not all(f.succeeded() for f in futures):
        raise RuntimeError("Kafka did not acknowledge every redriven message; nothing was marked as redriven")
    # Mark as redriven up to the first letter skipped by --error in each
    # partition, so that skipped letters stay pending. (Letters redriven after
    # a skipped one may be sent again later; the intake drops duplicates by id.)
    consumer.commit(committable(_redriven_offsets(records, {(d.partition, d.offset) for d in chosen})))
    log.info("dead_letters_redriven", count=len(chosen), error=error or "any")
    return chosen


def _redriven_offsets(records: list[Any], chosen: set[tuple[int, int]]) -> dict[tuple[str, int], int]:
    offsets: dict[tuple[str, int], int] = {}
    blocked: set[tuple[str, int]] = set()
    for r in records:  # sorted by partition, offset
        tp = (r.topic, r.partition)
        if tp in blocked:
            continue
        if (r.partition, r.offset) not in chosen:
            blocked.add(tp)
            continue
        offsets[tp] = r.offset + 1
    return offsets
