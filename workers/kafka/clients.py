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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import orjson
import structlog
from kafka import ConsumerRebalanceListener, KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.coordinator.assignors.cooperative_sticky import CooperativeStickyAssignor
from kafka.coordinator.assignors.range import RangePartitionAssignor
from kafka.coordinator.assignors.sticky.sticky_assignor import StickyPartitionAssignor
from kafka.errors import (
    CommitFailedError,
    IllegalStateError,
    KafkaError,
    KafkaTimeoutError,
    NoError,
    NoOffsetForPartitionError,
    OffsetOutOfRangeError,
    RebalanceInProgressError,
    TopicAlreadyExistsError,
    for_code,
)

# What the relay needs of kafka-python besides the clients: the errors Kafka gives for one record that no
# retry of the same bytes can cure. Re-exported, so that kafka-python is imported in this module only.
from kafka.errors import CorruptRecordError as CorruptRecordError
from kafka.errors import InvalidRecordError as InvalidRecordError
from kafka.errors import MessageSizeTooLargeError as MessageSizeTooLargeError
from kafka.errors import RecordListTooLargeError as RecordListTooLargeError
from kafka.structs import OffsetAndMetadata
from pydantic import BaseModel, Field

log = structlog.get_logger("crmflow.kafka")
T = TypeVar("T")


def _finish_joins_that_completed_between_polls() -> None:
    """Work around a race in kafka-python 3.0's group join, seen on Apache Kafka 4.

    When ``poll(timeout_ms)`` gives up while the JoinGroup/SyncGroup round trip
    is in flight, the join task is kept for the next poll. If it completes in
    between, the next poll asks ``need_rejoin()``, which no longer says yes, so
    the task's result is never applied: the member holds no partitions, sends no
    heartbeats and is put out of the group after its session timeout, on every
    rebalance that hits the window. Here an outstanding join task makes the next
    poll rejoin, and a task that already succeeded is finished with its result,
    exactly as the library's own success path does (instead of a fresh JoinGroup,
    which costs a whole rebalance round, and a full rebalance timeout on the
    bundled broker).
    """
    try:
        from kafka.coordinator.base import BaseCoordinator
        from kafka.coordinator.consumer import ConsumerCoordinator
        from kafka.structs import MemberState
    except ImportError:  # pragma: no cover - a kafka-python without these modules
        return
    need_rejoin, join_group = ConsumerCoordinator.need_rejoin, getattr(BaseCoordinator, "join_group_async", None)
    if join_group is None or getattr(need_rejoin, "crmflow_patched", False):
        return

    def patched_need_rejoin(self: Any) -> bool:
        return getattr(self, "_join_task", None) is not None or need_rejoin(self)

    async def patched_join_group(self: Any, timeout_ms: Any = None) -> bool:
        task = self._join_task
        if task is None or not task.is_done or not task.succeeded():
            return await join_group(self, timeout_ms)
        self._join_task = None
        with self._lock:
            self.rejoining = False
            self.rejoin_needed = False
            self.state = MemberState.STABLE
            self._enable_heartbeat()
        generation = self._generation
        await self._on_join_complete_async(generation.generation_id, generation.member_id, generation.protocol,
                                           task.value)  # fmt: skip
        return True

    patched_need_rejoin.crmflow_patched = True  # type: ignore[attr-defined]
    ConsumerCoordinator.need_rejoin = patched_need_rejoin  # type: ignore[method-assign]
    BaseCoordinator.join_group_async = patched_join_group  # type: ignore[method-assign]


_finish_joins_that_completed_between_polls()


def _tell_listeners_of_rebalances_that_added_nothing() -> None:
    """Java parity for cooperative rebalances in kafka-python 3.0.

    Kafka's Java consumer calls ``onPartitionsAssigned`` at the end of every
    successful rebalance, with the partitions it added, possibly none.
    kafka-python's cooperative path calls it only when some were added, so a
    member that rejoined and kept what it held (a broker that lost its data but
    took the member back with its old id, a topic left with fewer partitions)
    told crmflow nothing: no line saying it is back in its group, and its kept
    positions were not compared with partitions that may now be new and empty.
    Here a cooperative join that applied its assignment and added nothing calls
    the listener with an empty set, as Java does.
    """
    try:
        from kafka.coordinator.assignors.abstract import RebalanceProtocol
        from kafka.coordinator.consumer import ConsumerCoordinator
        from kafka.protocol.consumer.metadata import ConsumerProtocolAssignment
    except ImportError:  # pragma: no cover - a kafka-python without these modules
        return
    join_complete = getattr(ConsumerCoordinator, "_on_join_complete_async", None)
    if join_complete is None or getattr(join_complete, "crmflow_patched", False):
        return

    async def patched_join_complete(self: Any, generation: Any, member_id: Any, protocol: Any,
                                    assignment_bytes: Any) -> None:  # fmt: skip
        before = set(self._subscription.assigned_partitions())
        await join_complete(self, generation, member_id, protocol, assignment_bytes)
        listener = self._subscription.rebalance_listener
        if self._rebalance_protocol != RebalanceProtocol.COOPERATIVE or not listener:
            return
        held = set(self._subscription.assigned_partitions())
        applied = held == set(ConsumerProtocolAssignment.decode(assignment_bytes).partitions())
        if applied and not held - before:  # some added: the library has called the listener itself
            try:
                await self._invoke_rebalance_listener_async("on_partitions_assigned", set())
            except Exception as error:
                raise KafkaError("User rebalance callback throws an error") from error

    patched_join_complete.crmflow_patched = True  # type: ignore[attr-defined]
    ConsumerCoordinator._on_join_complete_async = patched_join_complete  # type: ignore[method-assign]


_tell_listeners_of_rebalances_that_added_nothing()


ASSIGNORS = {"cooperative-sticky": CooperativeStickyAssignor, "sticky": StickyPartitionAssignor,
             "range": RangePartitionAssignor}


class KafkaSettings(BaseModel):
    """How crmflow talks to Kafka; the defaults are for Apache Kafka in production.

    The bundled broker wants shorter group timeouts and fetch waits:
    ``workers.broker.BUNDLED_BROKER_TUNING`` says which, and why.
    """

    bootstrap_servers: str = "127.0.0.1:9092"
    topic_prefix: str = Field("crmflow", pattern=r"^[A-Za-z0-9._-]+$")
    partitions: int = Field(6, ge=1, le=1000)
    replication_factor: int = Field(1, ge=1)
    client_id: str = "crmflow"
    request_timeout_ms: int = 30_000
    # A crashed worker's partitions move once its session expires: Kafka's 45 s
    # default would stall them that long, 10 s is still well above a heartbeat
    # pause of a busy Python process.
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 3_000
    # The longest gap between two polls before the member is put out of the
    # group; it is also the rebalance timeout a joining member announces. A
    # worker's poll handles at most max_poll_records, so a minute is far above
    # any healthy batch, and a slow database does not cause rebalance storms.
    max_poll_interval_ms: int = 60_000
    max_poll_records: int = 500
    # How long the broker may hold a fetch when no data is there. Apache Kafka
    # answers as soon as data arrives, so this only sets how often an idle
    # consumer asks (Kafka's own default).
    fetch_max_wait_ms: int = 500
    # Cooperative rebalancing (KIP-429): a copy joining or leaving moves only
    # the partitions that change owner, the others keep flowing; "sticky" and
    # "range" are the eager protocols (every partition revoked, then assigned).
    assignor: Literal["cooperative-sticky", "sticky", "range"] = "cooperative-sticky"
    # Static membership (KIP-345): a worker restarted with the same id gets its
    # partitions back without a rebalance, but a dead one keeps them until its
    # session expires. For orchestrators that restart in place (a pod name).
    group_instance_id: str | None = Field(None, pattern=r"^[A-Za-z0-9._-]+$")
    retries: int = Field(5, ge=0)
    retry_backoff_s: float = 0.2
    # The longest wait between two attempts to reach a broker that went away. Kafka's Java clients wait at most
    # 1 s; kafka-python's 30 s default would leave a worker idle for up to half a minute after its broker is back.
    reconnect_backoff_max_ms: int = Field(1_000, ge=50)
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


def producer_config(s: KafkaSettings, *, client_id: str) -> dict[str, Any]:
    """kafka-python producer options from crmflow's settings (also the benchmarks' bare baselines)."""
    options: dict[str, Any] = {
        "bootstrap_servers": s.bootstrap_servers, "client_id": client_id, "acks": "all", "linger_ms": 5,
        "batch_size": 256 * 1024, "request_timeout_ms": s.request_timeout_ms, "retries": s.retries,
        "reconnect_backoff_max_ms": s.reconnect_backoff_max_ms,
        # crmflow creates its topics with their partition count (ensure_topics); a broker's auto-creation
        # would make them with its own default.
        "allow_auto_create_topics": False,
    }  # fmt: skip
    if s.idempotent_producer:
        # Broker-side de-duplication of retried batches, and ordered delivery
        # with up to 5 requests in flight.
        options.update(enable_idempotence=True, max_in_flight_requests_per_connection=5)
    return options


def consumer_config(s: KafkaSettings, *, client_id: str, group_id: str | None) -> dict[str, Any]:
    """kafka-python consumer options from crmflow's settings (also the benchmarks' bare baseline)."""
    options: dict[str, Any] = {
        "bootstrap_servers": s.bootstrap_servers,
        "client_id": client_id,
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "allow_auto_create_topics": False,  # as for producers
        "reconnect_backoff_max_ms": s.reconnect_backoff_max_ms,
        "session_timeout_ms": s.session_timeout_ms,
        # Kafka's rule of thumb: at least three heartbeats per session.
        "heartbeat_interval_ms": min(s.heartbeat_interval_ms, s.session_timeout_ms // 3),
        "max_poll_interval_ms": s.max_poll_interval_ms,
        "max_poll_records": s.max_poll_records,
        "fetch_max_wait_ms": s.fetch_max_wait_ms,
        "request_timeout_ms": max(s.request_timeout_ms, s.session_timeout_ms + 5_000),
    }
    if group_id is not None:
        options["partition_assignment_strategy"] = (ASSIGNORS[s.assignor],)
        if s.group_instance_id:
            # Unique per group: one process may hold members of several groups (worker all).
            options["group_instance_id"] = f"{s.group_instance_id}-{group_id}"
    return options



def _created_and_taken(response: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Split a CreateTopics answer into the topics it created and those that already existed; any other
    error is raised."""
    created: list[str] = []
    taken: list[str] = []
    for topic in response["topics"]:
        error = for_code(topic["error_code"])
        if error is NoError:
            created.append(topic["name"])
        elif error is TopicAlreadyExistsError:
            taken.append(topic["name"])
        else:
            raise error(f"cannot create topic {topic['name']}: {topic.get('error_message') or error.description}")
    return created, taken


def decoded_events(records: Iterable[Any]) -> Iterator[dict[str, Any]]:
    """The events among polled records (JSON objects with an id); anything else is logged and skipped."""
    for record in records:
        try:
            event = orjson.loads(record.value)
        except orjson.JSONDecodeError:
            log.warning("event_not_json", partition=record.partition, offset=record.offset)
            continue
        if isinstance(event, dict) and "id" in event:
            yield event


def topic_partitions(consumer: KafkaConsumer, topic: str) -> list[TopicPartition]:
    """Every partition of a topic, in order (none while the client has no metadata for it yet)."""
    return [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]


def committable(offsets: dict[tuple[str, int], int]) -> dict[TopicPartition, OffsetAndMetadata]:
    """What ``consumer.commit`` takes, from (topic, partition) -> the next offset to read."""
    return {TopicPartition(topic, partition): OffsetAndMetadata(offset, "", -1) for (topic, partition), offset in offsets.items()}


def answers_metadata(bootstrap_servers: str) -> None:
    """Ask the cluster for its metadata once; raises while it cannot answer (a listening socket comes earlier)."""
    probe = KafkaConsumer(bootstrap_servers=bootstrap_servers, client_id="crmflow-readiness",
                          request_timeout_ms=5000, session_timeout_ms=4000)  # fmt: skip
    try:
        probe.topics()
    finally:
        probe.close()


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
            options = producer_config(s, client_id=f"{s.client_id}-{self.name}")
            self._producer = retrying(
                "producer_connect", lambda: KafkaProducer(**options),
                attempts=s.retries, backoff_s=s.retry_backoff_s, servers=s.bootstrap_servers,
            )  # fmt: skip
        return self._producer

    def drop_producer(self) -> KafkaProducer | None:
        """Forget the producer (the next use makes a new one) and hand it over, for the caller to close."""
        producer, self._producer = self._producer, None
        return producer

    def consumer(self, *topics: str, group_id: str | None, **overrides: Any) -> KafkaConsumer:
        """A consumer that never auto-commits; in a group when ``group_id`` is given."""
        s = self.settings
        options = {**consumer_config(s, client_id=f"{s.client_id}-{self.name}", group_id=group_id), **overrides}
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
            lambda: KafkaAdminClient(bootstrap_servers=s.bootstrap_servers, client_id=f"{s.client_id}-admin",
                                     reconnect_backoff_max_ms=s.reconnect_backoff_max_ms),
            attempts=s.retries, backoff_s=s.retry_backoff_s, servers=s.bootstrap_servers,
        )  # fmt: skip

    def ensure_topics(self) -> list[str]:
        """Create crmflow's topics if they are missing; return the ones created."""
        s = self.settings
        # Topics are listed by a consumer's metadata request, not the admin client's
        # list_topics: kafka-python's admin asks for authorized operations and fails
        # on the ones Apache Kafka 4 added.
        probe = self.consumer(group_id=None)
        try:
            missing = [t for t in self.topics.all() if t not in probe.topics()]
            if not missing:
                return []
            admin = self.admin()
            try:
                response = admin.create_topics(
                    [NewTopic(t, num_partitions=s.partitions, replication_factor=s.replication_factor)
                     for t in missing],
                    raise_errors=False,
                )  # fmt: skip
            finally:
                admin.close()
            created, taken = _created_and_taken(response)
            # A topic someone else made between our look and our create (another worker, or a broker that
            # creates topics on a metadata request) is used as it is, whatever its partition count.
            self._wait_until_visible(probe, created, partitions=s.partitions)
            self._wait_until_visible(probe, taken, partitions=None)
            log.info("topics_created", topics=created, partitions=s.partitions)
            for topic in taken:
                found = len(probe.partitions_for_topic(topic) or ())
                if found != s.partitions:
                    log.warning("topic_partitions_differ", topic=topic, partitions=found, expected=s.partitions,
                                why="created before crmflow could create it (by a broker's auto-creation?)")
            return created
        finally:
            probe.close()
            self._consumers.remove(probe)

    def _wait_until_visible(
        self, probe: KafkaConsumer, topics: list[str], partitions: int | None, timeout_s: float = 30.0
    ) -> None:
        """Return once the probe sees every partition of the topics (``partitions`` of each, or any number)
        and can read their end offsets (each has a leader): a cluster spreads new topics' metadata
        asynchronously, and a consumer that joins its group before then is given no partitions."""
        deadline = time.monotonic() + timeout_s
        while topics:
            probe.topics()  # a fresh metadata request for every topic
            found = {t: probe.partitions_for_topic(t) or set() for t in topics}
            if all(parts and (partitions is None or len(parts) == partitions) for parts in found.values()):
                try:
                    probe.end_offsets([TopicPartition(t, p) for t, parts in found.items() for p in parts])
                    return
                except KafkaError:
                    pass  # a partition without a leader yet
            if time.monotonic() > deadline:
                seen = {t: len(parts) for t, parts in found.items()}
                raise KafkaTimeoutError(f"topics {topics} are not all visible after {timeout_s:.0f}s "
                                        f"(partitions seen: {seen})")  # fmt: skip
            time.sleep(0.05)

    def true_ends(
        self, reported: dict[TopicPartition, int], timeout_s: float = 1.0
    ) -> dict[TopicPartition, int]:
        """The offset after the last record of each partition, for partitions whose reported end is in doubt.

        Apache Kafka reports a partition's end exactly; the bundled broker reports the first offset of the
        partition's last batch (and answers a fetch past the end with nothing, not OffsetOutOfRange). So a
        position past the reported end is checked by reading from there: the last record read, plus one,
        is the end; nothing read within ``timeout_s`` leaves the reported end.
        """
        probe = self.consumer(group_id=None)
        try:
            probe.assign(list(reported))
            for tp, offset in reported.items():
                probe.seek(tp, offset)
            ends = dict(reported)
            deadline = time.monotonic() + timeout_s
            read_some = False
            while time.monotonic() < deadline:
                # A poll hands out at most max_poll_records of a fetched batch: read on until a poll brings
                # nothing new, or one large last batch would be taken for the partition's end.
                polled = probe.poll(timeout_ms=100)
                for tp, records in polled.items():
                    ends[tp] = max(ends[tp], records[-1].offset + 1)
                if polled:
                    read_some = True
                elif read_some:
                    break
            return ends
        finally:
            probe.close()
            self._consumers.remove(probe)

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
    partitions move to the other members without waiting for a timeout. Every
    assignment and revocation is logged with the whole assignment after it
    (with cooperative rebalancing a member is told only what changed).

    Positions out of range (a broker that lost its data, or retention that
    deleted what was not read yet) are replayed from the earliest offset: the
    consumer has no automatic reset, so the fetcher's OffsetOutOfRange reaches
    ``poll``, and after each assignment (and now and then while idle) every
    position is compared with the partition's beginning and end, because a
    broker may answer a fetch past the end with nothing instead of the error.
    Either way ``consumer_offsets_out_of_range`` is logged and ``on_replay``
    is called. Replaying is safe because every worker drops the events it has
    handled before, by event id. A partition the group never committed starts
    at the earliest offset too.

    That is for members that poll through ``poll``: they set
    ``auto_offset_reset = "none"``. A member that calls ``consumer.poll``
    itself keeps the client's own reset to the earliest offset (the same
    policy, logged only by kafka-python).
    """

    kafka: KafkaClients
    group_kind: str
    auto_offset_reset = "earliest"
    _consumer: Any = None
    # How often an idle member compares its positions with the partitions' ends.
    idle_check_s: float = 10.0

    def group_topic(self) -> str:
        raise NotImplementedError

    def on_assigned(self, partitions: list[Any]) -> None:
        """Called with the partitions newly given to this member; by default Kafka's committed offsets decide."""

    def on_replay(self, tp: TopicPartition, offset: int) -> None:
        """A partition out of range is replayed from ``offset`` (its earliest)."""

    def on_revoked(self, partitions: list[Any]) -> None:
        """Called with the partitions taken from this member (revoked, or lost with its membership)."""

    @property
    def consumer(self) -> Any:
        if self._consumer is None:
            consumer = self.kafka.consumer(group_id=f"{self.kafka.settings.topic_prefix}.{self.group_kind}",
                                           auto_offset_reset=self.auto_offset_reset)  # fmt: skip
            consumer.subscribe([self.group_topic()], listener=_AssignmentListener(self))
            self._consumer = consumer
            self._unchecked: set[TopicPartition] = set()
            self._checked_at = time.monotonic()
        return self._consumer

    def poll(self, timeout_ms: int) -> dict[Any, list[Any]]:
        """``consumer.poll`` with the out-of-range policy applied; ``{}`` when a position had to be reset."""
        consumer = self.consumer
        try:
            batches = consumer.poll(timeout_ms=timeout_ms)
        except OffsetOutOfRangeError as error:
            fetched = error.args[0] if error.args and isinstance(error.args[0], dict) else {}
            self._replay(fetched, "fetch")
            return {}
        except NoOffsetForPartitionError as error:
            partitions = list(error.args[0]) if error.args else list(consumer.assignment())
            consumer.seek_to_beginning(*partitions)  # never committed: from the start
            return {}
        if not batches and time.monotonic() - self._checked_at > self.idle_check_s:
            self._unchecked |= set(consumer.assignment())
        if self._unchecked:
            self._check_positions()
        return batches

    def _check_positions(self) -> None:
        consumer = self.consumer
        held = [tp for tp in self._unchecked if tp in consumer.assignment()]
        positions = {}
        for tp in held:
            try:
                positions[tp] = consumer.position(tp)
            except NoOffsetForPartitionError:
                consumer.seek_to_beginning(tp)
            except (KeyError, IllegalStateError):
                # ``position`` asks the coordinator first; a membership lost meanwhile (the broker went
                # away) takes the partition from the assignment. The next assignment is checked anew.
                continue
        if positions:
            ends = consumer.end_offsets(list(positions))
            begins = consumer.beginning_offsets(list(positions))
            doubtful = {tp: ends[tp] for tp, p in positions.items() if p is not None and p > ends[tp]}
            if doubtful:
                ends.update(self.kafka.true_ends(doubtful))
            lost = {tp: p for tp, p in positions.items() if p is not None and not begins[tp] <= p <= ends[tp]}
            self._replay(lost, "position check", ends, begins)
        self._unchecked.clear()
        self._checked_at = time.monotonic()

    def _replay(self, stored: dict[TopicPartition, int], found_by: str,
                ends: dict[TopicPartition, int] | None = None,
                begins: dict[TopicPartition, int] | None = None) -> None:  # fmt: skip
        held = {tp: offset for tp, offset in stored.items() if tp in self.consumer.assignment()}
        if not held:
            return
        ends = ends if ends is not None else self.consumer.end_offsets(list(held))
        begins = begins if begins is not None else self.consumer.beginning_offsets(list(held))
        for tp, offset in sorted(held.items()):
            log.warning("consumer_offsets_out_of_range", group=self.group_kind, topic=tp.topic,
                        partition=tp.partition, stored=offset, beginning=begins[tp], end=ends[tp],
                        found_by=found_by, policy="replay from the earliest offset")  # fmt: skip
            self.consumer.seek(tp, begins[tp])
            self.on_replay(tp, begins[tp])

    def commit(self, records: int, offsets: dict[TopicPartition, int] | None = None) -> bool:
        """Commit what was polled (or ``offsets``: partition -> the next offset to read); True if the broker
        took it. If the group rebalanced meanwhile, say so and carry on.

        The batch's work is already durable, and whoever gets its partitions now
        handles the records again harmlessly (every worker drops what it has
        seen); the next poll rejoins the group. A commit the broker cannot take
        (it is away) is not retried either: the next batch's commit covers it,
        and until then a restart only reads the batch again.
        """
        try:
            if offsets is None:
                self.consumer.commit()
            else:
                self.consumer.commit(committable({(tp.topic, tp.partition): o for tp, o in offsets.items()}))
        except (CommitFailedError, RebalanceInProgressError) as error:
            log.warning("commit_skipped_after_rebalance", group=self.group_kind, records=records,
                        reason=repr(error))
            return False
        except KafkaError as error:
            log.warning("commit_failed", group=self.group_kind, records=records, reason=repr(error))
            return False
        return True

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close(autocommit=False)
            self._consumer = None


class _AssignmentListener(ConsumerRebalanceListener):
    def __init__(self, member: GroupMember) -> None:
        self.member = member

    def _held(self) -> list[int]:
        return sorted(tp.partition for tp in self.member.consumer.assignment())

    def on_partitions_revoked(self, revoked: Any) -> None:
        if revoked:  # every batch is durable before the next poll: nothing to flush
            self.member.on_revoked(list(revoked))
            log.info("partitions_revoked", group=self.member.group_kind, revoked=sorted(tp.partition for tp in revoked),
                     partitions=self._held())  # fmt: skip

    def on_partitions_assigned(self, assigned: Any) -> None:
        # Every partition held after a rebalance (kept ones too: a broker that lost its data may have taken
        # the member back with them) is compared with the partitions' ends after this poll, outside the
        # callback: the client's own calls must not run inside its rebalance.
        self.member._unchecked |= set(assigned) | set(self.member.consumer.assignment())
        self.member.on_assigned(list(assigned))
        log.info("partitions_assigned", group=self.member.group_kind, added=sorted(tp.partition for tp in assigned),
                 partitions=self._held())  # fmt: skip
