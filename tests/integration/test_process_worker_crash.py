"""kill -9 the process worker while leads keep coming: every lead is assigned exactly once."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
from pathlib import Path

from crmflow.aggregates.application import CommandRequest, CrmApplication
from crmflow.processes.instance import instance_id
from crmflow.processes.loader import load_files
from crmflow.processes.registry import DefinitionRegistry
from crmflow.processes.runtime import StoredInstances
from crmflow.workers.kafka.clients import KafkaClients, KafkaSettings
from crmflow.workers.kafka.relay import Relay
from crmflow.workers.shutdown import StopSignal
from tests.waiting import wait_until
from tests.worker_processes import worker_env

DEFINITIONS = Path(__file__).parents[2] / "processes" / "definitions"


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
