"""Scale-out under fire: two process workers and two projection workers share their groups' partitions;
one of each is killed (SIGKILL) while web leads keep coming, the survivors take over, and nothing is lost
or done twice."""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import structlog
from eventsourcing.utils import get_topic

from crmflow.aggregates.application import CommandRequest, CrmApplication
from crmflow.aggregates.lead import Lead
from crmflow.processes.instance import instance_id
from crmflow.processes.loader import load_files
from crmflow.processes.registry import DefinitionRegistry
from crmflow.processes.runtime import StoredInstances
from crmflow.projections.db import Database
from crmflow.projections.projector import create_tables, rebuild
from crmflow.projections.reports import REPORTS
from crmflow.workers.history import history_source, stored_history
from crmflow.workers.kafka.clients import KafkaClients, KafkaSettings
from crmflow.workers.kafka.relay import Relay
from crmflow.workers.run.projection_worker import stored_positions
from crmflow.workers.shutdown import StopSignal
from tests.waiting import read_topic, wait_until
from tests.worker_processes import WorkerProcess, worker_env

log = structlog.get_logger("tests.scale_out")

DEFINITIONS = Path(__file__).parents[2] / "processes" / "definitions"
# With -m slow only (tests/conftest.py): the bundled broker on SQLite, and Apache Kafka on both stores, run by default.
SLOW_VARIANTS = ("bundled-postgres",)
TENANT = "acme"
PROCESS = "web-lead-follow-up"  # one LeadAssigned per web lead, round-robin
LEAD_ASSIGNED = get_topic(Lead.LeadAssigned)
LEADS_AFTER_THE_KILL = 200  # at least; they keep coming until the groups have rebalanced


class Background(threading.Thread):
    """A thread whose failure the test sees, instead of a silent stop."""

    def __init__(self, work: Callable[[], None], name: str) -> None:
        super().__init__(name=name, daemon=True)
        self.work = work
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.work()
        except BaseException as error:  # noqa: BLE001 - raised again by check()
            self.error = error

    def check(self) -> None:
        if self.error is not None:
            raise AssertionError(f"the {self.name} thread failed: {self.error!r}") from self.error


class WebForm:
    """Web leads of one tenant, arriving in small batches until stopped."""

    def __init__(self, app: CrmApplication, *, batch: int = 10, pause_s: float = 0.2) -> None:
        self.app = app
        self.batch = batch
        self.pause_s = pause_s
        self.most = 5000  # a cap, should the test never say stop
        self.leads: list[str] = []
        self.stop = StopSignal()

    def send(self) -> None:
        while not self.stop.is_set() and len(self.leads) < self.most:
            n = len(self.leads)
            requests = [CommandRequest("lead.create", TENANT, {"name": f"Web lead {n + k}", "source": "web"},
                                       caller="web-form") for k in range(self.batch)]  # fmt: skip
            self.leads.extend(str(result.aggregate_id) for result in self.app.execute_batch(requests))
            self.stop.wait(self.pause_s)


class Assignments:
    """LeadAssigned events in the store's notification log, counted per lead as they appear."""

    def __init__(self, app: CrmApplication) -> None:
        self.app = app
        self.position = 0
        self.per_lead: Counter[str] = Counter()

    def read(self) -> Counter[str]:
        while notifications := self.app.recorder.select_notifications(
            start=self.position + 1, limit=1000, topics=[LEAD_ASSIGNED]
        ):
            self.per_lead.update(str(n.originator_id) for n in notifications)
            self.position = notifications[-1].id
        return self.per_lead


def moment(record: dict[str, object]) -> datetime:
    return datetime.fromisoformat(str(record["timestamp"]))


def commanded_partitions(worker: WorkerProcess, partition_of_instance: dict[str, int],
                         since: datetime, until: datetime | None = None) -> set[int]:  # fmt: skip
    """The partitions of the leads a process worker issued commands for, between two moments."""
    return {partition_of_instance[str(r["instance"])] for r in worker.records("process_command")
            if since <= moment(r) and (until is None or moment(r) < until)}  # fmt: skip


def first_command_at(worker: WorkerProcess) -> datetime | None:
    commands = worker.records("process_command")
    return moment(commands[0]) if commands else None


def last_assignment(worker: WorkerProcess) -> list[int]:
    """The partitions a worker holds after its last assignment or revocation (it logs each)."""
    changes = [r for r in worker.records() if r.get("event") in ("partitions_assigned", "partitions_revoked")]
    return list(changes[-1]["partitions"]) if changes else []


def test_two_process_and_two_projection_workers_share_the_work_and_lose_nothing_when_one_of_each_is_killed(
    app: CrmApplication, database_url: str, reports: Database, kafka: KafkaClients,
    kafka_settings: KafkaSettings, tmp_path: Path,
) -> None:
    DefinitionRegistry(app).deploy(load_files(sorted(DEFINITIONS.glob("*.yaml"))), "test")
    # The projection workers write where the `reports` fixture reads: beside the store, or in the same DB.
    reports_url = database_url if database_url.startswith("postgresql") else str(tmp_path / "reports.db")
    topic = kafka.topics.events
    every_partition = set(range(kafka_settings.partitions))
    web = WebForm(app)
    relaying = StopSignal()

    def publish() -> None:
        Relay(app, kafka).run(relaying, idle_wait_s=0.02)

    feeder, relay = Background(web.send, "web-form"), Background(publish, "relay")
    env = worker_env(database_url, kafka_settings, reports_url)
    workers: list[WorkerProcess] = []
    try:
        for kind in ("process", "projection"):
            workers += [WorkerProcess(kind, env, tmp_path / f"{kind}-{n}.log") for n in (1, 2)]
        processes, projections = workers[:2], workers[2:]
        victim, survivor = processes
        projection_victim, projection_survivor = projections
        relay.start()
        feeder.start()

        def survivors_alive() -> None:
            feeder.check()
            relay.check()
            for worker in (survivor, projection_survivor):
                assert worker.alive, worker.describe()

        def both_groups_share_the_work() -> bool:
            survivors_alive()
            starts = [first_command_at(worker) for worker in processes]
            if None in starts:
                return False
            # From the moment both process workers acted, each held a share of the partitions.
            both_since = max(s for s in starts if s is not None)
            shares = [sum(moment(r) >= both_since for r in w.records("process_command")) for w in processes]
            projected = sum(stored_positions(reports, topic).values())
            return min(shares) >= 20 and all(last_assignment(w) for w in projections) and projected > 0

        wait_until(both_groups_share_the_work, 90, interval_s=0.2, what="both groups to share the partitions")
        both_since = max(first_command_at(worker) for worker in processes)  # type: ignore[type-var]
        threading.Event().wait(random.Random(7).uniform(0.05, 0.4))  # most likely inside some batch
        assert victim.alive and projection_victim.alive, "the workers to kill were still running"
        projection_victim_held = last_assignment(projection_victim)
        killed_at = datetime.now(timezone.utc)
        victim.kill()
        projection_victim.kill()
        leads_at_kill = len(web.leads)
        log.info("workers_killed", leads_so_far=leads_at_kill)

        def leads_kept_coming_until_the_groups_rebalanced() -> bool:
            survivors_alive()
            taken_over = set(last_assignment(projection_survivor)) == every_partition
            return taken_over and len(web.leads) >= leads_at_kill + LEADS_AFTER_THE_KILL

        wait_until(leads_kept_coming_until_the_groups_rebalanced, 60, interval_s=0.1,
                   what="the survivors to take over while leads keep coming")  # fmt: skip
        web.stop.set()
        feeder.join(timeout=30)
        feeder.check()
        leads = list(web.leads)
        expected = {instance_id(TENANT, PROCESS, lead): lead for lead in leads}
        assignments, instances = Assignments(app), StoredInstances(app)

        def every_lead_assigned_and_every_instance_saved() -> bool:
            survivors_alive()
            instances.refresh()
            return expected.keys() <= instances.instances.keys() and set(leads) <= set(assignments.read())

        wait_until(every_lead_assigned_and_every_instance_saved, 90, interval_s=0.25,
                   what="every lead assigned by the survivors")  # fmt: skip
        relaying.set()
        relay.join(timeout=30)
        relay.check()
        Relay(app, kafka).run(StopSignal(), until_caught_up=True)  # whatever the last moments stored

        records = read_topic(kafka, topic, at_least=sum(1 for _ in stored_history(app)), timeout_s=60)
        ends: dict[int, int] = {}
        for record in records:
            ends[record.partition] = max(ends.get(record.partition, 0), record.offset + 1)

        def every_partition_projected() -> bool:
            survivors_alive()
            return stored_positions(reports, topic) == ends

        wait_until(every_partition_projected, 90, interval_s=0.25, what="every partition projected")
        for worker in (survivor, projection_survivor):
            assert worker.stop() == 0, worker.describe()
    finally:
        web.stop.set()
        relaying.set()
        for worker in workers:
            worker.ensure_gone()
        for thread in (feeder, relay):
            if thread.ident is not None:  # started
                thread.join(timeout=30)

    # Nothing lost, nothing done twice: one LeadAssigned per lead, in the notification log and in its history.
    assert len(leads) >= 300
    per_lead = assignments.read()
    assert {lead: per_lead[lead] for lead in leads if per_lead[lead] != 1} == {}, "assigned other than once"
    owners = {}
    for lead in leads:
        assigned = [entry for entry in app.history(lead, TENANT) if entry.type == "LeadAssigned"]
        assert len(assigned) == 1, f"lead {lead} has {len(assigned)} LeadAssigned events in its history"
        owners[lead] = assigned[0].data["owner"]
    # Every instance went on to wait for contact, believing in the owner its lead really has.
    states = {i.id: i for i in instances.instances.values() if i.definition == PROCESS}
    assert states.keys() == expected.keys()
    unexpected = {expected[i.id]: (i.status, i.step, i.error) for i in states.values()
                  if (i.status, i.step) != ("waiting", "wait-contact")}  # fmt: skip
    assert unexpected == {}, f"{len(unexpected)} not waiting for contact, e.g. {list(unexpected.items())[:3]}"
    assert {expected[i.id]: i.vars["owner"] for i in states.values()} == owners

    # Nothing doubled in the read models: what the live workers built equals a rebuild from the store.
    fresh = Database(str(tmp_path / "rebuilt.db"))
    try:
        create_tables(fresh)
        rebuild(fresh, history_source(app))
        for name, report in REPORTS.items():
            assert report.run(reports, TENANT) == report.run(fresh, TENANT), f"{name} differs from a rebuild"
    finally:
        fresh.close()
    funnel = REPORTS["funnel"].run(reports, TENANT)
    assert sum(row["leads"] for row in funnel if row["source"] == "web") == len(leads)

    # Both survivors worked, and took over what the killed workers held.
    partition_of_lead = {r.key.decode(): r.partition for r in records if r.key}
    partition_of_instance = {i: partition_of_lead[lead] for i, lead in expected.items()}
    victim_before = commanded_partitions(victim, partition_of_instance, both_since, killed_at)
    survivor_before = commanded_partitions(survivor, partition_of_instance, both_since, killed_at)
    survivor_after = commanded_partitions(survivor, partition_of_instance, killed_at)
    # Commands show only the partitions that had leads to act on: what each worker was seen to own.
    log.info("process_partitions_moved", killed_worker_before=sorted(victim_before),
             survivor_before=sorted(survivor_before), survivor_after=sorted(survivor_after))  # fmt: skip
    log.info("projection_partitions_moved", killed_worker_before=sorted(projection_victim_held),
             survivor_after=sorted(last_assignment(projection_survivor)))  # fmt: skip
    assert victim_before and survivor_before, "both process workers issued commands before the kill"
    assert survivor_after == every_partition, "the surviving process worker took over every partition"
    assert projection_victim_held and set(projection_victim_held) < every_partition
    assert set(last_assignment(projection_survivor)) == every_partition
    assert set(stored_positions(reports, topic)) == every_partition
