"""The stored history: every published event in store order as the wire sees it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from crmflow.aggregates.application import CrmApplication
from crmflow.aggregates.publication import published_documents


def stored_history(app: CrmApplication, batch: int = 1000) -> Iterator[dict[str, Any]]:
    """Every stored event as the CloudEvent the relay publishes (internal records left out)."""
    for _, document in numbered_history(app, 0, batch):
        yield document


def numbered_history(app: CrmApplication, after: int, batch: int = 1000) -> Iterator[tuple[int, dict[str, Any]]]:
    """(notification id, CloudEvent) of every stored event after ``after``: for catching up."""
    start = after + 1
    while True:
        notifications = app.recorder.select_notifications(start=start, limit=batch)
        if not notifications:
            return
        yield from published_documents(app, notifications)
        start = notifications[-1].id + 1


def history_source(app: CrmApplication) -> Callable[[int], Iterator[tuple[int, dict[str, Any]]]]:
    """What a rebuild reads: the history after a position, asked for as often as it needs."""
    return lambda after: numbered_history(app, after)

