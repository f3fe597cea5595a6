"""kill -9 the relay at random moments while the store keeps growing: nothing is lost."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import threading
from collections import defaultdict
from pathlib import Path

from crmflow.aggregates.application import CommandRequest, CrmApplication
from crmflow.aggregates.envelope import to_cloudevent_dict
from crmflow.workers.kafka.clients import KafkaClients, KafkaSettings
from tests.waiting import read_topic, wait_until
from tests.worker_processes import worker_env

# With -m slow only (tests/conftest.py): the bundled broker on SQLite, and Apache Kafka on both stores, run by default.
SLOW_VARIANTS = ("bundled-postgres",)


def start_relay(database_url: str, settings: KafkaSettings, log: Path) -> subprocess.Popen[bytes]:
    env = worker_env(database_url, settings)
    return subprocess.Popen([sys.executable, "-m", "crmflow", "worker", "relay"], env=env,
                            stdout=subprocess.DEVNULL, stderr=log.open("ab"))  # fmt: skip


def keep_writing(app: CrmApplication, stop: threading.Event) -> None:
    """A steady stream of sales activity, batch after batch, until told to stop."""
    i = 0
    while not stop.is_set():
        ids = [str(app.execute(CommandRequest("lead.create", "acme", {"name": f"Lead {i + k}"})).aggregate_id)
               for k in range(5)]  # fmt: skip
        app.execute_batch([CommandRequest("lead.assign", "acme", {"lead_id": lead, "owner": "maria"}) for lead in ids]
                          + [CommandRequest("lead.work", "acme", {"lead_id": lead}) for lead in ids])  # fmt: skip
        i += 5


def test_killing_the_relay_five_times_loses_nothing_and_dedup_by_id_sees_each_event_once(
    app: CrmApplication, database_url: str, kafka: KafkaClients, kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    tracking = app.factory.tracking_recorder()

    def relayed() -> int:
        return tracking.max_tracking_id("relay") or 0

    stop_writing = threading.Event()
    writer = threading.Thread(target=keep_writing, args=(app, stop_writing))
    writer.start()
    rng = random.Random(7)
    kills = 0
    try:
        for _ in range(5):
            relay = start_relay(database_url, kafka_settings, tmp_path / "relay.log")
            progress_before = relayed()
            # Let it get going, then kill it at a random moment mid-stream.
            wait_until(lambda: relayed() > progress_before, 30, what="the relay to make progress")
            threading.Event().wait(rng.uniform(0.05, 0.4))
            relay.send_signal(signal.SIGKILL)
            relay.wait(timeout=10)
            kills += 1
    finally:
        stop_writing.set()
        writer.join(timeout=30)

    # One last relay catches up with everything that was stored.
    final_relay = start_relay(database_url, kafka_settings, tmp_path / "relay.log")
    try:
        last = app.recorder.max_notification_id()
        wait_until(lambda: relayed() >= last, 60, what="the relay to catch up")
    finally:
        final_relay.send_signal(signal.SIGTERM)
        assert final_relay.wait(timeout=15) == 0, "SIGTERM stops the relay cleanly"

    stored = [to_cloudevent_dict(app.mapper.to_domain_event(n))
              for n in app.recorder.select_notifications(start=1, limit=1_000_000)]  # fmt: skip
    expected = {e["id"] for e in stored}
    records = read_topic(kafka, kafka.topics.events, at_least=len(stored), timeout_s=60,
                         until=lambda got: expected <= {json.loads(r.value)["id"] for r in got})  # fmt: skip

    assert kills == 5
    assert len(stored) > 100
    # No gap: every stored event was published (some possibly twice).
    published_ids = [json.loads(r.value)["id"] for r in records]
    assert set(published_ids) == expected
    # A consumer that drops duplicates by id sees each event once, in aggregate order.
    seen: set[str] = set()
    sequences: dict[str, list[int]] = defaultdict(list)
    for record in records:
        message = json.loads(record.value)
        if message["id"] in seen:
            continue
        seen.add(message["id"])
        sequences[message["subject"]].append(int(message["sequence"]))
    assert len(seen) == len(stored)
    assert all(seq == list(range(1, len(seq) + 1)) for seq in sequences.values())
