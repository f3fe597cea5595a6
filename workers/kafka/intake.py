"""The intake: accepts other services' CloudEvents from ``<prefix>.inbound``.

Per polled batch: check every message (workers/inbound_checks.py); store the
accepted ones durably in the event store (duplicates by tenant/source/id are
dropped there); send the refused ones to ``<prefix>.deadletter`` with headers
that say why and where they came from (workers/kafka/deadletters.py); wait for
Kafka's acknowledgement; and only then commit the consumer offsets. A crash
before the commit means the batch is read again: stored events are found as
duplicates, and dead letters may repeat (their headers name the original
offset, so they are recognisable).

No record stops the intake, whatever its bytes: every record is stored or
dead-lettered. Failures that are not the record's fault (the database, Kafka,
a commit refused after a rebalance) rewind the batch and retry it with
backoff, for as long as they last. A dead letter Kafka refuses for good
(non-retriable, e.g. too large for the topic) is retried with the batch
``DEAD_LETTER_ATTEMPTS`` times, then logged as ``dead_letter_lost`` (with the
original's position, size and SHA-256) and passed over, so that one message
cannot stall its partition for ever.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from eventsourcing.persistence import InterfaceError, OperationalError

from crmflow.aggregates.application import CrmApplication
from crmflow.workers.inbound_checks import InboundPolicy, Rejected, message_bytes_limit
from crmflow.workers.inbound_references import check_references, needs_references
from crmflow.workers.kafka.binding import check_record
from crmflow.workers.kafka.clients import GroupMember, KafkaClients, KafkaError
from crmflow.workers.kafka.deadletters import (
    ATTEMPTS_HEADER,
    ORIGINAL_BYTES_HEADER,
    ORIGINAL_SHA256_HEADER,
    dead_letter_for,
)
from crmflow.workers.kafka.intake_rate_limit import unlimited
from crmflow.workers.metrics import DEAD_LETTERS, EVENTS_HANDLED
from crmflow.workers.shutdown import StopSignal

log = structlog.get_logger("crmflow.intake")

GROUP_SUFFIX = "intake"
# Failures that say nothing about the message: retry the batch, never dead-letter it.
TRANSIENT: tuple[type[Exception], ...] = (OperationalError, InterfaceError, KafkaError)


DEAD_LETTER_ATTEMPTS = 5  # batches in a row a dead letter may be refused for good before it is passed over
MAX_BACKOFF_S = 30.0
__all__ = ["ATTEMPTS_HEADER", "DEAD_LETTER_ATTEMPTS", "DeadLetterDeliveryError", "Intake"]


class DeadLetterDeliveryError(RuntimeError):
    """Kafka did not acknowledge a dead letter; the batch is not committed."""


@dataclass
class Delivery:
    """One dead letter on its way: the record it is for, and the send's future (or the error send raised)."""

    record: Any
    headers: list[tuple[str, bytes]]
    future: Any = None
    error: Exception | None = None

    def failure(self) -> Exception | None:
        if self.error is not None:
            return self.error
        if self.future is not None and not self.future.succeeded():
            return getattr(self.future, "exception", None) or DeadLetterDeliveryError("not acknowledged")
        return None


def _retriable(error: Exception) -> bool:
    """Kafka's own verdict: a timeout or a moving leader may pass, a record too large never will."""
    return bool(getattr(error, "retriable", True)) and not isinstance(error, (TypeError, ValueError))


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
        self.refused_for_good = 0  # batches in a row whose dead letters Kafka refused non-retriably
        self.handled = 0  # records stored or dead-lettered and committed since start

    def group_topic(self) -> str:
        return self.kafka.topics.inbound

    def handle(self, records: list[Any]) -> None:
        """Store or dead-letter every record of a batch; return when both are durable.

        Raises a transient error (database or Kafka unavailable) for the caller
        to retry the whole batch.
        """
        deliveries: list[Delivery] = []
        checked: list[tuple[Any, str, dict[str, Any]]] = []
        for record in records:
            try:
                tenant, document = check_record(record.value, record.headers, record.key, self.policy)
                self.rate_limit(tenant)
            except Rejected as rejected:
                deliveries.append(self.dead_letter(record, rejected, "Rejected"))
            except Exception as error:  # noqa: BLE001 - a check that breaks on a record must not stop the intake
                deliveries.append(self._check_failed(record, error))
            else:
                checked.append((record, tenant, document))
        checked = self._referenced(checked, deliveries)
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
                        deliveries.append(self.dead_letter(record, rejected, type(error).__name__))
        if deliveries:
            self.kafka.producer.flush(timeout=30)
            self._settle(deliveries)

    def _referenced(self, checked: list[tuple[Any, str, dict[str, Any]]],
                    deliveries: list[Delivery]) -> list[tuple[Any, str, dict[str, Any]]]:  # fmt: skip
        """The checked records whose named records are their tenant's (workers/inbound_references.py); the others
        dead-lettered. Those checks read the store: a database outage is raised, to retry the batch."""
        kept = []
        for record, tenant, document in checked:
            if not needs_references(document):
                kept.append((record, tenant, document))
                continue
            try:
                check_references(self.app, tenant, document)
            except Rejected as rejected:
                deliveries.append(self.dead_letter(record, rejected, "Rejected"))
            except TRANSIENT:
                raise
            except Exception as error:  # noqa: BLE001 - a check that breaks on a record must not stop the intake
                deliveries.append(self._check_failed(record, error))
            else:
                kept.append((record, tenant, document))
        return kept

    def _check_failed(self, record: Any, error: Exception) -> Delivery:
        """Dead-letter a record a check broke on (a bug, not a bad message), with the error as the reason."""
        log.exception("inbound_check_failed", topic=record.topic, partition=record.partition, offset=record.offset)
        rejected = Rejected("check_failed", f"the checks failed on this message: {error!r}")
        return self.dead_letter(record, rejected, type(error).__name__)

    def _settle(self, deliveries: list[Delivery]) -> None:
        """Return if every dead letter is acknowledged, or refused for good too often; else raise to retry."""
        failed = [(d, error) for d in deliveries if (error := d.failure()) is not None]
        if not failed:
            self.refused_for_good = 0
            return
        if any(_retriable(error) for _, error in failed):
            raise DeadLetterDeliveryError(
                f"{len(failed)} dead letters were not acknowledged by Kafka: {failed[0][1]!r}"
            )
        self.refused_for_good += 1
        if self.refused_for_good < DEAD_LETTER_ATTEMPTS:
            raise DeadLetterDeliveryError(
                f"Kafka refused {len(failed)} dead letters (attempt {self.refused_for_good} of "
                f"{DEAD_LETTER_ATTEMPTS}): {failed[0][1]!r}"
            )
        for delivery, error in failed:
            headers = {k: v.decode("utf-8", "replace") for k, v in delivery.headers}
            record = delivery.record
            log.error("dead_letter_lost", alert=True, error=repr(error), attempts=self.refused_for_good,
                      topic=record.topic, partition=record.partition, offset=record.offset,
                      code=headers.get("crmflow-error"), original_bytes=headers.get(ORIGINAL_BYTES_HEADER),
                      original_sha256=headers.get(ORIGINAL_SHA256_HEADER))  # fmt: skip
        self.counts["dead_letter_lost"] += len(failed)
        self.refused_for_good = 0

    def store(self, documents: list[tuple[str, dict[str, Any]]]) -> None:
        stored = self.app.accept_inbound(documents)
        self.counts["accepted"] += sum(stored)
        self.counts["duplicate"] += len(stored) - sum(stored)

    def dead_letter(self, record: Any, rejected: Rejected, error_class: str) -> Delivery:
        self.counts[rejected.code] += 1
        DEAD_LETTERS.labels(error=rejected.code).inc()
        log.warning("inbound_rejected", error=rejected.code, reason=rejected.reason[:200], topic=record.topic,
                    partition=record.partition, offset=record.offset,
                    limit=rejected.limit.name if rejected.limit else None)  # fmt: skip
        letter = dead_letter_for(
            record, rejected, error_class, whole_up_to=message_bytes_limit(self.policy).value
        )
        delivery = Delivery(record, letter.headers)
        try:
            delivery.future = self.kafka.producer.send(
                self.kafka.topics.deadletter, key=letter.key, value=letter.value, headers=letter.headers
            )
        except KafkaError as error:  # raised at once for a record over the producer's request size, say
            delivery.error = error
        return delivery

    def poll_once(self, stop: StopSignal | None = None, timeout_ms: int = 200) -> int:
        """Handle one polled batch and commit it; on a transient failure, rewind and retry later."""
        try:
            batches = self.consumer.poll(timeout_ms=timeout_ms)
        except Exception as error:  # noqa: BLE001 - the broker away, or a record the client cannot parse
            self._pause("intake_poll_failed", error, 0, stop)
            return 0
        records = [r for batch in batches.values() for r in batch]
        if not records:
            return 0
        try:
            self.handle(records)
        except (*TRANSIENT, DeadLetterDeliveryError) as error:
            self._rewind(batches)  # nothing is committed: read the same records again after a pause
            self._pause("intake_batch_failed", error, len(records), stop)
            return 0
        # Everything poll returned is now stored or dead-lettered.
        try:
            self.consumer.commit()
        except KafkaError as error:
            # A rebalance (CommitFailedError) or a coordinator away. The batch is durable: whoever holds the
            # partitions next reads it again and drops what was stored. Here it is rewound and retried.
            self._rewind(batches)
            self._pause("intake_commit_failed", error, len(records), stop)
            return 0
        self.failures = 0
        self.handled += len(records)
        EVENTS_HANDLED.labels(worker="intake").inc(len(records))
        return len(records)

    def _rewind(self, batches: dict[Any, list[Any]]) -> None:
        for partition, batch in batches.items():
            try:
                self.consumer.seek(partition, batch[0].offset)
            except (KafkaError, ValueError, AssertionError) as error:  # no longer ours after a rebalance
                log.info("intake_rewind_skipped", partition=getattr(partition, "partition", partition),
                         reason=repr(error))  # fmt: skip

    def _pause(self, event: str, error: Exception, records: int, stop: StopSignal | None) -> None:
        self.failures += 1
        log.warning(event, error=repr(error), attempt=self.failures, records=records)
        # At most a third of max_poll_interval_ms: a member that pauses longer is put out of its group.
        ceiling = min(MAX_BACKOFF_S, self.kafka.settings.max_poll_interval_ms / 3000)
        (stop or StopSignal()).wait(min(ceiling, self.kafka.settings.retry_backoff_s * 2**self.failures))

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
