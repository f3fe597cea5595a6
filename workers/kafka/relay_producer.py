"""The relay's producer: which one it sends with, how large an event may be, and sending one record alone.

Kept apart from the relay's loop because kafka-python 3.0 needs handling
here that has nothing to do with what the relay publishes: its ``flush``
raises once it has split a batch the broker found too large, its idempotent
producer may refuse a partition's good records after one refusal, and its
``close`` raises before it stops its sender thread.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import structlog

from crmflow.aggregates.limits import MAX_EVENT_BYTES
from crmflow.aggregates.publication import STRUCTURED_HEADERS
from crmflow.workers.kafka.clients import (
    CorruptRecordError,
    InvalidRecordError,
    KafkaClients,
    KafkaError,
    KafkaProducer,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    producer_config,
)

log = structlog.get_logger("crmflow.relay")
# Errors Kafka gives for one record that no retry of the same bytes can cure.
RECORD_REFUSALS = (MessageSizeTooLargeError, RecordListTooLargeError, InvalidRecordError, CorruptRecordError)
# Room for the record and batch headers kafka-python adds to key and value when it checks max_request_size.
RECORD_OVERHEAD_BYTES = 1024


class RelayDeliveryError(RuntimeError):
    """Kafka did not acknowledge every event of a batch; the position was not advanced."""


@dataclass(slots=True)
class Outgoing:
    """A notification ready to send: its Kafka key and bytes."""

    notification: Any
    key: str
    value: bytes
    tenant: str | None


@dataclass(frozen=True)
class Refused:
    """A notification the relay will not send, and why (``kind`` labels the metric)."""

    notification: Any
    key: str
    tenant: str | None
    kind: str
    reason: str


class RelayProducer:
    """The clients' producer, or (for events above MAX_EVENT_BYTES, `relay parked retry --max-bytes`) one of
    its own with a matching max_request_size."""

    def __init__(self, kafka: KafkaClients, name: str, max_event_bytes: int, ack_timeout_s: float) -> None:
        self.kafka = kafka
        self.name = name
        self.max_event_bytes = max_event_bytes
        self.ack_timeout_s = ack_timeout_s
        self._own: KafkaProducer | None = None

    def get(self) -> KafkaProducer:
        if self.max_event_bytes <= MAX_EVENT_BYTES:
            return self.kafka.producer
        if self._own is None:
            s = self.kafka.settings
            options = producer_config(s, client_id=f"{s.client_id}-{self.name}")
            options["max_request_size"] = self.max_event_bytes + RECORD_OVERHEAD_BYTES
            self._own = KafkaProducer(**options)
        return self._own

    def size_limit(self) -> int:
        """The largest event the relay sends: crmflow's limit, and what the producer may send."""
        max_request = int(self.get().config["max_request_size"]) - RECORD_OVERHEAD_BYTES
        return min(self.max_event_bytes, max_request)

    def flush(self, producer: KafkaProducer, futures: list[Any]) -> None:
        """Wait until every future is done or the ack timeout has passed; the futures say how each went."""
        deadline = time.monotonic() + self.ack_timeout_s
        try:
            producer.flush(timeout=self.ack_timeout_s)
            return
        except KafkaTimeoutError:
            return
        except KafkaError:
            # kafka-python 3.0's flush raises "Future not done" once it has split a batch the broker found
            # too large (it sends the halves again): wait on the records themselves.
            pass
        for future in futures:
            try:
                future.get(timeout=max(0.0, deadline - time.monotonic()))
            except Exception:  # noqa: BLE001, S110 - a failed future is read by the caller
                pass

    def send_alone(self, topic: str, key: str, value: bytes, notification_id: int) -> tuple[Any, str | None]:
        """Send one record and wait: (its metadata, None) when acknowledged, (None, the reason) when Kafka
        refused it for good. Raises RelayDeliveryError when Kafka did not answer."""
        producer = self.get()
        try:
            future = producer.send(topic, key=key.encode(), value=value, headers=STRUCTURED_HEADERS)
        except MessageSizeTooLargeError as error:
            return None, f"the Kafka producer refused it: {error}"
        self.flush(producer, [future])
        if future.is_done and future.succeeded():
            return future.value, None
        if future.is_done and isinstance(future.exception, RECORD_REFUSALS):
            # After a refusal kafka-python's idempotent producer may refuse the rest of that partition's
            # records too (seen on Apache Kafka 4.1): the next record goes out from a new producer.
            self.reset()
            return None, f"Kafka refused it: {future.exception}"
        reason = future.exception if future.is_done else "no acknowledgement in time"
        raise RelayDeliveryError(f"Kafka did not acknowledge notification {notification_id} ({reason})")

    def reset(self) -> None:
        """Drop the producer after a failed delivery: a new one starts from fresh metadata and holds none of
        the records the failed batch left queued (the batch is sent again in full)."""
        producer, self._own = self._own, None
        if producer is None:
            producer = self.kafka.drop_producer()
        if producer is None:
            return
        try:
            producer.close(timeout=0)
        except KafkaTimeoutError:
            # kafka-python's close flushes first and raises on records still queued, before it stops its
            # sender thread: finish what it would have done.
            sender = getattr(producer, "_sender", None)
            if sender is not None:
                sender.force_close()
            producer._closed = True
        except Exception as error:  # noqa: BLE001 - a half-broken producer is dropped all the same
            log.debug("relay_producer_close_failed", error=repr(error))

    def close_own(self) -> None:
        """Close a producer of the relay's own (the clients close theirs)."""
        if self._own is not None:
            self._own.close(timeout=self.ack_timeout_s)
            self._own = None
