"""The position check after a rebalance: a membership lost halfway through it is not a worker failure."""

from __future__ import annotations

from typing import Any

from kafka import TopicPartition

from crmflow.workers.kafka.clients import GroupMember

HELD = [TopicPartition("crmflow.events", p) for p in range(3)]


class ConsumerThatLosesItsMembership:
    """kafka-python's ``position`` asks the coordinator first; when the broker is gone, the group
    membership is lost during that call and the assignment emptied, so the lookup that follows fails."""

    def __init__(self, lose_at: TopicPartition) -> None:
        self.held = set(HELD)
        self.lose_at = lose_at
        self.seeks: list[tuple[TopicPartition, int]] = []

    def assignment(self) -> set[TopicPartition]:
        return set(self.held)

    def position(self, tp: TopicPartition) -> int:
        if tp == self.lose_at:
            self.held.clear()
            raise KeyError(tp)
        return 5

    def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: 5 for tp in partitions}

    def beginning_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        # Retention deleted partition 2 up to offset 6, past the member's position 5.
        return {tp: 6 if tp.partition == 2 else 0 for tp in partitions}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append((tp, offset))


def member_with(consumer: Any) -> GroupMember:
    member = GroupMember()
    member.group_kind = "projection"
    member._consumer = consumer
    member._unchecked = set(HELD)
    member._checked_at = 0.0
    return member


def test_a_membership_lost_while_positions_are_checked_skips_the_lost_partitions_and_replays_nothing() -> None:
    consumer = ConsumerThatLosesItsMembership(lose_at=HELD[1])
    member = member_with(consumer)
    member._check_positions()
    assert consumer.seeks == []  # partition 2 was behind its beginning, but is no longer held
    assert member._unchecked == set()


def test_a_position_that_retention_deleted_is_replayed_from_the_earliest_offset_and_the_rest_stay() -> None:
    consumer = ConsumerThatLosesItsMembership(lose_at=TopicPartition("crmflow.events", 99))
    member = member_with(consumer)
    member._check_positions()
    assert consumer.seeks == [(HELD[2], 6)]  # positions 5 in 0..5 stay; 5 is before partition 2's beginning, 6
