"""Early events held for an instance not saved yet: how long, how many, and how they keep the commit back."""

from __future__ import annotations

from typing import Any

import structlog
from kafka import TopicPartition

from crmflow.workers.run.held_events import HeldEvents
from tests.conftest import Seconds

P0, P1 = TopicPartition("t.events", 0), TopicPartition("t.events", 1)


def status_changed(event_id: str) -> dict[str, Any]:
    return {"id": event_id, "type": "LeadStatusChanged", "tenantid": "acme", "subject": "lead-1"}


def test_no_partition_is_committed_past_the_earliest_event_held_from_it() -> None:
    held = HeldEvents(hold_s=30, clock=Seconds())
    held.hold(status_changed("e-7"), P0, 7)
    held.hold(status_changed("e-3"), P0, 3)
    held.hold(status_changed("e-5"), P1, 5)

    assert held.commit_floor() == {P0: 3, P1: 5}


def test_a_held_event_is_tried_again_only_after_new_instance_states_and_keeps_its_first_deadline() -> None:
    clock = Seconds()
    held = HeldEvents(hold_s=30, clock=clock)
    held.hold(status_changed("e-1"), P0, 1)

    assert held.take_for_retry(fresh_states=False) == [], "nothing new could wake it"
    assert len(held) == 1
    clock.advance(10)
    (retry,) = held.take_for_retry(fresh_states=True)
    assert (retry.event["id"], retry.partition, retry.offset, retry.deadline) == ("e-1", P0, 1, 30)
    assert held.commit_floor() == {}, "taken out while it is tried"

    held.hold(retry.event, retry.partition, retry.offset, retry.deadline)  # still woke nothing
    assert [(h.event["id"], h.deadline) for h in held] == [("e-1", 30)]


def test_after_hold_s_a_held_event_is_given_up_with_a_log_line_and_its_offset_moves_on() -> None:
    clock = Seconds()
    held = HeldEvents(hold_s=30, clock=clock)
    held.hold(status_changed("e-1"), P0, 1)
    clock.advance(30)

    with structlog.testing.capture_logs() as logs:
        assert held.take_for_retry(fresh_states=True) == []

    (line,) = [entry for entry in logs if entry["event"] == "held_event_given_up"]
    assert (line["event_id"], line["partition"], line["offset"], line["reason"]) == ("e-1", 0, 1, "hold_s")
    assert held.commit_floor() == {} and len(held) == 0


def test_at_most_hold_max_events_are_held_and_one_more_gives_up_the_oldest() -> None:
    held = HeldEvents(hold_s=30, hold_max=2, clock=Seconds())
    with structlog.testing.capture_logs() as logs:
        for offset in (1, 2, 3):
            held.hold(status_changed(f"e-{offset}"), P0, offset)

    assert [h.event["id"] for h in held] == ["e-2", "e-3"]
    assert held.commit_floor() == {P0: 2}
    assert [(e["event_id"], e["reason"]) for e in logs if e["event"] == "held_event_given_up"] == [("e-1", "hold_max")]


def test_an_event_read_twice_is_held_once_at_the_offset_it_was_first_read() -> None:
    held = HeldEvents(hold_s=30, clock=Seconds())
    held.hold(status_changed("e-1"), P0, 4)
    held.hold(status_changed("e-1"), P1, 9)

    assert [(h.partition, h.offset) for h in held] == [(P0, 4)]


def test_a_partition_taken_away_takes_its_held_events_with_it() -> None:
    held = HeldEvents(hold_s=30, clock=Seconds())
    held.hold(status_changed("e-1"), P0, 1)
    held.hold(status_changed("e-2"), P1, 2)

    held.drop_partitions([P0])

    assert held.commit_floor() == {P1: 2}, "the new owner reads e-1 again from the committed offset"


def test_events_taken_for_a_retry_that_conflicted_are_held_again_ahead_of_newer_ones() -> None:
    held = HeldEvents(hold_s=30, clock=Seconds())
    held.hold(status_changed("e-1"), P0, 1)
    taken = held.take_for_retry(fresh_states=True)
    held.hold(status_changed("e-2"), P0, 2)

    held.put_back(taken)

    assert [h.event["id"] for h in held] == ["e-1", "e-2"]
    assert held.commit_floor() == {P0: 1}
