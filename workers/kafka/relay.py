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
"""

from __future__ import annotations

import threading
import time

import structlog
from eventsourcing.persistence import PersistenceError, Tracking

from crmflow.aggregates.application import CrmApplication
from crmflow.aggregates.publication import encode, published_documents
from crmflow.workers.kafka.clients import KafkaClients
from crmflow.workers.metrics import EVENTS_HANDLED, RELAY_LAG
from crmflow.workers.shutdown import StopSignal

log = structlog.get_logger("crmflow.relay")
SLOW_WRITE_S = 0.05


class RelayDeliveryError(RuntimeError):
    """Kafka did not acknowledge every event of a batch; the position was not advanced."""


class Relay:
    """Publishes stored events to Kafka, in order, from a durably tracked position."""

    def __init__(
        self,
        app: CrmApplication,
        kafka: KafkaClients,
        *,
        name: str = "relay",
        batch_size: int = 2000,
        ack_timeout_s: float = 30.0,
        track_every_s: float = 0.1,
    ) -> None:
        self.app = app
        self.kafka = kafka
        self.name = name
        self.batch_size = batch_size
        self.ack_timeout_s = ack_timeout_s
        self.tracking = app.factory.tracking_recorder()
        # The position is written at most every track_every_s (by a PositionWriter
        # while ``run`` runs; called on its own, relay_once also writes when caught
        # up): each write takes the store's write lock, on SQLite the one lock every
        # command needs too. After a crash the relay publishes again what it sent
        # since the last write; consumers drop the duplicates by id.
        self.track_every_s = track_every_s
        self._tracked: int | None = None
        self._tracked_at = 0.0
        self._position: int | None = None
        self._writer: PositionWriter | None = None  # while ``run`` runs
        self.published = 0  # events acknowledged by Kafka since start (the demo waits on it)

    @property
    def position(self) -> int:
        """The id of the last notification Kafka acknowledged (0: none yet)."""
        if self._position is None:
            self._position = self._tracked = self.tracking.max_tracking_id(self.name) or 0
        return self._position

    def relay_once(self) -> int:
        """Publish the next batch; return how many notifications it covered (0: caught up)."""
        notifications = self.app.recorder.select_notifications(start=self.position + 1, limit=self.batch_size)
        if not notifications:
            self._position_moved(caught_up=True)
            RELAY_LAG.set(0)
            return 0
        producer = self.kafka.producer
        topic = self.kafka.topics.events
        futures = []
        for _, document in published_documents(self.app, notifications):
            key = (document.get("subject") or document["id"]).encode()
            futures.append(producer.send(topic, key=key, value=encode(document)))
        producer.flush(timeout=self.ack_timeout_s)
        failed = [f for f in futures if not f.succeeded()]
        if failed:
            reason = failed[0].exception if failed[0].is_done else "no acknowledgement in time"
            raise RelayDeliveryError(
                f"{len(failed)} of {len(futures)} events were not acknowledged by Kafka ({reason}); "
                f"position stays at {self.position}"
            )
        self._position = notifications[-1].id
        self._position_moved(caught_up=False)
        self.published += len(futures)
        EVENTS_HANDLED.labels(worker="relay").inc(len(futures))
        # A short batch means the relay caught up as of this read: no query needed to know the lag.
        RELAY_LAG.set(self.lag() if len(notifications) == self.batch_size else 0)
        return len(notifications)

    def _position_moved(self, *, caught_up: bool) -> None:
        if self._writer is not None:
            self._writer.moved.set()
        elif caught_up or time.monotonic() - self._tracked_at >= self.track_every_s:
            self.save_position()

    def save_position(self) -> None:
        """Store the position Kafka acknowledged, if it moved since it was last stored."""
        position = self._position
        if position is not None and position != self._tracked:
            started = time.monotonic()
            self.tracking.insert_tracking(Tracking(self.name, position))
            self._tracked, self._tracked_at = position, time.monotonic()
            if self._tracked_at - started > SLOW_WRITE_S:
                # On SQLite: the store's write lock was busy (commands, process workers).
                log.warning("relay_position_write_slow", seconds=round(self._tracked_at - started, 3))

    def run(self, stop: StopSignal, *, idle_wait_s: float = 0.01, until_caught_up: bool = False) -> int:
        """Relay until stopped (or, with ``until_caught_up``, until nothing is left); return the count."""
        log.info("relay_started", position=self.position, topic=self.kafka.topics.events)
        total = 0
        self._writer = PositionWriter(self)
        try:
            total = self._relay(stop, idle_wait_s, until_caught_up)
        finally:
            self._writer.stop()
            self._writer = None
            self.save_position()  # what Kafka acknowledged, even when giving up on a failed delivery
        log.info("relay_stopped", position=self.position, published=total)
        return total

    def _relay(self, stop: StopSignal, idle_wait_s: float, until_caught_up: bool) -> int:
        total = 0
        failures = 0
        while not stop.is_set():
            try:
                published = self.relay_once()
                failures = 0
            except RelayDeliveryError as error:
                # Nothing was acknowledged for sure: the same batch is sent again.
                failures += 1
                log.warning("relay_delivery_failed", error=str(error), attempt=failures)
                if failures > self.kafka.settings.retries:
                    raise
                stop.wait(self.kafka.settings.retry_backoff_s * 2**failures)
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
