"""What the relay remembers of the events topic, to tell when the broker lost its data.

Per partition, a *mark*: the first offset Kafka acknowledged in the relay's
latest batch there. A broker that kept its data never moves a partition's end
offset back below it (retention and compaction delete records, not offsets;
brokers differ only in how far past it they report the end: Apache Kafka
after the last record, the bundled broker after the start of the last batch
written), so an end offset at or below the mark, a marked partition gone, or
an acknowledgement at or below the last one means the topic is not the one
the relay published to: a memory broker restarted, or the topic was deleted
and created again. The relay then publishes the store again from the start, in a new *epoch*: a
tracking name of its own, so that the republish survives a restart of the
relay too (the store's tracking table only ever moves forward).
"""

from __future__ import annotations

from crmflow.workers.kafka.parking import StoreSql, now_utc

OFFSETS_TABLE = "crmflow_relay_offsets"
EPOCHS_TABLE = "crmflow_relay_epochs"


class RelayMarks:
    """The acknowledged offsets and the epoch of one relay name."""

    def __init__(self, sql: StoreSql, relay: str) -> None:
        self.sql = sql
        self.relay = relay
        self.offsets_table = sql.table(OFFSETS_TABLE)
        self.epochs_table = sql.table(EPOCHS_TABLE)
        sql.create(
            f"CREATE TABLE IF NOT EXISTS {self.offsets_table} (relay TEXT NOT NULL, topic TEXT NOT NULL, "
            "kafka_partition INTEGER NOT NULL, acked_offset BIGINT NOT NULL, "
            "PRIMARY KEY (relay, topic, kafka_partition))"
        )
        sql.create(
            f"CREATE TABLE IF NOT EXISTS {self.epochs_table} (relay TEXT PRIMARY KEY, "
            "epoch INTEGER NOT NULL, started_at TEXT NOT NULL, reason TEXT NOT NULL)"
        )

    def offsets(self, topic: str) -> dict[int, int]:
        rows = self.sql.rows(
            f"SELECT kafka_partition, acked_offset FROM {self.offsets_table} WHERE relay = ? AND topic = ?",
            (self.relay, topic),
        )
        return {int(r["kafka_partition"]): int(r["acked_offset"]) for r in rows}

    def save_offsets(self, topic: str, offsets: dict[int, int]) -> None:
        with self.sql.cursor() as cursor:
            for partition, offset in offsets.items():
                cursor.execute(
                    f"INSERT INTO {self.offsets_table} (relay, topic, kafka_partition, acked_offset) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (relay, topic, kafka_partition) "
                    "DO UPDATE SET acked_offset = excluded.acked_offset".replace("?", self.sql.mark),
                    (self.relay, topic, partition, offset),
                )

    def epoch(self) -> int | None:
        """The relay's epoch (None: it never had to republish everything)."""
        rows = self.sql.rows(f"SELECT epoch FROM {self.epochs_table} WHERE relay = ?", (self.relay,))
        return int(rows[0]["epoch"]) if rows else None

    def start_epoch(self, topic: str, reason: str) -> int:
        """Begin the next epoch, forgetting the marks: the relay then publishes from the start."""
        epoch = (self.epoch() or 0) + 1
        with self.sql.cursor() as cursor:
            mark = self.sql.mark
            cursor.execute(f"DELETE FROM {self.offsets_table} WHERE relay = {mark} AND topic = {mark}",
                           (self.relay, topic))  # fmt: skip
            cursor.execute(f"DELETE FROM {self.epochs_table} WHERE relay = {mark}", (self.relay,))
            cursor.execute(f"INSERT INTO {self.epochs_table} (relay, epoch, started_at, reason) "
                           f"VALUES ({mark}, {mark}, {mark}, {mark})",
                           (self.relay, epoch, now_utc().isoformat(), reason))  # fmt: skip
        return epoch


def tracking_name(relay: str, epoch: int | None) -> str:
    """The name the relay's position is tracked under: its own name, then ``relay@2``, ``relay@3``..."""
    return relay if not epoch else f"{relay}@{epoch + 1}"


def lost_data_reason(ends: dict[int, int] | None, marked: dict[int, int], *, position: int,
                     never_marked: bool) -> str | None:  # fmt: skip
    """Why the topic no longer holds what the relay published, or None if it does.

    ``ends`` is the topic's end offset per partition (None: the topic is gone).
    ``never_marked``: this relay has no marks and no epoch yet (a store relayed
    before marks were kept); then only an empty topic behind a position counts.
    """
    if ends is None:
        return "the events topic is gone" if marked or position else None
    for partition, offset in sorted(marked.items()):
        if partition not in ends:
            return f"partition {partition} is gone (Kafka had acknowledged offset {offset} there)"
        if ends[partition] <= offset:
            return (f"partition {partition} ends at offset {ends[partition]}, "
                    f"but Kafka had acknowledged a record at offset {offset} there")  # fmt: skip
    if never_marked and position > 0 and not marked and sum(ends.values()) == 0:
        return f"the events topic is empty, but the relay's position is notification {position}"
    return None
