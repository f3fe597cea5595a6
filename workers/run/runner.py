"""Running workers: one kind per process, or several kinds on threads of one process.

``crmflow worker KIND`` runs one worker; ``crmflow worker all`` and the demo
run every kind on a thread of its own, each with its own Kafka clients and
store connection. The consumer groups are the same however the workers are
packed, so copies of ``worker all`` and single-kind workers share the
partitions freely. An outage of the database or the broker stops no worker,
at start or later: each waits and tries again (``resilience``). A worker that
fails for another reason stops the others: a supervisor (compose, Kubernetes)
then restarts the process whole instead of leaving it half-running.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from datetime import datetime
from typing import Any

import structlog

from crmflow.workers.bootstrap import (
    build_application,
    build_intake,
    build_kafka,
    build_relay,
    build_reports_db,
)
from crmflow.workers.config import Settings
from crmflow.workers.kafka.clients import KafkaClients
from crmflow.workers.metrics import ConsumerLag
from crmflow.workers.preflight import Unavailable, check_broker
from crmflow.workers.run.kinds import WORKER_KINDS
from crmflow.workers.run.process_worker import ProcessWorker, TimerWorker
from crmflow.workers.run.projection_worker import ProjectionWorker
from crmflow.workers.run.resilience import until_done
from crmflow.workers.shutdown import StopSignal

log = structlog.get_logger("crmflow.runner")

__all__ = ["WORKER_KINDS", "WorkerSet", "build_worker", "consumer_groups"]
# The consumer group of each consuming kind, and the topic it reads (Topics attribute).
CONSUMER_GROUPS = {"intake": "inbound", "process": "events", "projection": "events"}


def build_worker(kind: str, settings: Settings, kafka: KafkaClients, resources: ExitStack,
                 clock: Callable[[], datetime] | None = None, timer_interval_s: float = 0.5) -> Any:  # fmt: skip
    """One worker of ``kind``; what it opens is closed with ``resources``."""
    if kind == "projection":
        db = build_reports_db(settings)
        resources.callback(db.close)
        return ProjectionWorker(db, kafka)
    app = build_application(settings, clock=clock)
    resources.callback(app.close)
    if kind == "relay":
        return build_relay(settings, app, kafka)
    if kind == "intake":
        return build_intake(settings, app, kafka)
    if kind == "process":
        return ProcessWorker(app, kafka)
    if kind == "timer":
        return TimerWorker(app, interval_s=timer_interval_s)
    raise ValueError(f"unknown worker kind {kind!r}; one of {', '.join(WORKER_KINDS)}")


def consumer_groups(settings: Settings, kinds: Sequence[str]) -> dict[str, str]:
    """``{group: topic}`` of the consuming kinds among ``kinds``."""
    topics = build_kafka(settings, "lag").topics
    return {f"{settings.topic_prefix}.{kind}": getattr(topics, CONSUMER_GROUPS[kind])
            for kind in kinds if kind in CONSUMER_GROUPS}  # fmt: skip


class WorkerSet:
    """Workers on threads of this process, stopped together.

    ``workers`` maps each kind to its worker once its thread has built it, so
    that the demo (and tests) can watch their progress.
    """

    def __init__(self, kinds: Sequence[str], settings: Settings, stop: StopSignal | None = None, *,
                 clock: Callable[[], datetime] | None = None, timer_interval_s: float = 0.5) -> None:  # fmt: skip
        unknown = [k for k in kinds if k not in WORKER_KINDS]
        if unknown:
            raise ValueError(f"unknown worker kind(s) {', '.join(unknown)}; choose from {', '.join(WORKER_KINDS)}")
        self.kinds = list(kinds)
        self.settings = settings
        self.stop = stop or StopSignal()
        self.clock = clock
        self.timer_interval_s = timer_interval_s
        self.workers: dict[str, Any] = {}
        self.errors: dict[str, BaseException] = {}
        self._ready = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self, ready_timeout_s: float = 60.0) -> WorkerSet:
        if any(k != "timer" for k in self.kinds):
            until_done(self._ensure_topics, self.stop, worker="setup", doing="creating topics")
        for kind in self.kinds:
            thread = threading.Thread(target=self._run, args=(kind,), name=f"crmflow-{kind}", daemon=True)
            thread.start()
            self._threads.append(thread)
        if self.settings.metrics_port is not None:
            groups = consumer_groups(self.settings, self.kinds)
            if groups:
                threading.Thread(target=self._report_lag, args=(groups,), name="crmflow-lag", daemon=True).start()
        deadline = time.monotonic() + ready_timeout_s
        # Not ready before the deadline (its database is away, say): the worker goes on trying by itself.
        while len(self.workers) + len(self.errors) < len(self.kinds) and time.monotonic() < deadline:
            if self.stop.wait(0.02):
                break
        if self.errors:
            self.close()
            kind, error = next(iter(self.errors.items()))
            raise RuntimeError(f"the {kind} worker could not start: {error}") from error
        return self

    def _ensure_topics(self) -> None:
        # A broker that is not listening is found in milliseconds rather than after kafka-python's bootstrap
        # timeout, so a worker waiting for it logs why on each attempt and stops at once when asked to.
        try:
            check_broker(self.settings.kafka_bootstrap_servers, timeout_s=self.settings.connect_timeout_s)
        except Unavailable as error:
            raise ConnectionError(str(error)) from error  # an outage: retried with backoff
        with build_kafka(self.settings, "setup") as kafka:
            kafka.ensure_topics()

    def _build(self, kind: str) -> tuple[Any, ExitStack]:
        """One attempt at building a worker; what a failed attempt opened is closed at once."""
        with ExitStack() as attempt:
            kafka = attempt.enter_context(build_kafka(self.settings, kind))
            worker = build_worker(kind, self.settings, kafka, attempt, self.clock, self.timer_interval_s)
            return worker, attempt.pop_all()

    def _run(self, kind: str) -> None:
        try:
            built = until_done(lambda: self._build(kind), self.stop, worker=kind, doing="starting")
            if built is None:
                return  # stopped while its database or broker was still away
            worker, resources = built
            with resources:
                self.workers[kind] = worker
                worker.run(self.stop)
        except BaseException as error:  # noqa: BLE001 - one failed worker stops the set
            self.errors[kind] = error
            log.error("worker_failed", worker=kind, error=repr(error))
            self.stop.set()

    def _report_lag(self, groups: dict[str, str]) -> None:
        with build_kafka(self.settings, "lag") as kafka:
            lag = ConsumerLag(kafka, groups)
            while not self.stop.wait(self.settings.lag_interval_s):
                try:
                    lag.measure()
                except Exception as error:  # noqa: BLE001 - metrics must never stop the workers
                    log.warning("lag_unavailable", error=repr(error))

    def wait(self) -> None:
        """Block until every worker has stopped (a stop was requested, or one failed)."""
        while any(t.is_alive() for t in self._threads):
            self.stop.wait(0.2)
            for thread in self._threads:
                thread.join(timeout=0.01)

    def close(self, timeout_s: float = 30.0) -> None:
        """Ask every worker to stop after the work in hand, and wait for them."""
        self.stop.set()
        for thread in self._threads:
            thread.join(timeout=timeout_s)
            if thread.is_alive():
                log.warning("worker_did_not_stop", thread=thread.name, timeout_s=timeout_s)

    def __enter__(self) -> WorkerSet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
