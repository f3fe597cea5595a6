"""The one wrapper around kafka-python that every worker uses.

- Clients are created lazily, on first use: constructing a worker makes no
  network call, so configuration errors surface where they can be reported.
- ``with KafkaClients(...) as kafka:`` flushes the producer and closes
  everything on exit.
- Calls that talk to the cluster go through ``retrying``: bounded attempts with
  exponential backoff, each failure logged with its key/values.
- Consumers never auto-commit: a worker commits an offset only after the work
  it covers is durable (stored, or dead-lettered and acknowledged).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import CommitFailedError, KafkaError, RebalanceInProgressError, TopicAlreadyExistsError
from pydantic import BaseModel, Field

log = structlog.get_logger("crmflow.kafka")
T = TypeVar("T")


class KafkaSettings(BaseModel):
    """How crmflow talks to Kafka; the defaults suit a local single broker."""

    bootstrap_servers: str = "127.0.0.1:9092"
    topic_prefix: str = Field("crmflow", pattern=r"^[A-Za-z0-9._-]+$")
    partitions: int = Field(6, ge=1, le=1000)
    replication_factor: int = Field(1, ge=1)
    client_id: str = "crmflow"
    request_timeout_ms: int = 30_000
    # Kafka's defaults (45 s session, 5 min poll interval) make a restarted
    # worker wait long before its partitions move; these suit workers whose
    # poll loop never blocks for long.
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 1_000
    max_poll_interval_ms: int = 10_000
    max_poll_records: int = 500
    # How long the broker may hold a fetch when no data is there. Apache Kafka
    # answers as soon as data arrives, but some brokers (the local Tansu one)
    # hold every fetch for the full wait: it bounds the latency of every worker.
    fetch_max_wait_ms: int = 20
    retries: int = Field(5, ge=0)
    retry_backoff_s: float = 0.2
    idempotent_producer: bool = True


@dataclass(frozen=True)
class Topics:
    """crmflow's topics, named from the configured prefix."""

    prefix: str

    @property
    def events(self) -> str:
        return f"{self.prefix}.events"

    @property
    def inbound(self) -> str:
        return f"{self.prefix}.inbound"

    @property
    def deadletter(self) -> str:
        return f"{self.prefix}.deadletter"

    def all(self) -> list[str]:
        return [self.events, self.inbound, self.deadletter]


def retrying(what: str, call: Callable[[], T], *, attempts: int, backoff_s: float, **context: Any) -> T:
    """Run ``call``; on a Kafka error wait and try again, at most ``attempts`` more times."""
    for attempt in range(attempts + 1):
        try:
            return call()
        except KafkaError as error:
            if attempt == attempts or not getattr(error, "retriable", True):
                log.error(f"{what}_failed", attempt=attempt + 1, error=repr(error), **context)
                raise
            delay = backoff_s * 2**attempt
            log.warning(f"{what}_retrying", attempt=attempt + 1, delay_s=delay, error=repr(error), **context)
            time.sleep(delay)
    raise AssertionError("unreachable")


class KafkaClients:
    """Lazily created producer, consumers and admin client for one worker."""

    def __init__(self, settings: KafkaSettings, *, name: str = "crmflow") -> None:
        self.settings = settings
        self.topics = Topics(settings.topic_prefix)
        self.name = name
        self._producer: KafkaProducer | None = None
        self._consumers: list[KafkaConsumer] = []

    def __enter__(self) -> KafkaClients:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def producer(self) -> KafkaProducer:
        if self._producer is None:
            s = self.settings
            options: dict[str, Any] = {}
            if s.idempotent_producer:
                # Broker-side de-duplication of retried batches, and ordered
                # delivery with up to 5 requests in flight.
                options = {"enable_idempotence": True, "max_in_flight_requests_per_connection": 5}
            self._producer = retrying(
                "producer_connect",
                lambda: KafkaProducer(
                    bootstrap_servers=s.bootstrap_servers, client_id=f"{s.client_id}-{self.name}",
                    acks="all", linger_ms=5, batch_size=256 * 1024, request_timeout_ms=s.request_timeout_ms,
                    retries=s.retries, **options,
                ),  # fmt: skip
                attempts=s.retries, backoff_s=s.retry_backoff_s, servers=s.bootstrap_servers,
            )  # fmt: skip
        return self._producer

    def consumer(self, *topics: str, group_id: str | None, **overrides: Any) -> KafkaConsumer:
        """A consumer that never auto-commits; in a group when ``group_id`` is given."""
        s = self.settings
        options: dict[str, Any] = {
            "bootstrap_servers": s.bootstrap_servers,
            "client_id": f"{s.client_id}-{self.name}",
            "group_id": group_id,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "session_timeout_ms": s.session_timeout_ms,
            "heartbeat_interval_ms": s.heartbeat_interval_ms,
            "max_poll_interval_ms": s.max_poll_interval_ms,
            "max_poll_records": s.max_poll_records,
            "fetch_max_wait_ms": s.fetch_max_wait_ms,
            "request_timeout_ms": max(s.request_timeout_ms, s.session_timeout_ms + 5_000),
            **overrides,
        }
        consumer = retrying(
            "consumer_connect", lambda: KafkaConsumer(*topics, **options),
            attempts=s.retries, backoff_s=s.retry_backoff_s, servers=s.bootstrap_servers,
        )  # fmt: skip
        self._consumers.append(consumer)
        return consumer

    def admin(self) -> KafkaAdminClient:
        s = self.settings
        return retrying(
            "admin_connect",
            lambda: KafkaAdminClient(bootstrap_servers=s.bootstrap_servers, client_id=f"{s.client_id}-admin"),
            attempts=s.retries, backoff_s=s.retry_backoff_s, servers=s.bootstrap_servers,
        )  # fmt: skip

    def ensure_topics(self) -> list[str]:
        """Create crmflow's topics if they are missing; return the ones created."""
        s = self.settings
        admin = self.admin()
        try:
            existing = set(admin.list_topics())
            missing = [t for t in self.topics.all() if t not in existing]
            if missing:
                try:
                    admin.create_topics(
                        [NewTopic(t, num_partitions=s.partitions, replication_factor=s.replication_factor)
                         for t in missing]
                    )  # fmt: skip
                except TopicAlreadyExistsError:
                    pass  # another worker created them first
                log.info("topics_created", topics=missing, partitions=s.partitions)
            return missing
        finally:
            admin.close()

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush()
            self._producer.close()
            self._producer = None
        for consumer in self._consumers:
            consumer.close(autocommit=False)  # closing twice is harmless
        self._consumers.clear()


class GroupMember:
    """A worker's membership of the consumer group ``<prefix>.<group_kind>``.

    The consumer joins lazily, on the first poll (constructing a worker makes
    no network call); ``close()`` leaves the group at once, so that its
    partitions move to the other members without waiting for a timeout.
    """

    kafka: KafkaClients
    group_kind: str
    _consumer: Any = None

    def group_topic(self) -> str:
        raise NotImplementedError

    def rebalance_listener(self) -> Any:
        """Called on every assignment and revocation; None: Kafka's committed offsets decide."""
        return None

    @property
    def consumer(self) -> Any:
        if self._consumer is None:
            consumer = self.kafka.consumer(group_id=f"{self.kafka.settings.topic_prefix}.{self.group_kind}")
            listener = self.rebalance_listener()
            consumer.subscribe([self.group_topic()], **({"listener": listener} if listener is not None else {}))
            self._consumer = consumer
        return self._consumer

    def commit(self, records: int) -> None:
        """Commit what was polled; if the group rebalanced meanwhile, say so and carry on.

        The batch's work is already durable, and whoever gets its partitions now
        handles the records again harmlessly (every worker drops what it has
        seen); the next poll rejoins the group.
        """
        try:
            self.consumer.commit()
        except (CommitFailedError, RebalanceInProgressError) as error:
            log.warning("commit_skipped_after_rebalance", group=self.group_kind, records=records,
                        reason=repr(error))

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close(autocommit=False)
            self._consumer = None
