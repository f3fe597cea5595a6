"""Prometheus metrics: the ``crmflow_`` prefix, base units (seconds), ``_total`` counters.

One registry per process: ``crmflow worker all`` and the demo run every
worker in one process, so their figures add up in one scrape. Workers serve
them with ``serve_metrics(port)`` (``CRMFLOW_METRICS_PORT``); the HTTP API
serves them at ``GET /metrics``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import structlog
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)

from crmflow.workers.kafka.clients import topic_partitions

log = structlog.get_logger("crmflow.metrics")

EVENTS_HANDLED = Counter(
    "crmflow_events_handled_total", "Events a worker has handled (published, stored, applied or run)", ["worker"]
)
CONSUMER_LAG = Gauge(
    "crmflow_consumer_lag_records", "Records on a topic not yet committed by a consumer group", ["group", "topic"]
)
RELAY_LAG = Gauge("crmflow_relay_lag_events", "Events stored but not yet acknowledged by Kafka")
RELAY_EVENTS_PARKED = Counter(
    "crmflow_relay_events_parked_total", "Stored events the relay parked instead of publishing", ["reason"]
)
RELAY_PARKED_NOW = Gauge("crmflow_relay_parked_events", "Events in the relay's parked table, last looked")
RELAY_BROKER_DATA_LOST = Counter(
    "crmflow_relay_broker_data_lost_total", "Times the relay found the events topic lost what it published"
)
RELAY_DELIVERY_FAILURES = Counter(
    "crmflow_relay_delivery_failures_total", "Relay batches that failed and were retried", ["cause"]
)
STORE_LOCK_WAITS = Counter(
    "crmflow_store_lock_waits_total",
    "Worker steps that waited past SQLite's busy timeout for the write lock and were retried", ["worker"],
)  # fmt: skip
HELD_EVENTS = Gauge(
    "crmflow_process_held_events", "Early events the process worker holds for an instance not saved yet"
)
HELD_EVENTS_GIVEN_UP = Counter(
    "crmflow_process_held_events_given_up_total", "Held events the process worker gave up on", ["reason"]
)
PROCESS_INSTANCES = Gauge("crmflow_process_instances", "Process instances by state", ["state"])
TIMERS_DUE = Gauge("crmflow_timers_due", "Process timers due now and not yet fired")
DEAD_LETTERS = Counter("crmflow_dead_letters_total", "Messages sent to the dead-letter topic", ["error"])
COMMAND_DURATION = Histogram(
    "crmflow_command_duration_seconds", "Time to run one command and store its events", ["command", "outcome"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)  # fmt: skip
HTTP_REQUESTS = Counter("crmflow_http_requests_total", "HTTP requests answered", ["method", "route", "status"])
# Any client may send any method string: outside this set they share one label, so that an unauthenticated
# caller cannot grow the series without bound (routes are templates and statuses are three digits).
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"})
OTHER_METHOD = "other"
RATE_LIMITED = Counter(
    "crmflow_rate_limited_total", "Requests and inbound messages refused as over their tenant's rate",
    ["entry", "tenant"],
)  # fmt: skip

INSTANCE_STATES = ("running", "waiting", "completed", "failed")


@contextmanager
def timed_command(command: str) -> Iterator[None]:
    """Observe a command's duration, labelled ok or refused (a domain error) or failed."""
    from crmflow.aggregates.errors import DomainError

    started = time.perf_counter()
    outcome = "ok"
    try:
        yield
    except DomainError:
        outcome = "refused"
        raise
    except BaseException:
        outcome = "failed"
        raise
    finally:
        COMMAND_DURATION.labels(command=command, outcome=outcome).observe(time.perf_counter() - started)


def http_method_label(method: str) -> str:
    """The method as a label value: a standard method, or ``other``."""
    return method if method in HTTP_METHODS else OTHER_METHOD


def record_instances(instances: Iterable[Any], now: Any) -> None:
    """Instances by state and timers due, from the instances a timer worker holds."""
    counts = dict.fromkeys(INSTANCE_STATES, 0)
    due = 0
    for instance in instances:
        counts[instance.status] = counts.get(instance.status, 0) + 1
        waiting = instance.waiting
        if waiting is not None and waiting.due is not None and waiting.due <= now:
            due += 1
    for state, count in counts.items():
        PROCESS_INSTANCES.labels(state=state).set(count)
    TIMERS_DUE.set(due)


class ConsumerLag:
    """Measures each consumer group's lag ``{group: topic}``: end offsets less committed offsets.

    One reader per group, with the group's id but never subscribed: it reads
    the group's commits without joining the group (no rebalance), on Apache
    Kafka and kafka-python 2 and 3 alike.
    """

    def __init__(self, kafka: Any, groups: dict[str, str]) -> None:
        self.kafka = kafka
        self.groups = groups
        self.readers = {group: kafka.consumer(group_id=group) for group in groups}

    def measure(self, *, exact: bool = False) -> dict[str, int]:
        """Each group's lag. A broker may report a partition's end as the first offset of its last batch
        (KafkaClients.true_ends); the periodic metric takes the reported end, a count for a person to read
        (``exact``) reads on to the last record, which costs up to half a second."""
        lags: dict[str, int] = {}
        for group, topic in self.groups.items():
            reader = self.readers[group]
            partitions = topic_partitions(reader, topic)
            if not partitions:
                continue
            ends = reader.end_offsets(partitions)
            if exact:
                ends = self.kafka.true_ends(ends, timeout_s=0.5)
            lag = sum(max(0, ends[tp] - (reader.committed(tp) or 0)) for tp in partitions)
            CONSUMER_LAG.labels(group=group, topic=topic).set(lag)
            lags[group] = lag
        return lags


def serve_metrics(port: int, host: str = "0.0.0.0") -> None:
    """Serve /metrics for Prometheus on a thread of this process."""
    start_http_server(port, addr=host)
    log.info("metrics_serving", port=port)


def exposition() -> tuple[bytes, str]:
    """The metrics in Prometheus text format, and its content type."""
    return generate_latest(), CONTENT_TYPE_LATEST
