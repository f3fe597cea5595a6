"""How a worker rides out an outage: the retry loop, with a stop signal that records its waits instead of
sleeping."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import eventsourcing.persistence as store_errors
import psycopg
import pytest
import structlog
from kafka.errors import KafkaConnectionError
from prometheus_client import REGISTRY

from crmflow.workers.run.lock_waits import is_lock_wait
from crmflow.workers.run.resilience import TRANSIENT, run_steps, until_done
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


def locked_write(path: Path) -> sqlite3.OperationalError:
    """What SQLite raises when another connection holds the write lock past the busy timeout (here none)."""
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE IF NOT EXISTS t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    writer = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        writer.execute("INSERT INTO t VALUES (1)")
    except sqlite3.OperationalError as error:
        return error
    finally:
        writer.close()
        holder.close()
    raise AssertionError("the write went through a held lock")


def wrapped_by_eventsourcing(error: sqlite3.OperationalError) -> store_errors.OperationalError:
    """As eventsourcing's SQLite transaction re-raises it (eventsourcing.sqlite.SQLiteTransaction)."""
    try:
        raise store_errors.OperationalError(error) from error
    except store_errors.OperationalError as wrapped:
        return wrapped


def lock_waits(worker: str) -> float:
    return REGISTRY.get_sample_value("crmflow_store_lock_waits_total", {"worker": worker}) or 0.0


def test_a_locked_sqlite_store_is_transient_and_known_as_a_lock_wait_bare_or_wrapped(tmp_path: Path) -> None:
    bare = locked_write(tmp_path / "store.db")
    wrapped = wrapped_by_eventsourcing(bare)

    assert str(bare) == "database is locked"
    assert isinstance(bare, TRANSIENT) and isinstance(wrapped, TRANSIENT)
    assert is_lock_wait(bare) and is_lock_wait(wrapped)


def test_other_store_errors_are_not_taken_for_lock_waits() -> None:
    assert not is_lock_wait(sqlite3.OperationalError("no such table: crmflow_events"))
    assert not is_lock_wait(psycopg.OperationalError("connection refused"))
    assert not is_lock_wait(ValueError("database is locked"))  # the words alone are not SQLite's


def test_a_worker_that_finds_the_store_locked_logs_store_locked_counts_it_and_carries_on(tmp_path: Path) -> None:
    lock = wrapped_by_eventsourcing(locked_write(tmp_path / "store.db"))
    outcomes = iter([lock, lock, None, None])
    handled = []

    def step() -> None:
        outcome = next(outcomes)
        if outcome is not None:
            raise outcome
        handled.append("batch")

    class StopAfterTwoBatches(RecordedWaits):
        def is_set(self) -> bool:
            return len(handled) >= 2 or super().is_set()

    before = lock_waits("process")
    with structlog.testing.capture_logs() as logs:
        run_steps(step, StopAfterTwoBatches(steps=10), worker="process", doing="handling events")

    assert handled == ["batch", "batch"], "the worker went on once the lock was free"
    locked = [entry for entry in logs if entry["event"] == "store_locked"]
    assert [(e["worker"], e["doing"], e["attempt"]) for e in locked] == [
        ("process", "handling events", 1), ("process", "handling events", 2)]  # fmt: skip
    assert "database is locked" in locked[0]["error"]
    assert not [entry for entry in logs if entry["event"] == "worker_retrying"], "a lock wait is no outage"
    assert lock_waits("process") == before + 2
