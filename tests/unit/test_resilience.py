"""How a worker rides out an outage: the retry loop, with a stop signal that records its waits instead of
sleeping."""

from __future__ import annotations

import psycopg
import pytest
import structlog
from kafka.errors import KafkaConnectionError

from crmflow.workers.run.resilience import run_steps, until_done
from crmflow.workers.shutdown import StopSignal


class RecordedWaits(StopSignal):
    """A stop signal whose waits are recorded, not slept; it stops itself after ``steps`` waits."""

    def __init__(self, steps: int) -> None:
        super().__init__()
        self.waits: list[float] = []
        self.steps = steps

    def wait(self, seconds: float) -> bool:
        self.waits.append(seconds)
        if len(self.waits) >= self.steps:
            self.set()
        return self.is_set()


def test_a_worker_whose_database_is_away_waits_half_a_second_doubling_up_to_ten_and_never_gives_up() -> None:
    stop = RecordedWaits(steps=8)

    def step() -> None:
        raise psycopg.OperationalError("connection refused")

    with structlog.testing.capture_logs() as logs:
        run_steps(step, stop, worker="projection", doing="projecting")

    # 0.5, then doubling: 1, 2, 4, 8, and 16 is capped at 10, as is every wait after it.
    assert stop.waits == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]
    retries = [entry for entry in logs if entry["event"] == "worker_retrying"]
    assert [entry["attempt"] for entry in retries] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert retries[0]["worker"] == "projection" and "connection refused" in retries[0]["error"]


def test_after_a_step_goes_through_the_next_outage_starts_again_at_half_a_second() -> None:
    stop = RecordedWaits(steps=4)
    outcomes = iter(["down", "down", "up", "down", "down"])

    def step() -> None:
        if next(outcomes) == "down":
            raise KafkaConnectionError("broker away")

    run_steps(step, stop, worker="process", doing="handling events")

    assert stop.waits == [0.5, 1.0, 0.5, 1.0]


def test_a_fault_in_the_work_is_not_an_outage_and_stops_the_worker() -> None:
    def step() -> None:
        raise ValueError("a bug, not an outage")

    with pytest.raises(ValueError, match="a bug"):
        run_steps(step, RecordedWaits(steps=3), worker="timer", doing="firing timers")


def test_a_worker_starting_while_its_database_is_away_keeps_trying_until_it_answers() -> None:
    stop = RecordedWaits(steps=10)
    answers = iter([psycopg.OperationalError("connection refused")] * 3 + ["the worker"])

    def start() -> str:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert until_done(start, stop, worker="projection", doing="starting") == "the worker"
    assert stop.waits == [0.5, 1.0, 2.0]


def test_a_stop_requested_while_the_database_is_still_away_ends_the_start_without_a_worker() -> None:
    def start() -> str:
        raise psycopg.OperationalError("connection refused")

    assert until_done(start, RecordedWaits(steps=2), worker="process", doing="starting") is None
