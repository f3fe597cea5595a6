"""kill -9 the projection worker mid-stream, again and again: the reports still equal a rebuild."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
from pathlib import Path

from crmflow.aggregates.application import CommandRequest, CrmApplication
from crmflow.projections.db import Database
from crmflow.projections.projector import create_tables, rebuild
from crmflow.projections.reports import REPORTS
from crmflow.workers.history import history_source, stored_history
from crmflow.workers.kafka.clients import KafkaClients, KafkaSettings
from crmflow.workers.kafka.relay import Relay
from crmflow.workers.run.projection_worker import stored_positions
from crmflow.workers.shutdown import StopSignal
from tests.waiting import wait_until
from tests.worker_processes import worker_env

# With -m slow only (tests/conftest.py): the bundled broker on SQLite, and Apache Kafka on both stores, run by default.
SLOW_VARIANTS = ("bundled-postgres",)


def started(log: Path) -> int:
    return log.read_text(errors="replace").count("projection_worker_started") if log.exists() else 0


def start_worker(database_url: str, reports_url: str, settings: KafkaSettings, log: Path) -> subprocess.Popen[bytes]:
    env = worker_env(database_url, settings, reports_url)
    return subprocess.Popen([sys.executable, "-m", "crmflow", "worker", "projection"], env=env,
                            stdout=subprocess.DEVNULL, stderr=log.open("ab"))  # fmt: skip


def test_killing_the_projection_worker_repeatedly_changes_no_report(
    app: CrmApplication, database_url: str, kafka: KafkaClients, kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    reports_url = database_url if database_url.startswith("postgresql") else str(tmp_path / "reports.db")
    reports = Database(reports_url)
    create_tables(reports)
    account = str(app.execute(CommandRequest("account.create", "acme", {"name": "Globex"})).aggregate_id)
    stop = threading.Event()

    def sell() -> None:
        relay, i = Relay(app, kafka), 0
        while not stop.is_set():
            requests = [CommandRequest("opportunity.create", "acme", {"account_id": account, "name": f"D{i + k}",
                        "amount": str(100 + i + k), "close_date": "2026-06-30", "owner": ["ana", "ben"][k % 2]})
                        for k in range(20)]  # fmt: skip
            app.execute_batch(requests)
            i += 20
            relay.run(StopSignal(), until_caught_up=True)
            stop.wait(0.02)

    def projected() -> int:
        return sum(stored_positions(reports, kafka.topics.events).values())

    seller = threading.Thread(target=sell)
    seller.start()
    rng = random.Random(3)
    try:
        for _ in range(3):
            worker = start_worker(database_url, reports_url, kafka_settings, tmp_path / "projection.log")
            before = projected()
            wait_until(lambda: projected() > before, 60, interval_s=0.1, what="the worker to project")
            threading.Event().wait(rng.uniform(0.05, 0.4))
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=10)
    finally:
        stop.set()
        seller.join(timeout=30)

    total = sum(1 for _ in stored_history(app))
    log = tmp_path / "projection.log"
    starts_before = started(log)
    final = start_worker(database_url, reports_url, kafka_settings, log)
    try:
        wait_until(lambda: projected() >= total, 90, interval_s=0.2, what="everything projected")
        # The killed workers may have projected everything already: stop the final one once it runs.
        wait_until(lambda: started(log) > starts_before, 60, interval_s=0.1, what="the final worker to start")
    finally:
        final.send_signal(signal.SIGTERM)
        assert final.wait(timeout=30) == 0

    fresh = Database(str(tmp_path / "rebuilt.db"))
    create_tables(fresh)
    rebuild(fresh, history_source(app))
    assert total > 100
    for name in ("pipeline", "forecast", "accounts"):
        assert REPORTS[name].run(reports, "acme") == REPORTS[name].run(fresh, "acme"), name
