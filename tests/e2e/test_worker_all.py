"""`crmflow worker all`: every worker kind in one process, as an operator runs it on a small machine."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

from crmflow.aggregates.application import CommandRequest, CrmApplication
from crmflow.processes.loader import load_files
from crmflow.processes.registry import DefinitionRegistry
from crmflow.projections.db import Database
from crmflow.projections.projector import create_tables
from crmflow.workers.demo.run import shipped_definition_files
from crmflow.workers.kafka.broker import free_port
from crmflow.workers.kafka.clients import KafkaSettings
from tests.waiting import wait_until
from tests.worker_processes import WorkerProcess, worker_env


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus' text format (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = rf"^{re.escape(name)}{re.escape('{' + wanted + '}') if labels else ''} ([0-9.e+-]+)$"
    found = re.search(pattern, text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_one_process_runs_every_worker_serves_metrics_and_stops_cleanly_on_sigterm(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    store, reports = tmp_path / "crm.db", tmp_path / "reports.db"
    app = CrmApplication(str(store))
    DefinitionRegistry(app).deploy(load_files(shipped_definition_files()), "ops")
    port = free_port()
    env = {**worker_env(str(store), kafka_settings, str(reports)), "CRMFLOW_METRICS_PORT": str(port),
           "CRMFLOW_LAG_INTERVAL_S": "0.5"}  # fmt: skip
    worker = WorkerProcess("all", env, tmp_path / "worker.log")
    try:
        # Web leads come in; the process worker routes them, the projection worker shows them to analysts.
        leads = [app.execute(CommandRequest("lead.create", "acme", {"name": f"Lead {n}", "source": "web"})).aggregate_id
                 for n in range(20)]  # fmt: skip
        db = Database(str(reports))
        create_tables(db)  # the projection worker may not have started yet; it does the same

        def routed() -> bool:
            rows = db.query("SELECT owner FROM rm_leads WHERE tenant = 'acme' AND owner IS NOT NULL")
            return len(rows) == len(leads)

        wait_until(routed, timeout_s=90, what="every lead routed and projected")
        db.close()

        def scrape() -> str:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
                return response.read().decode()

        def figures_in() -> str | None:
            text = scrape()
            caught_up = metric(text, "crmflow_consumer_lag_records", group=f"{kafka_settings.topic_prefix}.process",
                               topic=f"{kafka_settings.topic_prefix}.events")  # fmt: skip
            busy = all(metric(text, "crmflow_events_handled_total", worker=w) > 0 for w in ("relay", "process", "projection"))
            lag_reported = f'group="{kafka_settings.topic_prefix}.process"' in text
            # The timer worker counts the instances on its next tick: each waits for the lead to be contacted.
            counted = metric(text, "crmflow_process_instances", state="waiting") == len(leads)
            return text if busy and lag_reported and caught_up == 0 and counted else None

        text = wait_until(figures_in, timeout_s=30, what="metrics of every busy worker, their lag, the instances")
        assert metric(text, "crmflow_relay_lag_events") == 0
        assert metric(text, "crmflow_command_duration_seconds_count", command="lead.assign", outcome="ok") == len(leads)
        # SIGTERM: each worker finishes the batch in hand and the process exits 0.
        assert worker.stop() == 0
        stopped = {r["event"] for r in worker.records()}
        assert {"relay_stopped", "process_worker_stopped", "projection_worker_stopped", "timer_worker_stopped",
                "intake_stopped"} <= stopped  # fmt: skip
        # The log lines about an event name its tenant, id and correlation id.
        assigned = [r for r in worker.records("process_command")]
        assert len(assigned) == len(leads)
        assert all(r["tenant"] == "acme" and r["event_id"] and r["correlation_id"] for r in assigned)
    finally:
        worker.ensure_gone()
        app.close()
