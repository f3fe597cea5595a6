"""When does the events topic no longer hold what the relay published? Worked examples of the rule."""

from __future__ import annotations

from crmflow.workers.kafka.relay_marks import lost_data_reason, tracking_name


def test_a_topic_whose_partitions_end_past_every_mark_kept_its_data() -> None:
    # Marks at offsets 4 and 9; the partitions end at 5 and 12: both past their mark.
    assert lost_data_reason({0: 5, 1: 12, 2: 0}, {0: 4, 1: 9}, position=20, never_marked=False) is None


def test_a_partition_ending_at_its_mark_means_the_data_is_gone() -> None:
    # The record at offset 4 was acknowledged, so a partition holding it ends at 5 or later; 4 is too short.
    reason = lost_data_reason({0: 4, 1: 12}, {0: 4, 1: 9}, position=20, never_marked=False)
    assert reason == "partition 0 ends at offset 4, but Kafka had acknowledged a record at offset 4 there"


def test_a_recreated_topic_with_fewer_partitions_or_none_at_all_lost_its_data() -> None:
    assert "partition 3 is gone" in lost_data_reason({0: 9}, {0: 1, 3: 2}, position=5, never_marked=False)
    assert lost_data_reason(None, {0: 1}, position=5, never_marked=False) == "the events topic is gone"


def test_an_empty_topic_behind_a_position_counts_only_for_a_relay_that_never_kept_marks() -> None:
    # A store relayed before marks were kept: position 30, no marks, an empty topic.
    assert "empty" in lost_data_reason({0: 0, 1: 0}, {}, position=30, never_marked=True)
    # After one republish (an epoch exists), a store whose events are all unpublished types stays quiet.
    assert lost_data_reason({0: 0, 1: 0}, {}, position=30, never_marked=False) is None
    # A fresh relay with nothing published yet has nothing to lose.
    assert lost_data_reason({0: 0}, {}, position=0, never_marked=True) is None


def test_each_republish_is_tracked_under_a_name_of_its_own() -> None:
    assert [tracking_name("relay", epoch) for epoch in (None, 1, 2)] == ["relay", "relay@2", "relay@3"]
