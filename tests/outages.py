"""What the outage tests share: worker processes watched through an outage, web leads, their assignments,
and the checks that every event was handled once."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from eventsourcing.utils import get_topic

from crmflow.aggregates.application import CommandRequest, CrmApplication
from crmflow.aggregates.lead import Lead
from crmflow.projections.db import Database
from crmflow.projections.projector import create_tables, rebuild
from crmflow.projections.reports import REPORTS
from crmflow.workers.history import history_source
from crmflow.workers.kafka.clients import KafkaClients
from crmflow.workers.run.projection_worker import ProjectionWorker
from tests.worker_processes import WorkerProcess

TENANT = "acme"
LEAD_ASSIGNED = get_topic(Lead.LeadAssigned)


class Fleet:
    """`crmflow worker KIND` processes that must all stay up, whatever happens to their services."""

    def __init__(self, kinds: list[str], env: dict[str, str], logs: Path, options: tuple[str, ...] = ()) -> None:
        self.workers = [WorkerProcess(kind, env, logs / f"{n}-{kind}.log", options)
                        for n, kind in enumerate(kinds)]  # fmt: skip

    def all_alive(self) -> None:
        for worker in self.workers:
            assert worker.alive, f"a worker exited: {worker.describe()}"

    def of(self, kind: str) -> WorkerProcess:
        return next(w for w in self.workers if w.kind == kind)

    def stop(self) -> dict[str, int]:
        """SIGTERM to each; their exit codes (0: a clean stop, not a failure)."""
        return {worker.kind: worker.stop() for worker in self.workers}

    def ensure_gone(self) -> None:
        for worker in self.workers:
            worker.ensure_gone()


def watch(seconds: float, check: Callable[[], None], interval_s: float = 0.2) -> None:
    """Keep checking for ``seconds`` (an outage's length, not a wait for something to happen)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        check()
        time.sleep(interval_s)
    check()


def web_leads(app: CrmApplication, count: int, first: int) -> list[str]:
    requests = [
        CommandRequest("lead.create", TENANT, {"name": f"Web lead {n}", "source": "web"}, caller="web-form")
        for n in range(first, first + count)
    ]
    return [str(result.aggregate_id) for result in app.execute_batch(requests)]


def assignments(app: CrmApplication) -> Counter[str]:
    """LeadAssigned events per lead, as stored."""
    per_lead: Counter[str] = Counter()
    position = 0
    while notifications := app.recorder.select_notifications(
        start=position + 1, limit=1000, topics=[LEAD_ASSIGNED]
    ):
        per_lead.update(str(n.originator_id) for n in notifications)
        position = notifications[-1].id
    return per_lead


def projected_to_the_end(reports: Database, kafka: KafkaClients) -> bool:
    """No partition behind: every stored position is its partition's end (what `projections status` shows)."""
    lag = ProjectionWorker(reports, kafka).lag()
    return len(lag) == kafka.settings.partitions and set(lag.values()) == {0}


def reports_differing_from_a_rebuild(reports: Database, app: CrmApplication, scratch: Path) -> list[str]:
    """Nothing applied twice or missed: the live read models equal a rebuild from the store."""
    fresh = Database(str(scratch))
    try:
        create_tables(fresh)
        rebuild(fresh, history_source(app))
        return [
            name
            for name, report in REPORTS.items()
            if report.run(reports, TENANT) != report.run(fresh, TENANT)
        ]
    finally:
        fresh.close()


def web_leads_in_the_funnel(reports: Database) -> int:
    return sum(row["leads"] for row in REPORTS["funnel"].run(reports, TENANT) if row["source"] == "web")
