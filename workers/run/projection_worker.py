"""The projection worker: ``<prefix>.events`` → read-model tables, exactly once.

Consumer group ``<prefix>.projection``. The position of every partition
(the next offset to read) is stored in ``rm_positions`` in the same
transaction as the rows the batch changed, and on every assignment (start,
restart, rebalance) the consumer seeks to the stored positions: a crash
between writing rows and committing to Kafka cannot apply an event twice, and
duplicated messages (same CloudEvent id) change nothing.

Through an outage of the database or the broker the worker waits and tries
again (``crmflow.workers.run.resilience``): a batch whose transaction failed is
read again from its first offset once the database answers, and a position the
broker no longer has is replayed from the partition's earliest offset (the
``seen`` table drops what was applied before).
"""

from __future__ import annotations

from typing import Any

import structlog

from crmflow.projections.db import Database
from crmflow.projections.projector import apply, create_tables
from crmflow.workers.kafka.clients import GroupMember, KafkaClients, decoded_events, topic_partitions
from crmflow.workers.metrics import EVENTS_HANDLED
from crmflow.workers.run.resilience import TRANSIENT, run_steps
from crmflow.workers.shutdown import StopSignal

log = structlog.get_logger("crmflow.projections")
CONSUMER = "projection"


UPSERT_POSITION = (
    "INSERT INTO rm_positions (consumer, topic, part, next_offset) VALUES (%(c)s, %(t)s, %(p)s, %(o)s) "
    "ON CONFLICT (consumer, topic, part) DO UPDATE SET next_offset = %(o)s"
)


def stored_positions(db: Database, topic: str) -> dict[int, int]:
    rows = db.query("SELECT part, next_offset FROM rm_positions WHERE consumer = %(c)s AND topic = %(t)s", {"c": CONSUMER, "t": topic})
    return {int(r["part"]): int(r["next_offset"]) for r in rows}


class ProjectionWorker(GroupMember):
    group_kind = CONSUMER
    auto_offset_reset = "none"  # out-of-range positions reach GroupMember.poll's replay policy

    def __init__(self, db: Database, kafka: KafkaClients) -> None:
        self.db = db
        self.kafka = kafka
        self.topic = kafka.topics.events
        self.applied = 0
        self.handled = 0  # records committed since start, applied or found seen before
        self.failed = False  # the last batch's transaction failed: try the database before polling again
        create_tables(db)

    def group_topic(self) -> str:
        return self.topic

    def on_assigned(self, partitions: list[Any]) -> None:
        """Continue from the positions stored with the rows, not from Kafka's."""
        positions = stored_positions(self.db, self.topic)
        for tp in partitions:
            if tp.partition in positions:
                self.consumer.seek(tp, positions[tp.partition])
            else:
                self.consumer.seek_to_beginning(tp)

    def on_replay(self, tp: Any, offset: int) -> None:
        """The stored position is gone from the broker: store where the replay starts, so lag reads true."""
        with self.db.transaction() as cur:
            cur.execute(UPSERT_POSITION, {"c": CONSUMER, "t": tp.topic, "p": tp.partition, "o": offset})

    def poll_once(self, timeout_ms: int = 200) -> int:
        if self.failed:
            # Idle polls prove nothing about the database: ask it before the backoff starts again.
            self.db.query("SELECT 1 AS up")
            self.failed = False
        batches = self.poll(timeout_ms)
        records = [r for batch in batches.values() for r in batch]
        if not records:
            return 0
        applied = 0
        try:
            with self.db.transaction() as cur:
                for event in decoded_events(records):
                    applied += apply(cur, event)
                for tp, batch in batches.items():
                    cur.execute(UPSERT_POSITION, {"c": CONSUMER, "t": tp.topic, "p": tp.partition,
                                                  "o": batch[-1].offset + 1})  # fmt: skip
        except TRANSIENT:
            # Nothing of the batch was stored (or, if the commit was lost on its way back, all of it,
            # which the seen table makes harmless): read it again.
            self.failed = True
            held = self.consumer.assignment()
            for tp, batch in batches.items():
                if tp in held:
                    self.consumer.seek(tp, batch[0].offset)
            raise
        self.applied += applied
        # Kafka's committed offsets only serve lag monitoring; the database is the truth.
        self.commit(len(records))
        self.handled += len(records)
        EVENTS_HANDLED.labels(worker="projection").inc(len(records))
        return len(records)

    def lag(self) -> dict[int, int]:
        """Events on the topic not yet in the read models, per partition."""
        probe = self.kafka.consumer(group_id=None)
        partitions = topic_partitions(probe, self.topic)
        ends = probe.end_offsets(partitions) if partitions else {}
        probe.close()
        positions = stored_positions(self.db, self.topic)
        doubtful = {tp: end for tp, end in ends.items() if positions.get(tp.partition, 0) > end}
        if doubtful:
            ends.update(self.kafka.true_ends(doubtful))
        return {tp.partition: ends[tp] - positions.get(tp.partition, 0) for tp in partitions}

    def run(self, stop: StopSignal) -> None:
        log.info("projection_worker_started", topic=self.topic)
        try:
            run_steps(self.poll_once, stop, worker="projection", doing="projecting")
        finally:
            self.close()
        log.info("projection_worker_stopped", applied=self.applied)
