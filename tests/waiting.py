"""Waiting by polling with a deadline: no bare sleeps in the tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from kafka import TopicPartition

from crmflow.workers.kafka.clients import KafkaClients


def wait_until(predicate: Callable[[], Any], timeout_s: float = 30.0, interval_s: float = 0.05, what: str = "") -> Any:
    """Poll until ``predicate()`` is truthy; fail the test at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what or predicate}")
        time.sleep(interval_s)


def read_topic(kafka: KafkaClients, topic: str, *, at_least: int = 0, timeout_s: float = 30.0,
               until: Callable[[list[Any]], bool] | None = None) -> list[Any]:  # fmt: skip
    """Every record of a topic, from the beginning, once ``at_least`` have arrived (and ``until`` holds).

    End offsets alone are not trusted: the local broker's can lag behind the
    records it serves, so reading also goes on until a poll brings nothing new.
    """
    consumer = kafka.consumer(group_id=None)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        records: list[Any] = []

        def enough() -> bool:
            fresh = [r for batch in consumer.poll(timeout_ms=200).values() for r in batch]
            records.extend(fresh)
            end = consumer.end_offsets(partitions)
            caught_up = all(consumer.position(tp) >= end[tp] for tp in partitions)
            return caught_up and not fresh and len(records) >= at_least and (until is None or until(records))

        wait_until(enough, timeout_s, interval_s=0, what=f"{at_least} records on {topic}")
        return sorted(records, key=lambda r: (r.partition, r.offset))
    finally:
        consumer.close()


def run_in_background(intake: Any, stop: Any) -> tuple[threading.Thread, list[BaseException]]:
    """``intake.run(stop)`` in a thread, as the worker runs it; what escapes it is kept, for the test to say
    it did not."""
    escaped: list[BaseException] = []

    def run() -> None:
        try:
            intake.run(stop)
        except BaseException as error:  # noqa: BLE001 - the test asserts there is none
            escaped.append(error)

    thread = threading.Thread(target=run, name="intake", daemon=True)
    thread.start()
    return thread, escaped
