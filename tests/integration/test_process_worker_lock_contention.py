"""SQLite under contention: a process worker that finds the store's write lock held past the busy timeout
waits and tries again; it never exits, and what it handles once the lock is free is handled once."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import structlog
from prometheus_client import REGISTRY

from crmflow.aggregates.application import CommandRequest, CrmApplication
from crmflow.processes.loader import load_files
from crmflow.processes.registry import DefinitionRegistry
from crmflow.workers.kafka.clients import KafkaClients
from crmflow.workers.kafka.relay import Relay
from crmflow.workers.run.process_worker import ProcessWorker
from crmflow.workers.shutdown import StopSignal
from tests.waiting import run_in_background, wait_until

DEFINITIONS = Path(__file__).parents[2] / "processes" / "definitions"


def lock_waits() -> float:
    return REGISTRY.get_sample_value("crmflow_store_lock_waits_total", {"worker": "process"}) or 0.0


def test_a_worker_under_lock_contention_waits_and_does_not_exit(kafka: KafkaClients, tmp_path: Path) -> None:
    store = tmp_path / "events.db"
    # A busy timeout of 1 s instead of crmflow's 10 s (crmflow.aggregates.store), so that the lock outlasts
    # it twice within a few seconds.
    app = CrmApplication(str(store), env={"SQLITE_LOCK_TIMEOUT": "1"})
    DefinitionRegistry(app).deploy(load_files(sorted(DEFINITIONS.glob("*.yaml"))), "ada")
    leads = [str(app.execute(CommandRequest("lead.create", "acme", {"name": f"L{n}", "source": "web"})).aggregate_id)
             for n in range(5)]  # fmt: skip
    Relay(app, kafka).run(StopSignal(), until_caught_up=True)
    worker = ProcessWorker(app, kafka)

    def owners() -> list[str | None]:
        return [app.state(lead, "acme")["owner"] for lead in leads]

    # Another connection takes the write lock and keeps it: WAL readers go on, every writer waits.
    holder = sqlite3.connect(store, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    before = lock_waits()
    stop = StopSignal()
    with structlog.testing.capture_logs() as logs:
        thread, escaped = run_in_background(worker, stop)
        try:
            wait_until(lambda: lock_waits() >= before + 2 or escaped, 90, interval_s=0.1,
                       what="the worker to wait past the busy timeout twice")  # fmt: skip
            assert not escaped, f"the worker exited: {escaped}"
            assert owners() == [None] * len(leads), "nothing was stored while the lock was held"
            holder.execute("ROLLBACK")
            wait_until(lambda: None not in owners() or escaped, 60, interval_s=0.1, what="every lead assigned")
        finally:
            holder.close()
            stop.set()
            thread.join(timeout=30)
    try:
        assert not escaped and not thread.is_alive(), "the worker stopped when asked to, not on the lock"
        locked = [entry for entry in logs if entry["event"] == "store_locked"]
        assert len(locked) >= 2 and lock_waits() >= before + 2
        assert {(e["worker"], e["doing"]) for e in locked} == {("process", "handling events")}
        assert all("database is locked" in e["error"] for e in locked)
        histories = [[h.type for h in app.history(lead, "acme")] for lead in leads]
        assert [h.count("LeadAssigned") for h in histories] == [1] * len(leads), "the batch was handled again, once"
    finally:
        app.close()
