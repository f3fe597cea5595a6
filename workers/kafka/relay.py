"""The relay: publishes the event store's notification log to ``<prefix>.events``.

The store is the outbox. The relay reads notifications in order from its
tracked position, publishes each as a structured CloudEvent (key = subject, so
one aggregate's events stay in one partition, in order), waits until Kafka has
acknowledged them all, and only then advances its position, durably, in the
store's tracking table (from a thread of its own, at most every 100 ms, so
that waiting for the store's write lock never holds up publishing). A crash
at any moment therefore loses nothing: at worst it re-publishes events whose
acknowledgement it had not yet recorded, and they keep their ``id``, so
consumers drop the duplicates.

It is the last line of defence, so one event never stops it:

- an event that cannot be encoded, is larger than it may send, or that Kafka
  refuses for good is *parked* (crmflow.workers.kafka.parking) with the
  reason, and so is every later event of that aggregate, waiting for it;
  every other aggregate flows on. ``crmflow relay parked retry`` publishes
  them later, in order;
- a broker that lost its data (crmflow.workers.kafka.relay_marks) makes it
  publish the store again from the start;
- a broker outage makes it retry with backoff, logging each attempt, for as
  long as it takes (``run(until_caught_up=True)`` gives up after
  ``settings.retries``, for the demo's and the tests' one-shot runs).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import orjson
import structlog
from eventsourcing.persistence import PersistenceError, Tracking

from crmflow.aggregates.application import CrmApplication
from crmflow.aggregates.limits import MAX_EVENT_BYTES
from crmflow.aggregates.publication import STRUCTURED_HEADERS, encode, is_published, wire_document
from crmflow.workers.kafka.clients import (
    KafkaClients,
    KafkaError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    TopicPartition,
)
from crmflow.workers.kafka.parked_retry import RetryOutcome, retry_parked
from crmflow.workers.kafka.parking import HeldAggregates, ParkedEvent, ParkedEvents, StoreSql, now_utc
from crmflow.workers.kafka.relay_marks import RelayMarks, lost_data_reason, tracking_name
from crmflow.workers.kafka.relay_producer import (
    RECORD_REFUSALS,
    Outgoing,
    Refused,
    RelayDeliveryError,
    RelayProducer,
)
from crmflow.workers.metrics import (
    EVENTS_HANDLED,
    RELAY_BROKER_DATA_LOST,
    RELAY_DELIVERY_FAILURES,
    RELAY_EVENTS_PARKED,
    RELAY_LAG,
    RELAY_PARKED_NOW,
)
from crmflow.workers.shutdown import StopSignal

log = structlog.get_logger("crmflow.relay")
SLOW_WRITE_S = 0.05
# The marks only need to be recent, not exact (see relay_marks): written less often than the position, as
# every write takes the store's write lock on SQLite.
MARKS_EVERY_S = 1.0


class Relay:
    """Publishes stored events to Kafka, in order per aggregate, from a durably tracked position."""

    def __init__(
        self,
        app: CrmApplication,
        kafka: KafkaClients,
        *,
        name: str = "relay",
        batch_size: int = 2000,
        ack_timeout_s: float = 30.0,
        track_every_s: float = 0.1,
        max_event_bytes: int = MAX_EVENT_BYTES,
        check_every_s: float = 30.0,
        max_backoff_s: float = 30.0,
    ) -> None:
        self.app = app
        self.kafka = kafka
        self.name = name
        self.topic = kafka.topics.events
        self.batch_size = batch_size
        self.ack_timeout_s = ack_timeout_s
        self.tracking = app.factory.tracking_recorder()
        # The position is written at most every track_every_s (by a PositionWriter
        # while ``run`` runs; called on its own, relay_once also writes when caught
        # up): each write takes the store's write lock, on SQLite the one lock every
        # command needs too. After a crash the relay publishes again what it sent
        # since the last write; consumers drop the duplicates by id.
        self.track_every_s = track_every_s
        # Above MAX_EVENT_BYTES only for `relay parked retry --max-bytes`: the producer is then made to match.
        self.producer = RelayProducer(kafka, name, max_event_bytes, ack_timeout_s)
        self.check_every_s = check_every_s
        self.max_backoff_s = max_backoff_s
        sql = StoreSql(app)
        self.parked = ParkedEvents(app, name, sql)
        self.marks = RelayMarks(sql, name)
        self._epoch = self.marks.epoch()
        self.tracking_name = tracking_name(name, self._epoch)
        # Per partition of the events topic: the mark (the first offset Kafka acknowledged in the relay's
        # latest batch there; brokers differ in how far past it they report a partition's end, but none
        # that kept its data reports less), what of it is stored, and the highest offset acknowledged.
        self._acked = self.marks.offsets(self.topic)
        self._acked_stored = dict(self._acked)
        self._acked_stored_at = 0.0
        self._highest = dict(self._acked)
        self._lock = threading.Lock()  # the position writer against a switch to a new epoch
        self._tracked: int | None = None
        self._tracked_at = 0.0
        self._position: int | None = None
        self._writer: PositionWriter | None = None  # while ``run`` runs
        self._probe: Any = None
        self.published = 0  # events acknowledged by Kafka since start (the demo waits on it)
        self.parked_count = 0  # events parked since start

    @property
    def position(self) -> int:
        """The id of the last notification the relay is done with (acknowledged, parked or not published)."""
        if self._position is None:
            self._position = self._tracked = self.tracking.max_tracking_id(self.tracking_name) or 0
        return self._position

    # Publishing.

    def relay_once(self) -> int:
        """Publish the next batch; return how many notifications it covered (0: caught up)."""
        notifications = self.app.recorder.select_notifications(start=self.position + 1, limit=self.batch_size)
        if not notifications:
            self._position_moved(caught_up=True)
            RELAY_LAG.set(0)
            return 0
        # Read afresh each batch: `relay parked retry` may have published some meanwhile.
        parked = self.parked.all()
        held = HeldAggregates(parked)
        RELAY_PARKED_NOW.set(len(parked))
        producer = self.producer.get()
        limit = self.producer.size_limit()
        sent: list[tuple[Outgoing, Any]] = []
        for notification in notifications:
            if notification.id in held.ids:
                continue  # parked before: the store is being published again from the start
            outgoing = self.prepare(notification, held, limit)
            if isinstance(outgoing, Refused):
                self._park(outgoing, held)
                continue
            if outgoing is None:
                continue  # not a published event type
            try:
                future = producer.send(self.topic, key=outgoing.key.encode(), value=outgoing.value,
                                       headers=STRUCTURED_HEADERS)  # fmt: skip
            except MessageSizeTooLargeError as error:  # the producer's own max_request_size
                self._park(
                    self._refused(outgoing, "refused", f"the Kafka producer refused it: {error}"), held
                )
                continue
            except KafkaTimeoutError as error:  # no metadata for the topic: the broker is away
                raise RelayDeliveryError(f"Kafka did not answer ({error}); position stays at {self.position}")
            sent.append((outgoing, future))
        self.producer.flush(producer, [future for _, future in sent])
        acked = self._settle(sent, held)
        if self._lost_in_acknowledgements(acked):
            return len(notifications)
        self._position = notifications[-1].id
        self._position_moved(caught_up=False)
        self.published += len(acked)
        EVENTS_HANDLED.labels(worker="relay").inc(len(acked))
        # A short batch means the relay caught up as of this read: no query needed to know the lag.
        RELAY_LAG.set(self.lag() if len(notifications) == self.batch_size else 0)
        return len(notifications)

    def prepare(
        self, notification: Any, held: HeldAggregates | None, limit: int
    ) -> Outgoing | Refused | None:
        """The key and bytes to send, a reason not to, or None for an event type that is not published."""
        try:
            if not is_published(notification.topic):
                return None
            document = wire_document(self.app, notification)
            key = str(document.get("subject") or document["id"])
        except Exception as error:  # noqa: BLE001 - whatever the stored bytes hold, the relay moves on
            reason = f"cannot be rendered as a CloudEvent: {type(error).__name__}: {error}"
            aggregate = str(notification.originator_id)
            return Refused(notification, aggregate, _stored_tenant(notification), "unreadable", reason)
        tenant = document.get("tenantid")
        if held is not None and held.first:  # the aggregate id is worked out only while something is parked
            blocker = held.waits_for(key, str(notification.originator_id))
            if blocker is not None:
                return Refused(
                    notification, key, tenant, "waiting", f"waits for parked notification {blocker}"
                )
        try:
            value = encode(document)
        except (TypeError, ValueError) as error:  # orjson: nesting over 255, integers outside 64 bits
            return Refused(notification, key, tenant, "unencodable", f"cannot be encoded as JSON: {error}")
        size = len(value) + len(key)
        if size > limit:
            reason = f"the event is {size:,} bytes on the wire, over the relay's limit of {limit:,} bytes"
            return Refused(notification, key, tenant, "too_large", reason)
        return Outgoing(notification, key, value, tenant)

    def _settle(self, sent: list[tuple[Outgoing, Any]], held: HeldAggregates) -> list[Any]:
        """The acknowledgements of a sent batch; records Kafka refused for good are sent alone once more, and
        parked if refused again (a refused batch may have held others that were fine)."""
        acked, refused, failed = [], [], []
        for outgoing, future in sent:
            if future.is_done and future.succeeded():
                acked.append(future.value)
            elif future.is_done and isinstance(future.exception, RECORD_REFUSALS):
                refused.append(outgoing)
            else:
                failed.append(future)
        if failed:
            first = failed[0]
            reason = first.exception if first.is_done else "no acknowledgement in time"
            raise RelayDeliveryError(
                f"{len(failed)} of {len(sent)} events were not acknowledged by Kafka ({reason}); "
                f"position stays at {self.position}"
            )
        for outgoing in refused:
            self.producer.reset()  # the refusal may have spoilt the producer for the partition's other records
            metadata, reason = self.producer.send_alone(self.topic, outgoing.key, outgoing.value,
                                                        outgoing.notification.id)  # fmt: skip
            if reason is None:
                acked.append(metadata)
            else:
                self._park(self._refused(outgoing, "refused", reason), held)
        return acked

    def _refused(self, outgoing: Outgoing, kind: str, reason: str) -> Refused:
        return Refused(outgoing.notification, outgoing.key, outgoing.tenant, kind, reason)

    def _park(self, refused: Refused, held: HeldAggregates) -> None:
        n = refused.notification
        waits_for = held.waits_for(refused.key, str(n.originator_id)) if refused.kind == "waiting" else None
        event = ParkedEvent(n.id, str(n.originator_id), refused.key, refused.tenant, n.topic, refused.reason,
                            waits_for, now_utc())  # fmt: skip
        self.parked.park(event)
        held.hold(event)
        self.parked_count += 1
        RELAY_EVENTS_PARKED.labels(reason=refused.kind).inc()
        RELAY_PARKED_NOW.inc()
        log.error("relay_event_parked", notification=n.id, aggregate=event.aggregate_id, key=event.key,
                  tenant=event.tenant, topic=n.topic, cause=refused.kind, reason=refused.reason,
                  waits_for=waits_for)  # fmt: skip

    # The broker's data.

    def _lost_in_acknowledgements(self, acked: list[Any]) -> bool:
        """Record the offsets acknowledged; one at or below a mark means the broker lost its data."""
        lowest: dict[int, int] = {}
        highest: dict[int, int] = {}
        for metadata in acked:
            lowest[metadata.partition] = min(metadata.offset, lowest.get(metadata.partition, metadata.offset))
            highest[metadata.partition] = max(metadata.offset, highest.get(metadata.partition, -1))
        for partition, offset in sorted(lowest.items()):
            mark = self._highest.get(partition)
            if mark is not None and offset <= mark:
                self._start_epoch(f"Kafka acknowledged offset {offset} on partition {partition}, "
                                  f"where it had acknowledged offset {mark} before")  # fmt: skip
                return True
        self._acked.update(lowest)
        self._highest.update(highest)
        return False

    def end_offsets(self) -> dict[int, int] | None:
        """The events topic's end offset per partition, None if it does not exist. Raises KafkaError."""
        if self._probe is None:
            self._probe = self.kafka.consumer(group_id=None)
        self._probe.topics()  # a fresh metadata request
        partitions = self._probe.partitions_for_topic(self.topic)
        if not partitions:
            return None
        ends = self._probe.end_offsets([TopicPartition(self.topic, p) for p in sorted(partitions)])
        return {tp.partition: int(offset) for tp, offset in ends.items()}

    def check_broker(self, wait: Callable[[float], Any] = time.sleep, confirmations: int = 3) -> bool:
        """Compare the topic with the marks; if the broker lost its data, publish from the start. Raises
        KafkaError while the broker does not answer. A broker's end offsets may briefly lag what it
        acknowledged, so a loss is declared only when a few looks a moment apart all find it."""
        reason = None
        for look in range(confirmations):
            if look:
                wait(0.2 * look)
            reason = lost_data_reason(self.end_offsets(), self._acked, position=self.position,
                                      never_marked=self._epoch is None)  # fmt: skip
            if reason is None:
                return False
        assert reason is not None
        self._start_epoch(reason)
        return True

    def _start_epoch(self, reason: str) -> None:
        with self._lock:
            epoch = self.marks.start_epoch(self.topic, reason)
            log.error("relay_broker_lost_data", reason=reason, position=self.position, epoch=epoch,
                      detail="publishing the store again from the start")  # fmt: skip
            self._epoch, self.tracking_name = epoch, tracking_name(self.name, epoch)
            self._position = self._tracked = self.tracking.max_tracking_id(self.tracking_name) or 0
            self._acked, self._acked_stored, self._highest = {}, {}, {}
        RELAY_BROKER_DATA_LOST.inc()
        self.producer.reset()
        self.kafka.ensure_topics()  # a restarted memory broker has none

    # The position.

    def _position_moved(self, *, caught_up: bool) -> None:
        if self._writer is not None:
            self._writer.moved.set()
        elif caught_up or time.monotonic() - self._tracked_at >= self.track_every_s:
            self.save_position(with_marks=caught_up)

    def save_position(self, *, with_marks: bool = False) -> None:
        """Store the position Kafka acknowledged, if it moved since it was last stored; the marks too, at most
        every MARKS_EVERY_S (or now, ``with_marks``)."""
        with self._lock:
            position = self._position
            if position is not None and position != self._tracked:
                started = time.monotonic()
                self.tracking.insert_tracking(Tracking(self.tracking_name, position))
                self._tracked, self._tracked_at = position, time.monotonic()
                if self._tracked_at - started > SLOW_WRITE_S:
                    # On SQLite: the store's write lock was busy (commands, process workers).
                    log.warning("relay_position_write_slow", seconds=round(self._tracked_at - started, 3))
            changed = {p: o for p, o in self._acked.items() if self._acked_stored.get(p) != o}
            if changed and (with_marks or time.monotonic() - self._acked_stored_at >= MARKS_EVERY_S):
                self.marks.save_offsets(self.topic, changed)
                self._acked_stored.update(changed)
                self._acked_stored_at = time.monotonic()

    # Running.

    def run(self, stop: StopSignal, *, idle_wait_s: float = 0.01, until_caught_up: bool = False) -> int:
        """Relay until stopped (or, with ``until_caught_up``, until nothing is left); return the count."""
        log.info("relay_started", position=self.position, topic=self.topic, epoch=self._epoch)
        total = 0
        self._writer = PositionWriter(self)
        try:
            total = self._relay(stop, idle_wait_s, until_caught_up)
        finally:
            self._writer.stop()
            self._writer = None
            # What Kafka acknowledged, even when giving up on a failed delivery.
            self.save_position(with_marks=True)
            self.producer.close_own()
        log.info("relay_stopped", position=self.position, published=total)
        return total

    def _relay(self, stop: StopSignal, idle_wait_s: float, until_caught_up: bool) -> int:
        total = 0
        failures = 0
        check_due = 0.0  # at start: the broker is checked before anything is published
        while not stop.is_set():
            try:
                if time.monotonic() >= check_due:
                    self.check_broker(wait=stop.wait)
                    check_due = time.monotonic() + self.check_every_s
                published = self.relay_once()
                failures = 0
            except (RelayDeliveryError, KafkaError, PersistenceError) as error:
                failures += 1
                delay = min(self.max_backoff_s, self.kafka.settings.retry_backoff_s * 2 ** (failures - 1))
                store = isinstance(error, PersistenceError)
                RELAY_DELIVERY_FAILURES.labels(cause="store" if store else "kafka").inc()
                log.warning("relay_store_unavailable" if store else "relay_delivery_failed", error=str(error),
                            attempt=failures, retry_in_s=delay, position=self.position)  # fmt: skip
                if until_caught_up and failures > self.kafka.settings.retries:
                    raise
                if not store:
                    self.producer.reset()
                    check_due = 0.0  # once the broker answers again: did it come back empty?
                stop.wait(delay)
                continue
            total += published
            if published:
                log.debug("relay_published", count=published, position=self.position)
            elif until_caught_up:
                break
            else:
                stop.wait(idle_wait_s)
        return total

    def lag(self) -> int:
        """Notifications stored but not yet acknowledged by Kafka."""
        return max(0, (self.app.recorder.max_notification_id() or 0) - self.position)

    def retry_parked(self, notification: int | None = None) -> RetryOutcome:
        """Publish parked events again (crmflow.workers.kafka.parked_retry)."""
        return retry_parked(self, notification)


def _stored_tenant(notification: Any) -> str | None:
    """The tenant of a stored event the relay cannot render, if its stored JSON says."""
    try:
        tenant = orjson.loads(notification.state).get("tenant_id")
    except Exception:  # noqa: BLE001 - compressed, encrypted or unreadable: the table shows none
        return None
    return tenant if isinstance(tenant, str) else None


class PositionWriter:
    """Stores the relay's acknowledged position from a thread of its own while the relay runs.

    On SQLite the write waits for the store's one write lock, under load for
    long enough that the relay would publish nothing meanwhile (measured by
    benchmarks/e2e.py, see benchmarks/README.md). From this thread the relay
    keeps publishing; what is written is always a position Kafka acknowledged,
    so a crash still loses nothing.
    """

    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        self.moved = threading.Event()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._write, name=f"{relay.name}-position", daemon=True)
        self.thread.start()

    def _write(self) -> None:
        while not self.done.is_set():
            self.moved.wait()
            self.moved.clear()
            try:
                self.relay.save_position()
            except PersistenceError as error:  # the store is unreachable: keep relaying, try again later
                log.warning("relay_position_write_failed", error=str(error))
            self.done.wait(self.relay.track_every_s)

    def stop(self) -> None:
        self.done.set()
        self.moved.set()
        self.thread.join()
