"""The stored history as the wire sees it: every published event, in store order."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from aggregates.application import CrmApplication
from workers.relay import INTERNAL_TOPIC_PREFIXES, render


def stored_history(app: CrmApplication, batch: int = 1000) -> Iterator[dict[str, Any]]:
    """Every stored event as the CloudEvent the relay publishes (internal records left out)."""
    start = 1
    while True:
        notifications = app.recorder.select_notifications(start=start, limit=batch)
        if not notifications:
            return
        for notification in notifications:
            if not notification.topic.startswith(INTERNAL_TOPIC_PREFIXES):
                yield render(app, notification)
        start = notifications[-1].id + 1
