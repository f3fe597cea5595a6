"""A broker that lost its data (a memory broker restarted, the topic recreated) gets every event again."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from crmflow.aggregates.application import CommandRequest, CrmApplication
from crmflow.aggregates.envelope import event_id
from crmflow.workers.kafka.broker import BUNDLED_BROKER_TUNING, LocalBroker
from crmflow.workers.kafka.clients import KafkaClients, KafkaSettings
from crmflow.workers.kafka.relay import Relay
from crmflow.workers.metrics import RELAY_DELIVERY_FAILURES
from crmflow.workers.shutdown import StopSignal
from tests.conftest import Broker
from tests.waiting import read_topic, wait_until

# With -m slow only (tests/conftest.py): the bundled broker on SQLite, and Apache Kafka on both stores, run by default.
SLOW_VARIANTS = ("bundled-postgres",)


class Cluster:
    """The broker under test and a way to make it lose the events topic: the bundled broker is a private
    one, killed and started again empty on the same port; Apache Kafka keeps its disk, so there the
    topic is deleted and created again, as an operator might."""

    def __init__(self, broker: Broker, tmp_path: Path) -> None:
        self.own = LocalBroker(log_file=tmp_path / "broker.log").start() if broker.name == "bundled" else None
        servers = self.own.bootstrap_servers if self.own else broker.bootstrap_servers
        tuning = BUNDLED_BROKER_TUNING if self.own else {"session_timeout_ms": 6000}
        self.settings = KafkaSettings(bootstrap_servers=servers, topic_prefix=f"t{uuid.uuid4().hex[:10]}",
                                      partitions=6, **tuning)  # fmt: skip
        self.kafka = KafkaClients(self.settings, name="test")
        self.kafka.ensure_topics()

    def lose_the_data(self) -> None:
        if self.own is not None:
            self.own.stop()
            self.own.start()
        else:
            admin = self.kafka.admin()
            try:
                admin.delete_topics([self.kafka.topics.events])
            finally:
                admin.close()
            probe = self.kafka.consumer(group_id=None)
            wait_until(lambda: self.kafka.topics.events not in probe.topics(), 30, what="the topic deleted")
            probe.close()
        self.kafka.ensure_topics()

    def close(self) -> None:
        self.kafka.close()
        if self.own is not None:
            self.own.stop()


@pytest.fixture
def cluster(broker: Broker, tmp_path: Path) -> Iterator[Cluster]:
    running = Cluster(broker, tmp_path)
    yield running
    running.close()


def sales(app: CrmApplication, leads: int) -> None:
    for i in range(leads):
        lead = str(app.execute(CommandRequest("lead.create", "acme", {"name": f"Lead {i}"})).aggregate_id)
        app.execute(CommandRequest("lead.assign", "acme", {"lead_id": lead, "owner": "maria"}))


def every_stored_id(app: CrmApplication) -> set[str]:
    return {event_id(n.originator_id, n.originator_version)
            for n in app.recorder.select_notifications(start=1, limit=100_000)}  # fmt: skip


def topic_holds_every_event(cluster: Cluster, app: CrmApplication) -> None:
    expected = every_stored_id(app)
    read_topic(cluster.kafka, cluster.kafka.topics.events, at_least=len(expected), timeout_s=90,
               until=lambda got: expected <= {json.loads(r.value)["id"] for r in got})  # fmt: skip


def test_a_broker_that_comes_back_empty_gets_every_event_again_from_a_running_and_from_a_restarted_relay(
    app: CrmApplication, cluster: Cluster
) -> None:
    sales(app, 5)  # 5 leads x 2 events
    relay_kafka = KafkaClients(cluster.settings, name="relay")
    relay = Relay(app, relay_kafka, ack_timeout_s=3)
    stop = StopSignal()
    running = threading.Thread(target=relay.run, args=(stop,), kwargs={"idle_wait_s": 0.05})
    running.start()
    try:
        wait_until(lambda: relay.position == 10, 60, what="the relay to publish all 10")
        topic_holds_every_event(cluster, app)

        # The broker loses everything while the relay runs; the next event shows it.
        cluster.lose_the_data()
        sales(app, 1)  # 2 more: 12 stored
        wait_until(lambda: relay.marks.epoch() == 1, 90, what="the relay to see the broker lost its data")
        topic_holds_every_event(cluster, app)
    finally:
        stop.set()
        running.join(timeout=60)
        relay_kafka.close()
    assert not running.is_alive()

    # Lost again while no relay runs: a relay starting up finds out before it publishes anything new.
    cluster.lose_the_data()
    with KafkaClients(cluster.settings, name="relay") as again:
        restarted = Relay(app, again)
        assert restarted.position == 12
        restarted.run(StopSignal(), until_caught_up=True)
    assert restarted.marks.epoch() == 2 and restarted.position == 12
    topic_holds_every_event(cluster, app)


def test_the_relay_rides_out_an_outage_far_longer_than_its_retries_and_publishes_what_was_stored_meanwhile(
    app: CrmApplication, cluster: Cluster
) -> None:
    if cluster.own is None:
        pytest.skip(
            "the session's Apache Kafka is shared by other tests: only the private bundled one is stopped"
        )
    sales(app, 2)  # 4 events
    settings = cluster.settings.model_copy(update={"retries": 1, "retry_backoff_s": 0.05})
    relay_kafka = KafkaClients(settings, name="relay")
    relay = Relay(app, relay_kafka, ack_timeout_s=1, max_backoff_s=0.5)
    stop = StopSignal()
    running = threading.Thread(target=relay.run, args=(stop,), kwargs={"idle_wait_s": 0.05})
    running.start()
    try:
        wait_until(lambda: relay.position == 4, 60, what="the relay to publish the first 4")
        failures = RELAY_DELIVERY_FAILURES.labels(cause="kafka")
        before = failures._value.get()
        cluster.own.stop()
        sales(app, 2)  # 4 more while the broker is away: 8 stored
        # Retries 1 allows 2 attempts; the old relay gave up there. This one keeps trying.
        wait_until(lambda: failures._value.get() >= before + 5, 60, what="five failed attempts")
        assert running.is_alive()
        cluster.own.start()
        cluster.kafka.ensure_topics()
        wait_until(lambda: relay.position == 8, 90, what="the relay to publish all 8 after the outage")
        topic_holds_every_event(cluster, app)
        assert running.is_alive()
    finally:
        stop.set()
        running.join(timeout=60)
        relay_kafka.close()
