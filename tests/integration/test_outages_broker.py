"""A broker that lost its data: the bundled broker (memory only) is killed while the process and projection
workers run and started again, empty. The workers do not exit; their positions are past the new partitions'
ends, so they replay from the earliest offset; the republished history is dropped by event id (nothing is
assigned or projected twice), and the work published after the restart is done."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from crmflow.aggregates.application import CrmApplication
from crmflow.processes.loader import load_files
from crmflow.processes.registry import DefinitionRegistry
from crmflow.projections.db import Database
from crmflow.workers.history import stored_history
from crmflow.workers.kafka.broker import BUNDLED_BROKER_TUNING, LocalBroker
from crmflow.workers.kafka.clients import KafkaClients, KafkaSettings
from crmflow.workers.kafka.relay import Relay
from crmflow.workers.run.projection_worker import ProjectionWorker
from crmflow.workers.shutdown import StopSignal
from tests.outages import (
    Fleet,
    assignments,
    reports_differing_from_a_rebuild,
    watch,
    web_leads,
    web_leads_in_the_funnel,
)
from tests.waiting import read_topic, wait_until
from tests.worker_processes import worker_env

DEFINITIONS = Path(__file__).parents[2] / "processes" / "definitions"
BEFORE, AFTER = 40, 30  # web leads handled before the broker is lost, and stored after it is back
DOWN_S = 3.0


def projected_to_the_end(reports: Database, kafka: KafkaClients) -> bool:
    """No partition of the events topic behind. The broker may have made the topic itself, with its own
    partition count, when the running workers asked for it: every partition it has, however many."""
    lag = ProjectionWorker(reports, kafka).lag()
    return bool(lag) and set(lag.values()) == {0}


def relay_everything(app: CrmApplication, kafka: KafkaClients, name: str = "relay") -> int:
    return Relay(app, kafka, name=name).run(StopSignal(), until_caught_up=True)


# Who reaches the new, empty broker first. The running workers, as on a loaded machine (CI at 33eb24e): their
# metadata requests make the bundled broker create the events topic itself, with its own partition count (4,
# not 6), and their groups take them back with the partitions they still hold (a rebalance that adds none).
# Or a starting worker's ensure_topics: the topics have crmflow's 6 partitions, and the running workers lose
# their membership and are given every partition again.
@pytest.mark.parametrize("first_back", ["the running workers", "a starting worker"])
def test_workers_survive_a_broker_that_lost_its_data_replay_from_the_earliest_offset_and_do_nothing_twice(
    first_back: str,
    app: CrmApplication, database_url: str, reports: Database, tmp_path: Path
) -> None:
    DefinitionRegistry(app).deploy(load_files([DEFINITIONS / "web-lead-follow-up.yaml"]), "test")
    # The projection worker writes where the `reports` fixture reads: beside the store, or in the same DB.
    reports_url = database_url if database_url.startswith("postgresql") else str(tmp_path / "reports.db")
    broker = LocalBroker(log_file=tmp_path / "broker.log").start()
    settings = KafkaSettings(bootstrap_servers=broker.bootstrap_servers, topic_prefix="outage", partitions=6,
                             **BUNDLED_BROKER_TUNING)  # fmt: skip
    env = worker_env(database_url, settings, reports_url)
    logs = tmp_path / "logs"
    logs.mkdir()
    fleet: Fleet | None = None
    try:
        with KafkaClients(settings, name="test-before") as kafka:
            kafka.ensure_topics()
            fleet = Fleet(["process", "projection"], env, logs)
            leads = web_leads(app, BEFORE, 0)
            relay_everything(app, kafka)

            def first_leads_assigned() -> bool:
                fleet.all_alive()
                return set(leads) <= assignments(app).keys()

            wait_until(first_leads_assigned, 60, interval_s=0.25, what="the first leads assigned")
            relay_everything(app, kafka)

            def first_leads_projected() -> bool:
                fleet.all_alive()
                return web_leads_in_the_funnel(reports) == BEFORE and projected_to_the_end(reports, kafka)

            wait_until(first_leads_projected, 60, interval_s=0.25, what="the first leads projected")
        joins_before = {w.kind: len(w.records("partitions_assigned")) for w in fleet.workers}

        assert broker.process is not None
        os.killpg(broker.process.pid, signal.SIGKILL)  # kill -9: everything it held is gone
        broker.process.wait(timeout=10)
        watch(DOWN_S, fleet.all_alive)
        broker = LocalBroker(port=broker.port, log_file=tmp_path / "broker-restarted.log").start()

        def both_rejoined() -> bool:
            fleet.all_alive()
            return all(len(w.records("partitions_assigned")) > joins_before[w.kind] for w in fleet.workers)

        if first_back == "the running workers":
            wait_until(both_rejoined, 120, interval_s=0.25, what="both workers back in their groups")
        with KafkaClients(settings, name="test-after") as kafka:
            kafka.ensure_topics()  # as the first worker or relay started against the new broker does

            def both_rejoined_and_the_projection_replays() -> bool:
                replaying = fleet.of("projection").records("consumer_offsets_out_of_range")
                return both_rejoined() and bool(replaying)

            # Each worker first has to find its broker gone and the new one empty (its session, a metadata
            # refresh, a rejoin): on a loaded machine that alone has taken most of a minute.
            wait_until(
                both_rejoined_and_the_projection_replays,
                120,
                interval_s=0.25,
                what="both workers back in their groups, the projection replaying from the start",
            )
            leads += web_leads(app, AFTER, BEFORE)
            # The relay's republish of the store after the broker lost it (a relay tracking from zero), then
            # the relay as it runs: its tracked position is in the store, so it publishes the new leads only.
            republished = relay_everything(app, kafka, name="republish-after-data-loss")
            relay_everything(app, kafka)

            def every_lead_assigned() -> bool:
                fleet.all_alive()
                return set(leads) <= assignments(app).keys()

            wait_until(
                every_lead_assigned, 60, interval_s=0.25, what="the leads stored after the restart assigned"
            )
            relay_everything(app, kafka)  # what the process worker stored meanwhile

            def everything_projected() -> bool:
                fleet.all_alive()
                return web_leads_in_the_funnel(reports) == len(leads) and projected_to_the_end(reports, kafka)

            wait_until(everything_projected, 60, interval_s=0.25, what="every event projected")
            on_the_topic = {orjson.loads(r.value)["id"] for r in read_topic(kafka, kafka.topics.events)}
        status = subprocess.run([sys.executable, "-m", "crmflow", "projections", "status"], env=env,
                                capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
        out_of_range = fleet.of("projection").records("consumer_offsets_out_of_range")
        codes = fleet.stop()
    finally:
        if fleet is not None:
            fleet.ensure_gone()
        broker.stop()

    assert codes == {"process": 0, "projection": 0}, [w.describe() for w in fleet.workers]
    # The projection's stored positions were past the empty partitions' ends, and it said so.
    assert all(r["stored"] > r["end"] and r["beginning"] == 0 for r in out_of_range), out_of_range
    # The new topic holds the whole history again (the events handled before the loss among them).
    assert {document["id"] for document in stored_history(app)} <= on_the_topic
    assert republished > 0
    # 40 + 30 = 70 web leads, each assigned once: the replayed LeadCreated events started no second instance.
    per_lead = assignments(app)
    assert len(leads) == 70
    assert {lead: per_lead[lead] for lead in leads if per_lead[lead] != 1} == {}
    # ... and projected once: the replayed events were dropped by their ids.
    assert web_leads_in_the_funnel(reports) == 70
    assert reports_differing_from_a_rebuild(reports, app, tmp_path / "rebuilt.db") == []
    assert status.returncode == 0, status.stderr
    assert "projection lag: 0 events behind" in " ".join(status.stdout.split()), status.stdout
    assert not re.search(r"│\s*-\d", status.stdout), f"a negative lag:\n{status.stdout}"
