"""kill -9 the process worker while leads keep coming: every lead is assigned exactly once; and while it holds
an early event: the restarted worker handles that event, once."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import orjson
from kafka import TopicPartition

from crmflow.aggregates.application import CommandRequest, CrmApplication
from crmflow.aggregates.clock import system_clock
from crmflow.processes.instance import Instance, instance_id
from crmflow.processes.loader import load_files
from crmflow.processes.registry import DefinitionRegistry
from crmflow.processes.runtime import ProcessRuntime, StoredInstances
from crmflow.workers.kafka.clients import KafkaClients, KafkaSettings
from crmflow.workers.kafka.relay import Relay
from crmflow.workers.shutdown import StopSignal
from tests.waiting import wait_until
from tests.worker_processes import WorkerProcess, worker_env

DEFINITIONS = Path(__file__).parents[2] / "processes" / "definitions"
# With -m slow only (tests/conftest.py): the bundled broker on SQLite, and Apache Kafka on both stores, run by default.
SLOW_VARIANTS = ("bundled-postgres",)


def start_worker(database_url: str, settings: KafkaSettings, log: Path) -> subprocess.Popen[bytes]:
    env = worker_env(database_url, settings)
    return subprocess.Popen([sys.executable, "-m", "crmflow", "worker", "process"], env=env,
                            stdout=subprocess.DEVNULL, stderr=log.open("ab"))  # fmt: skip


def started(log: Path) -> int:
    return log.read_text(errors="replace").count("process_worker_started") if log.exists() else 0


def assigned(app: CrmApplication, leads: list[str]) -> int:
    return sum(1 for lead in leads if app.state(lead, "acme")["owner"] is not None)


def test_killing_the_process_worker_repeatedly_assigns_every_lead_exactly_once(
    app: CrmApplication, database_url: str, kafka: KafkaClients, kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    DefinitionRegistry(app).deploy(load_files(sorted(DEFINITIONS.glob("*.yaml"))), "ada")
    leads: list[str] = []
    stop = threading.Event()

    def sales_and_relay() -> None:
        relay = Relay(app, kafka)
        while not stop.is_set():
            for _ in range(5):
                leads.append(str(app.execute(CommandRequest("lead.create", "acme", {"name": "L", "source": "web"})).aggregate_id))
            relay.run(StopSignal(), until_caught_up=True)
            stop.wait(0.05)

    feeder = threading.Thread(target=sales_and_relay)
    feeder.start()
    rng = random.Random(11)
    try:
        for _ in range(3):
            worker = start_worker(database_url, kafka_settings, tmp_path / "worker.log")
            before = assigned(app, list(leads))
            wait_until(lambda: assigned(app, list(leads)) > before, 60, interval_s=0.1, what="the worker to assign leads")
            threading.Event().wait(rng.uniform(0.1, 0.6))
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=10)
    finally:
        stop.set()
        feeder.join(timeout=30)
    Relay(app, kafka).run(StopSignal(), until_caught_up=True)

    log = tmp_path / "worker.log"
    starts_before = started(log)
    final = start_worker(database_url, kafka_settings, log)
    try:
        wait_until(lambda: assigned(app, leads) == len(leads), 90, interval_s=0.2, what="every lead assigned")
        # The killed workers may have assigned every lead already: SIGTERM before the final worker
        # has installed its handler would kill it (-15) instead of asking it to stop.
        wait_until(lambda: started(log) > starts_before, 60, interval_s=0.1, what="the final worker to start")
    finally:
        final.send_signal(signal.SIGTERM)
        assert final.wait(timeout=30) == 0

    histories = [[h.type for h in app.history(lead, "acme")] for lead in leads]
    assert len(leads) > 20
    assert all(h.count("LeadAssigned") == 1 for h in histories), "no command was repeated"
    # And no instance failed on a replay: each went on to wait for its lead to be contacted.
    instances = StoredInstances(app)
    instances.refresh()
    states = [instances.get(instance_id("acme", "web-lead-follow-up", str(lead))) for lead in leads]
    assert [(i.status, i.step) if i else None for i in states] == [("waiting", "wait-contact")] * len(leads)


def lead_event(lead: str, event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    """A CloudEvent about a lead as the relay publishes it, stamped now (the workers time waits from it)."""
    return {"specversion": "1.0", "id": f"{event_type}-{uuid.uuid4()}", "type": event_type, "subject": lead,
            "tenantid": "acme", "source": "/crmflow/acme/lead", "time": system_clock().isoformat(),
            "data": data}  # fmt: skip


def publish(kafka: KafkaClients, event: dict[str, Any], partition: int) -> int:
    """Onto the events topic, at this partition; the offset it was written at."""
    sent = kafka.producer.send(kafka.topics.events, key=event["subject"].encode(), value=orjson.dumps(event),
                               partition=partition)  # fmt: skip
    return int(sent.get(timeout=30).offset)


def follow_up(app: CrmApplication, lead: str) -> Instance | None:
    instances = StoredInstances(app)
    instances.refresh()
    return instances.get(instance_id("acme", "web-lead-follow-up", lead))


def test_an_early_event_held_when_the_worker_is_killed_is_handled_after_restart(
    app: CrmApplication, database_url: str, kafka: KafkaClients, kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    DefinitionRegistry(app).deploy(load_files(sorted(DEFINITIONS.glob("*.yaml"))), "ada")
    early_lead, later_lead = (
        str(app.execute(CommandRequest("lead.create", "acme", {"name": name, "source": "web"})).aggregate_id)
        for name in ("Early", "Later")
    )
    # The lead was worked before its follow-up instance was saved (its LeadCreated is handled elsewhere, later):
    # the status change is early. Another lead's LeadCreated follows it on the same partition.
    worked = lead_event(early_lead, "LeadStatusChanged", {"status": "working"})
    events, partition = TopicPartition(kafka.topics.events, 0), 0
    worked_at = publish(kafka, worked, partition)
    later_at = publish(kafka, lead_event(later_lead, "LeadCreated", {"source": "web", "name": "Later"}), partition)
    group = kafka.consumer(group_id=f"{kafka_settings.topic_prefix}.process")
    env = worker_env(database_url, kafka_settings)

    first = WorkerProcess("process", env, tmp_path / "first.log")
    try:
        wait_until(lambda: app.state(later_lead, "acme")["owner"], 90, interval_s=0.1,
                   what=f"the later lead assigned by the first worker: {first.describe()}")  # fmt: skip
        # It handled the later lead and committed, but not past the event it holds.
        wait_until(lambda: group.committed(events) == worked_at, 30, interval_s=0.1,
                   what=f"the commit to stop at the held event's offset {worked_at}")  # fmt: skip
        first.kill()
    finally:
        first.ensure_gone()
    assert follow_up(app, early_lead) is None, "the held event had nothing to wake before the kill"

    # Meanwhile another copy handles the early lead's LeadCreated: its instance is saved, waiting.
    ProcessRuntime(app, system_clock).handle([lead_event(early_lead, "LeadCreated", {"source": "web", "name": "Early"})])
    waiting = follow_up(app, early_lead)
    assert waiting is not None and (waiting.status, waiting.step) == ("waiting", "wait-contact")

    restarted = WorkerProcess("process", env, tmp_path / "restarted.log")
    try:
        wait_until(lambda: (follow_up(app, early_lead) or waiting).status == "completed", 90, interval_s=0.2,
                   what=f"the held event handled after the restart: {restarted.describe()}")  # fmt: skip
        wait_until(lambda: group.committed(events) == later_at + 1, 30, interval_s=0.1,
                   what="the commit to move on once nothing is held")  # fmt: skip
        wait_until(lambda: restarted.records("process_worker_started"), 30, interval_s=0.1, what="started")
        assert restarted.stop() == 0
    finally:
        restarted.ensure_gone()

    completed = follow_up(app, early_lead)
    assert completed is not None and worked["id"] in completed.seen
    effects = [e["kind"] for run in app.history(completed.id, "acme") for e in run.data.get("effects") or []]
    assert effects.count("completed") == 1, "the status change woke the instance once"
    for lead in (early_lead, later_lead):
        assert [h.type for h in app.history(lead, "acme")].count("LeadAssigned") == 1, "the replay repeated nothing"
