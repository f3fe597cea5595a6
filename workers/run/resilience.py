"""Riding out outages: a worker whose database or broker is away waits and tries again, it never exits.

What counts as an outage (``TRANSIENT``) is an error of the connection, not of the work: Kafka errors,
lost or refused connections to PostgreSQL (psycopg's own errors and eventsourcing's wrappers of them),
SQLite's busy database (``database is locked``, after the busy timeout: logged ``store_locked`` instead,
``lock_waits``), sockets. Anything else is a fault in the work and still stops the worker, so that
it is seen. Each retry is logged as ``worker_retrying`` with the worker, what it was doing, the attempt,
the delay and the error; the delay doubles from ``first_s`` up to ``cap_s`` and starts again after a step
succeeds.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import eventsourcing.persistence as store_errors
import psycopg
import structlog

from crmflow.workers.kafka.clients import KafkaError
from crmflow.workers.metrics import STORE_LOCK_WAITS
from crmflow.workers.run.lock_waits import is_lock_wait
from crmflow.workers.shutdown import StopSignal

log = structlog.get_logger("crmflow.workers")
T = TypeVar("T")

TRANSIENT: tuple[type[BaseException], ...] = (
    KafkaError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
    store_errors.OperationalError,
    store_errors.InterfaceError,
    store_errors.ConnectionUnavailableError,
    # "database is locked": sqlite3's own, and eventsourcing's OperationalError above wrapping it.
    sqlite3.OperationalError,
    ConnectionError,
    TimeoutError,
)


@dataclass
class Backoff:
    """Capped exponential backoff: ``first_s``, twice that, ... at most ``cap_s``."""

    first_s: float = 0.5
    cap_s: float = 10.0
    attempt: int = 0

    def next_delay(self) -> float:
        self.attempt += 1
        return min(self.first_s * 2 ** (self.attempt - 1), self.cap_s)

    def reset(self) -> None:
        self.attempt = 0


def wait_after(error: BaseException, backoff: Backoff, stop: StopSignal, *, worker: str, doing: str) -> None:
    """Log one retry and wait for it (a stop request ends the wait at once).

    A SQLite lock wait is no outage (the store answers, another writer holds its lock): it is retried the
    same way, but logged as ``store_locked`` and counted, so that contention is not mistaken for downtime.
    """
    delay = backoff.next_delay()
    if is_lock_wait(error):
        STORE_LOCK_WAITS.labels(worker=worker).inc()
        log.warning("store_locked", worker=worker, doing=doing, attempt=backoff.attempt, delay_s=delay,
                    error=repr(error))  # fmt: skip
    else:
        log.warning("worker_retrying", worker=worker, doing=doing, attempt=backoff.attempt, delay_s=delay,
                    error=repr(error))  # fmt: skip
    stop.wait(delay)


def until_done(call: Callable[[], T], stop: StopSignal, *, worker: str, doing: str,
               backoff: Backoff | None = None) -> T | None:  # fmt: skip
    """``call()`` until it succeeds through outages; None if a stop was requested first."""
    backoff = backoff or Backoff()
    while not stop.is_set():
        try:
            return call()
        except TRANSIENT as error:
            wait_after(error, backoff, stop, worker=worker, doing=doing)
    return None


def run_steps(step: Callable[[], object], stop: StopSignal, *, worker: str, doing: str,
              backoff: Backoff | None = None) -> None:  # fmt: skip
    """A worker's loop: ``step()`` again and again until a stop is requested, riding out outages."""
    backoff = backoff or Backoff()
    while not stop.is_set():
        try:
            step()
        except TRANSIENT as error:
            wait_after(error, backoff, stop, worker=worker, doing=doing)
            continue
        backoff.reset()
