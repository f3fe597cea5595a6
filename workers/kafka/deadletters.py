"""Writing, reading and redriving ``<prefix>.deadletter``: what failed, why, and sending it back.

A dead letter is the original key, value and headers, plus headers (named
``crmflow-*``) that say why it failed and where it came from, and the
original's size and SHA-256. The original headers are what make a binary-mode
CloudEvent (its attributes are ``ce_`` headers) an event at all, so redrive
sends them back with the key and value. A value
larger than the intake accepts (it may be as large as the inbound topic
allows, far above what the producer may send) is kept truncated to its first
``KEPT_BYTES``, so that the dead letter itself always fits; size and digest
identify the original. A truncated letter cannot be redriven: it is skipped,
with a log line, and marked as done.

Listing reads the whole topic without a consumer group. Redrive remembers what
it has sent back as the committed offsets of the group ``<prefix>.redrive``,
using manual partition assignment (no group join, no rebalance), so a dead
letter is redriven once however often the command runs.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import structlog

from crmflow.workers.inbound_checks import Rejected
from crmflow.workers.kafka.clients import KafkaClients, committable, topic_partitions

log = structlog.get_logger("crmflow.deadletter")

ATTEMPTS_HEADER = "crmflow-attempts"
ORIGINAL_BYTES_HEADER = "crmflow-original-bytes"
ORIGINAL_SHA256_HEADER = "crmflow-original-sha256"
# Of a value or key too large to keep whole: enough to recognise it, far inside the producer's 1 MB request.
KEPT_BYTES = 64 * 1024
MAX_REASON_CHARS = 1_000  # a header, not a copy of the message
MAX_ATTEMPTS_DIGITS = 9  # a count of redrives; anything longer is not one
# Headers crmflow writes: on a redriven message that fails again they are replaced, never kept as original.
OWN_HEADER_PREFIX = "crmflow-"
HEADERS_DROPPED_HEADER = "crmflow-original-headers-dropped"


def header(record: Any, name: str) -> str | None:
    """A header of a consumed record as text (bytes that are not UTF-8 are replaced, never an error)."""
    for key, value in record.headers or ():
        if key == name:
            if value is None:
                return None
            return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return None


def attempts_so_far(record: Any) -> int:
    """How often the message failed before (its attempts header); 0 for a header that is not a count."""
    value = (header(record, ATTEMPTS_HEADER) or "").strip()
    if value.isascii() and value.isdigit() and len(value) <= MAX_ATTEMPTS_DIGITS:
        return int(value)
    return 0


@dataclass(frozen=True)
class Letter:
    """What goes to the dead-letter topic for one refused record."""

    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]


def dead_letter_for(record: Any, rejected: Rejected, error_class: str, *, whole_up_to: int) -> Letter:
    """The dead letter of a record: whole if its value is at most ``whole_up_to`` bytes, else truncated."""
    original = bytes(record.value or b"")
    value = original if len(original) <= whole_up_to else original[:KEPT_BYTES]
    key = None if record.key is None else bytes(record.key)[:KEPT_BYTES]
    kept = original_headers(record.headers)
    dropped = 0
    if sum(len(k) + len(v) for k, v in kept) > KEPT_BYTES:
        # Headers that large would not fit the letter either: it is then incomplete and cannot be redriven.
        kept, dropped = [], len(kept)
    headers = kept + [
        ("crmflow-reason", rejected.reason[:MAX_REASON_CHARS].encode("utf-8", "replace")),
        ("crmflow-error", rejected.code.encode()),
        ("crmflow-error-class", error_class.encode()),
        ("crmflow-original-topic", str(record.topic).encode()),
        ("crmflow-original-partition", str(record.partition).encode()),
        ("crmflow-original-offset", str(record.offset).encode()),
        (ORIGINAL_BYTES_HEADER, str(len(original)).encode()),
        (ORIGINAL_SHA256_HEADER, hashlib.sha256(original).hexdigest().encode()),
        (ATTEMPTS_HEADER, str(attempts_so_far(record) + 1).encode()),
        ("crmflow-failed-at", datetime.now(timezone.utc).isoformat().encode()),
    ]
    if rejected.limit is not None:
        headers += [("crmflow-limit", rejected.limit.name.encode()),
                    ("crmflow-limit-value", str(rejected.limit.value).encode())]  # fmt: skip
    if dropped:
        headers.append((HEADERS_DROPPED_HEADER, str(dropped).encode()))
    return Letter(key, value, headers)


def original_headers(headers: Any) -> list[tuple[str, bytes]]:
    """The headers of a record that are not crmflow's own, in order, values as bytes (a null value as empty:
    kafka-python, which writes the letter and the redrive, cannot write a null header value)."""
    kept = []
    for name, value in headers or ():
        if not isinstance(name, str) or name.startswith(OWN_HEADER_PREFIX):
            continue
        kept.append((name, b"" if value is None else bytes(value)))
    return kept


@dataclass(frozen=True)
class DeadLetter:
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, str]
    timestamp_ms: int
    original_headers: list[tuple[str, bytes]] = field(default_factory=list)  # as the original had them

    @property
    def position(self) -> str:
        return f"{self.partition}:{self.offset}"

    @property
    def error(self) -> str:
        return self.headers.get("crmflow-error", "?")

    @property
    def original_bytes(self) -> int:
        """The original message's size (letters from before this header: the value's)."""
        value = _count(self.headers.get(ORIGINAL_BYTES_HEADER, ""))
        return value if isinstance(value, int) else len(self.value)

    @property
    def tenant(self) -> str | None:
        """The tenant the original names (binary mode's ce_tenantid header, else the value's tenantid),
        if any: the console shows a tenant's admin only its own tenant's letters."""
        for name, value in self.original_headers:
            if name == "ce_tenantid":
                return value.decode("utf-8", "replace")
        try:
            document = json.loads(self.value)
        except ValueError:  # not JSON, or truncated: it names no tenant anyone can trust
            return None
        tenant = document.get("tenantid") if isinstance(document, dict) else None
        return tenant if isinstance(tenant, str) else None

    @property
    def truncated(self) -> bool:
        return self.original_bytes > len(self.value) or HEADERS_DROPPED_HEADER in self.headers

    def summary(self) -> dict[str, Any]:
        h = self.headers
        return {
            "position": self.position,
            "error": self.error,
            "reason": h.get("crmflow-reason"),
            "original": f"{h.get('crmflow-original-topic')}[{h.get('crmflow-original-partition')}]"
            f"@{h.get('crmflow-original-offset')}",
            "attempts": _count(h.get(ATTEMPTS_HEADER, "1")),
            "failed_at": h.get("crmflow-failed-at"),
            "limit": h.get("crmflow-limit"),
            "bytes": len(self.value),
            "original_bytes": self.original_bytes,
            "original_sha256": h.get(ORIGINAL_SHA256_HEADER),
            "truncated": self.truncated,
            "original_headers": [name for name, _ in self.original_headers],
        }


def _count(text: str) -> int | str:
    """A count header as a number; what is not one is shown as it is."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= MAX_ATTEMPTS_DIGITS else text


def _from_record(record: Any) -> DeadLetter:
    headers = {k: (v.decode("utf-8", "replace") if isinstance(v, bytes) else "" if v is None else str(v))
               for k, v in record.headers or ()}  # fmt: skip
    return DeadLetter(record.partition, record.offset, record.key, record.value or b"", headers,
                      record.timestamp, original_headers(record.headers))  # fmt: skip


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
            timeout_s: float = 15.0, tenant: str | None = None) -> list[DeadLetter]:  # fmt: skip
    """Send dead letters not yet redriven back to their original topic; return them.

    ``tenant``: only the letters naming that tenant (the console's redrive, for a tenant's admin)."""
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
    matching = [
        d for d in letters if (error is None or d.error == error) and (tenant is None or d.tenant == tenant)
    ]
    chosen = [d for d in matching if not d.truncated]
    for letter in matching:
        if letter.truncated:
            log.warning(
                "dead_letter_not_redriven",
                position=letter.position,
                original_bytes=letter.original_bytes,
                original_sha256=letter.headers.get(ORIGINAL_SHA256_HEADER),
                reason="only part of the original was kept: it is not here to send back",
            )
    if dry_run or not records:
        return chosen
    futures = []
    for letter in chosen:
        target = letter.headers.get("crmflow-original-topic") or kafka.topics.inbound
        # The original headers go back with key and value; the attempts so far travel along, so a second
        # failure counts 2.
        attempts = letter.headers.get(ATTEMPTS_HEADER, "1").encode()
        headers = [*letter.original_headers, (ATTEMPTS_HEADER, attempts)]
        futures.append(kafka.producer.send(target, key=letter.key, value=letter.value, headers=headers))
    kafka.producer.flush(timeout=30)
    if not all(f.succeeded() for f in futures):
        raise RuntimeError("Kafka did not acknowledge every redriven message; nothing was marked as redriven")
    # Mark as redriven up to the first letter skipped by --error in each
    # partition, so that skipped letters stay pending. (Letters redriven after
    # a skipped one may be sent again later; the intake drops duplicates by id.)
    # A truncated letter is done with too: it can never be sent back, so it must not hold the others up.
    consumer.commit(committable(_redriven_offsets(records, {(d.partition, d.offset) for d in matching})))
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
