"""The intake: accepts other services' CloudEvents from ``<prefix>.inbound``.

Per polled batch: check every message (workers/inbound_checks.py); store the
accepted ones durably in the event store (duplicates by tenant/source/id are
dropped there); send the refused ones to ``<prefix>.deadletter`` with headers
that say why and where they came from; wait for Kafka's acknowledgement; and
only then commit the consumer offsets. A crash before the commit means the
batch is read again: stored events are found as duplicates, and dead letters
may repeat (their headers name the original offset, so they are recognisable).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import structlog
from eventsourcing.persistence import InterfaceError, OperationalError

from crmflow.aggregates.application import CrmApplication
from crmflow.workers.inbound_checks import InboundPolicy, Rejected, check_inbound
from crmflow.workers.kafka.clients import GroupMember, KafkaClients, KafkaError
from crmflow.workers.kafka.intake_rate_limit import unlimited
from crmflow.workers.metrics import DEAD_LETTERS, EVENTS_HANDLED
from crmflow.workers.shutdown import StopSignal

log = structlog.get_logger("crmflow.intake")

GROUP_SUFFIX = "intake"
# Failures that say nothing about the message: retry the batch, never dead-letter it.
TRANSIENT: tuple[type[Exception], ...] = (OperationalError, InterfaceError, KafkaError)


class DeadLetterDeliveryError(RuntimeError):
    """Kafka did not acknowledge a dead letter; the batch is not committed."""
ATTEMPTS_HEADER = "crmflow-attempts"


def header(record: Any, name: str) -> str | None:
    for key, value in record.headers or ():
        if key == name:
            return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return None


def dead_letter_headers(record: Any, rejected: Rejected, error_class: str) -> list[tuple[str, bytes]]:
    attempts = int(header(record, ATTEMPTS_HEADER) or 0) + 1
    return [
        ("crmflow-reason", rejected.reason.encode()),
        ("crmflow-error", rejected.code.encode()),
        ("crmflow-error-class", error_class.encode()),
        ("crmflow-original-topic", record.topic.encode()),
        ("crmflow-original-partition", str(record.partition).encode()),
        ("crmflow-original-offset", str(record.offset).encode()),
        (ATTEMPTS_HEADER, str(attempts).encode()),
        ("crmflow-failed-at", datetime.now(timezone.utc).isoformat().encode()),
    ]


class Intake(GroupMember):
    """Consumes the inbound topic as the consumer group ``<prefix>.intake``."""

    group_kind = GROUP_SUFFIX

    def __init__(self, app: CrmApplication, kafka: KafkaClients, policy: InboundPolicy,
                 rate_limit: Callable[[str], None] = unlimited) -> None:  # fmt: skip
        self.app = app
        self.kafka = kafka
        self.policy = policy
        self.rate_limit = rate_limit  # charges a checked message's tenant; Rejected over its rate
        self.counts: Counter[str] = Counter()
        self.failures = 0
        self.handled = 0  # records stored or dead-lettered and committed since start

    def group_topic(self) -> str:
        return self.kafka.topics.inbound

    def handle(self, records: list[Any]) -> None:
        """Store or dead-letter every record of a batch; return when both are durable.

        Raises a transient error (database or Kafka unavailable) for the caller
        to retry the whole batch.
        """
        futures: list[Any] = []
        checked: list[tuple[Any, str, dict[str, Any]]] = []
        for record in records:
            try:
                tenant, document = check_inbound(record.value, self.policy)
                self.rate_limit(tenant)
            except Rejected as rejected:
                futures.append(self.dead_letter(record, rejected, "Rejected"))
            else:
                checked.append((record, tenant, document))
        if checked:
            try:
                self.store([(tenant, document) for _, tenant, document in checked])
            except TRANSIENT:
                raise
            except Exception:  # noqa: BLE001 - one poison message must not block the rest
                for record, tenant, document in checked:
                    try:
                        self.store([(tenant, document)])
                    except TRANSIENT:
                        raise
                    except Exception as error:  # noqa: BLE001 - dead-lettered with its class
                        rejected = Rejected("store_failed", f"checked but could not be stored: {error}")
                        futures.append(self.dead_letter(record, rejected, type(error).__name__))
        self.kafka.producer.flush(timeout=30)
        undelivered = [f for f in futures if not f.succeeded()]
        if undelivered:
            raise DeadLetterDeliveryError(f"{len(undelivered)} dead letters were not acknowledged by Kafka")

    def store(self, documents: list[tuple[str, dict[str, Any]]]) -> None:
        stored = self.app.accept_inbound(documents)
        self.counts["accepted"] += sum(stored)
        self.counts["duplicate"] += len(stored) - sum(stored)

    def dead_letter(self, record: Any, rejected: Rejected, error_class: str) -> Any:
        self.counts[rejected.code] += 1
        DEAD_LETTERS.labels(error=rejected.code).inc()
        log.warning("inbound_rejected", error=rejected.code, reason=rejected.reason, topic=record.topic,
                    partition=record.partition, offset=record.offset)  # fmt: skip
        return self.kafka.producer.send(
            self.kafka.topics.deadletter, key=record.key, value=record.value or b"",
            headers=dead_letter_headers(record, rejected, error_class),
        )  # fmt: skip

    def poll_once(self, stop: StopSignal | None = None, timeout_ms: int = 200) -> int:
        """Handle one polled batch and commit it; on a transient failure, rewind and retry later."""
        batches = self.consumer.poll(timeout_ms=timeout_ms)
        records = [r for batch in batches.values() for r in batch]
        if not records:
            return 0
        try:
            self.handle(records)
        except (*TRANSIENT, DeadLetterDeliveryError) as error:
            self.failures += 1
            log.warning("intake_batch_failed", error=repr(error), attempt=self.failures, records=len(records))
            # Nothing is committed: read the same records again after a pause.
            for partition, batch in batches.items():
                self.consumer.seek(partition, batch[0].offset)
            (stop or StopSignal()).wait(min(30.0, self.kafka.settings.retry_backoff_s * 2**self.failures))
            return 0
        self.failures = 0
        # Everything poll returned is now stored or dead-lettered.
        self.consumer.commit()
        self.handled += len(records)
        EVENTS_HANDLED.labels(worker="intake").inc(len(records))
        return len(records)

    def run(self, stop: StopSignal) -> Counter[str]:
        log.info("intake_started", topic=self.kafka.topics.inbound,
                 tenants=sorted(self.policy.tenants) if self.policy.tenants else "any")  # fmt: skip
        try:
            while not stop.is_set():
                self.poll_once(stop)
        finally:
            self.close()
        log.info("intake_stopped", **self.counts)
        return self.counts
