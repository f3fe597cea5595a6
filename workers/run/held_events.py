"""Early events: held until the instance they concern is saved, and kept out of the committed offsets meanwhile.

An event that some definition waits for but that wakes no instance may have arrived before its instance was
saved (the trigger was on another partition, or handled by another copy). The process worker holds it for
``hold_s`` and tries it again after each refresh that brought new instance states; past ``hold_s`` it gives
up (``held_event_given_up``): the instance is not coming, or the event was for no instance at all.

Held events live in memory, yet a crash does not lose them: the worker commits no partition's offset past the
earliest event it holds from that partition (``commit_floor``). A worker killed during the hold, or a
partition that moves to another copy, is read again from that event on. What the worker had handled after it
in that partition is read again too, and changes nothing: each instance keeps the ids of the events it
handled (no instance is woken twice by one event, a trigger starts no second live instance of its key) and
the engine's commands carry idempotency keys; the same rules make any replay after a crash safe. This needs no
table of its own in the store (nothing to migrate, to clean up, or to keep in step with the offsets) at the
price of re-reading a little; both are bounded:

- an event is held at most ``hold_s`` (a restart gives it ``hold_s`` again), so a partition's committed
  offset trails what the worker handled by at most ``hold_s`` of that partition's traffic, and a restart
  reads at most that again;
- at most ``hold_max`` events are held; one more gives up the oldest (``held_event_given_up``,
  ``reason="hold_max"``), so memory stays bounded however many early events come.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import structlog

from crmflow.workers.metrics import HELD_EVENTS, HELD_EVENTS_GIVEN_UP

log = structlog.get_logger("crmflow.process_worker")


@dataclass(frozen=True)
class HeldEvent:
    event: dict[str, Any]
    partition: Any  # the Kafka TopicPartition it was read from
    offset: int
    deadline: float  # on the monotonic clock: when it is given up


class HeldEvents:
    """Early events in the order they were first held, with where each was read."""

    def __init__(self, hold_s: float = 30.0, hold_max: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.hold_s = hold_s
        self.hold_max = hold_max
        self.clock = clock
        self.items: dict[str, HeldEvent] = {}  # by event id, oldest first

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[HeldEvent]:
        return iter(self.items.values())

    def hold(self, event: dict[str, Any], partition: Any, offset: int, deadline: float | None = None) -> None:
        """Hold an event read at ``partition``/``offset``; ``deadline`` is kept from its first hold, if any."""
        if event["id"] in self.items:
            return  # the same event read twice (a replay): the first copy holds the earlier offset
        if deadline is None:
            deadline = self.clock() + self.hold_s
            # Debug: every event of a waited-for type that concerns no instance (a status change of a lead
            # no process follows) is held, and given up, in the normal course of things.
            log.debug("event_held", event_id=event["id"], type=event["type"], tenant=event.get("tenantid"),
                     partition=partition.partition, offset=offset, hold_s=self.hold_s)  # fmt: skip
        self.items[event["id"]] = HeldEvent(event, partition, offset, deadline)
        while len(self.items) > self.hold_max:
            self._give_up(self.items.pop(next(iter(self.items))), "hold_max")
        HELD_EVENTS.set(len(self.items))

    def take_for_retry(self, fresh_states: bool) -> list[HeldEvent]:
        """Give up those past their deadline; with fresh instance states, take the others out to be tried again
        (nothing new could match them otherwise, so they stay held)."""
        now = self.clock()
        live = {}
        for event_id, held in self.items.items():
            if held.deadline > now:
                live[event_id] = held
            else:
                self._give_up(held, "hold_s")
        self.items = {} if fresh_states else live
        HELD_EVENTS.set(len(self.items))
        return list(live.values()) if fresh_states else []

    def put_back(self, taken: Iterable[HeldEvent]) -> None:
        """Events taken for a retry that was not stored (a conflict): held again, ahead of newer ones."""
        self.items = {**{held.event["id"]: held for held in taken}, **self.items}
        HELD_EVENTS.set(len(self.items))

    def drop_partitions(self, partitions: Iterable[Any]) -> None:
        """The partitions went to another member: it reads their held events again from the committed offset."""
        gone = set(partitions)
        self.items = {event_id: held for event_id, held in self.items.items() if held.partition not in gone}
        HELD_EVENTS.set(len(self.items))

    def commit_floor(self) -> dict[Any, int]:
        """Per partition, the offset of its earliest held event: no commit of that partition may pass it."""
        floor: dict[Any, int] = {}
        for held in self.items.values():
            floor[held.partition] = min(held.offset, floor.get(held.partition, held.offset))
        return floor

    def snapshot(self) -> dict[str, HeldEvent]:
        return dict(self.items)

    def restore(self, snapshot: dict[str, HeldEvent]) -> None:
        """Back to a snapshot: a batch that failed on an outage is read again with the events held before it."""
        self.items = dict(snapshot)
        HELD_EVENTS.set(len(self.items))

    def _give_up(self, held: HeldEvent, reason: str) -> None:
        HELD_EVENTS_GIVEN_UP.labels(reason=reason).inc()
        event = held.event
        log.info("held_event_given_up", event_id=event["id"], type=event["type"], tenant=event.get("tenantid"),
                 partition=held.partition.partition, offset=held.offset, reason=reason,
                 detail="no instance woke on it: its offset no longer holds the commit back")  # fmt: skip
