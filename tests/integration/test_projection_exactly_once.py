"""Each event takes effect in the read models exactly once, whatever Kafka delivers and whoever crashes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from crmflow.aggregates.application import CommandRequest, CrmApplication
from crmflow.projections.db import Database
from crmflow.projections.projector import create_tables, rebuild
from crmflow.projections.reports import REPORTS
from crmflow.workers.history import history_source, stored_history
from crmflow.workers.kafka.clients import KafkaClients
from crmflow.workers.kafka.relay import Relay
from crmflow.workers.run.projection_worker import ProjectionWorker, stored_positions
from crmflow.workers.shutdown import StopSignal
from tests.waiting import wait_until

# With -m slow only (tests/conftest.py): the bundled broker on SQLite, and Apache Kafka on both stores, run by default.
SLOW_VARIANTS = ("bundled-postgres",)


def sales(app: CrmApplication, deals: int = 30) -> None:
    account = str(app.execute(CommandRequest("account.create", "acme", {"name": "Globex"})).aggregate_id)
    for i in range(deals):
        deal = str(app.execute(CommandRequest("opportunity.create", "acme", {
            "account_id": account, "name": f"D{i}", "amount": str(1000 + i), "close_date": "2026-06-30",
            "owner": ["maria", "joe"][i % 2]})).aggregate_id)  # fmt: skip
        if i % 3 == 0:
            app.execute(CommandRequest("opportunity.win", "acme", {"opportunity_id": deal}))
        elif i % 3 == 1:
            app.execute(CommandRequest("opportunity.advance", "acme", {"opportunity_id": deal, "stage": "proposal"}))


def all_reports(db: Database) -> list[Any]:
    return [REPORTS[name].run(db, "acme") for name in ("pipeline", "forecast", "win-rate", "accounts")]


def rebuilt_reports(app: CrmApplication, tmp_path: Path, name: str) -> list[Any]:
    fresh = Database(str(tmp_path / f"{name}.db"))
    create_tables(fresh)
    rebuild(fresh, history_source(app))
    return all_reports(fresh)


def events_on_topic(app: CrmApplication) -> int:
    return sum(1 for _ in stored_history(app))


def drain(worker: ProjectionWorker, db: Database, topic: str, total: int) -> None:
    def done() -> bool:
        worker.poll_once()
        return sum(stored_positions(db, topic).values()) >= total

    wait_until(done, 90, interval_s=0, what=f"{total} messages projected")


def test_the_same_events_delivered_twice_change_nothing(app: CrmApplication, kafka: KafkaClients, reports: Database,
                                                        tmp_path: Path) -> None:  # fmt: skip
    sales(app)
    Relay(app, kafka).run(StopSignal(), until_caught_up=True)
    # The relay publishes everything a second time (say its position was lost).
    Relay(app, kafka, name="relay-again").run(StopSignal(), until_caught_up=True)
    worker = ProjectionWorker(reports, kafka)
    try:
        drain(worker, reports, kafka.topics.events, 2 * events_on_topic(app))
    finally:
        worker.close()
    assert all_reports(reports) == rebuilt_reports(app, tmp_path, "rebuilt")
    assert worker.applied == events_on_topic(app)


class CrashBeforeKafkaCommit:
    """A consumer whose process dies after the rows are stored, before Kafka hears of it."""

    def __init__(self, consumer: Any) -> None:
        self.consumer = consumer

    def __getattr__(self, name: str) -> Any:
        return getattr(self.consumer, name)

    def commit(self, *args: Any, **kwargs: Any) -> None:
        raise SystemExit("killed between storing rows and committing the Kafka offset")


def test_a_worker_killed_between_rows_and_kafka_commit_applies_nothing_twice(
    app: CrmApplication, kafka: KafkaClients, reports: Database, tmp_path: Path
) -> None:
    sales(app)
    Relay(app, kafka).run(StopSignal(), until_caught_up=True)
    doomed = ProjectionWorker(reports, kafka)
    consumer = doomed.consumer
    doomed._consumer = CrashBeforeKafkaCommit(consumer)
    with pytest.raises(SystemExit):
        wait_until(lambda: doomed.poll_once() > 0, 60, interval_s=0, what="a first batch")
    consumer.close(autocommit=False)  # the dead process's connection goes away
    stored_after_crash = sum(stored_positions(reports, kafka.topics.events).values())
    assert stored_after_crash > 0, "the rows and their positions were stored"

    survivor = ProjectionWorker(reports, kafka)  # same group: Kafka never heard of the first batch
    try:
        drain(survivor, reports, kafka.topics.events, events_on_topic(app))
    finally:
        survivor.close()
    # It started from the stored positions, not from Kafka's (empty) commits: nothing was applied twice.
    assert survivor.applied == events_on_topic(app) - stored_after_crash
    assert all_reports(reports) == rebuilt_reports(app, tmp_path, "rebuilt")


def test_two_workers_share_the_partitions_and_a_rebalance_loses_and_doubles_nothing(
    app: CrmApplication, kafka: KafkaClients, reports: Database, tmp_path: Path
) -> None:
    sales(app, deals=20)
    Relay(app, kafka).run(StopSignal(), until_caught_up=True)
    first, second = ProjectionWorker(reports, kafka), ProjectionWorker(reports, kafka)
    try:
        wait_until(lambda: first.poll_once() > 0, 60, interval_s=0, what="the first worker's first batch")
        # The second joins: the group rebalances and the partitions are shared.
        wait_until(lambda: (first.poll_once(), second.poll_once())[1] > 0 or bool(second.consumer.assignment()), 60,
                   interval_s=0, what="the second worker to get partitions")  # fmt: skip
        sales(app, deals=20)  # more sales while both run
        Relay(app, kafka).run(StopSignal(), until_caught_up=True)
        first.close()  # one leaves mid-stream: the other takes over its partitions
        drain(second, reports, kafka.topics.events, events_on_topic(app))
    finally:
        first.close()
        second.close()
    assert first.applied + second.applied == events_on_topic(app)
    assert all_reports(reports) == rebuilt_reports(app, tmp_path, "rebuilt")
