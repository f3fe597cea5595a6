"""Stored positions the broker no longer has (it lost its data, or retention deleted what was not read yet):
the projection and process workers replay from the earliest offset, say so, and do nothing twice. On both
brokers, so that Apache Kafka's OffsetOutOfRange and the bundled broker's silent empty answer both meet the
policy."""

from __future__ import annotations

from pathlib import Path

import structlog
from kafka import TopicPartition
from kafka.structs import OffsetAndMetadata

from crmflow.aggregates.application import CrmApplication
from crmflow.processes.loader import load_files
from crmflow.processes.registry import DefinitionRegistry
from crmflow.projections.db import Database
from crmflow.projections.projector import create_tables
from crmflow.workers.kafka.clients import KafkaClients
from crmflow.workers.kafka.relay import Relay
from crmflow.workers.run.process_worker import ProcessWorker
from crmflow.workers.run.projection_worker import UPSERT_POSITION, ProjectionWorker
from crmflow.workers.shutdown import StopSignal
from tests.outages import assignments, web_leads, web_leads_in_the_funnel
from tests.waiting import wait_until

DEFINITIONS = Path(__file__).parents[2] / "processes" / "definitions"
FAR_AHEAD = 1_000_000  # a position from the broker's former life, past anything on the topic now
LEADS = 12


def test_workers_whose_positions_are_past_the_end_replay_from_the_earliest_offset_and_do_nothing_twice(
    kafka: KafkaClients, tmp_path: Path
) -> None:
    app = CrmApplication(str(tmp_path / "events.db"))
    DefinitionRegistry(app).deploy(load_files([DEFINITIONS / "web-lead-follow-up.yaml"]), "test")
    reports = Database(str(tmp_path / "reports.db"))
    create_tables(reports)
    topic = kafka.topics.events
    partitions = [TopicPartition(topic, p) for p in range(kafka.settings.partitions)]
    # Both workers remember positions far ahead: the projection's stored with its rows, the process
    # worker's committed in its group.
    with reports.transaction() as cur:
        for tp in partitions:
            cur.execute(UPSERT_POSITION, {"c": "projection", "t": topic, "p": tp.partition, "o": FAR_AHEAD})
    committer = kafka.consumer(group_id=f"{kafka.settings.topic_prefix}.process")
    committer.assign(partitions)
    committer.commit({tp: OffsetAndMetadata(FAR_AHEAD, "", -1) for tp in partitions})
    committer.close()

    leads = web_leads(app, LEADS, 0)
    published = Relay(app, kafka).run(StopSignal(), until_caught_up=True)
    projection, process = ProjectionWorker(reports, kafka), ProcessWorker(app, kafka)
    try:
        with structlog.testing.capture_logs() as logs:

            def every_lead_assigned_and_projected() -> bool:
                process.poll_once()
                projection.poll_once()
                return set(leads) <= assignments(app).keys() and web_leads_in_the_funnel(reports) == LEADS

            wait_until(
                every_lead_assigned_and_projected, 60, interval_s=0, what="the leads handled from the start"
            )
            # The same history once more, as a relay republishing the store would send it.
            again = Relay(app, kafka, name="republish").run(StopSignal(), until_caught_up=True)
            Relay(app, kafka).run(StopSignal(), until_caught_up=True)  # what the process worker stored

            def caught_up() -> bool:
                process.poll_once()
                projection.poll_once()
                return set(projection.lag().values()) == {0}

            wait_until(caught_up, 60, interval_s=0, what="both workers through the republished history")
    finally:
        projection.close()
        process.close()

    replays = [entry for entry in logs if entry["event"] == "consumer_offsets_out_of_range"]
    assert {(entry["group"], entry["partition"]) for entry in replays} >= {
        ("projection", tp.partition) for tp in partitions
    }, "the projection said where it replays from"
    assert {entry["group"] for entry in replays} == {"projection", "process"}
    assert all(entry["stored"] == FAR_AHEAD and entry["beginning"] == 0 for entry in replays), replays
    print("out of range, found by:", sorted({(e["group"], e["found_by"]) for e in replays}))
    assert again >= published > 0
    # Each of the 12 leads assigned once and counted once, though every event came at least twice.
    per_lead = assignments(app)
    assert {lead: per_lead[lead] for lead in leads if per_lead[lead] != 1} == {}
    assert web_leads_in_the_funnel(reports) == LEADS
    reports.close()
    app.close()


def test_the_true_end_of_a_partition_whose_last_batch_is_larger_than_one_poll_is_found(
    kafka: KafkaClients,
) -> None:
    # 1,200 one-byte records sent at once go out in few batches, the last of them larger than one poll hands
    # out (max_poll_records, 500): the end is after the last of them, offset 1,199 + 1 = 1,200, whatever
    # the broker reports (Apache Kafka: exactly that; the bundled broker: the first offset of the last batch).
    partition = TopicPartition(kafka.topics.events, 0)
    for _ in range(1_200):
        kafka.producer.send(partition.topic, value=b"x", partition=0)
    kafka.producer.flush()
    probe = kafka.consumer(group_id=None)
    reported = probe.end_offsets([partition])

    assert kafka.true_ends(reported)[partition] == 1_200
