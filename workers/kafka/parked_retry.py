"""`crmflow relay parked retry`: publish parked events again, in notification order per aggregate.

One published leaves the table; one refused again stays with retried + 1 and
the new reason, and its aggregate's later events keep waiting behind it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog

from crmflow.workers.kafka.parking import HeldAggregates, ParkedEvent
from crmflow.workers.kafka.relay_producer import Refused

if TYPE_CHECKING:
    from crmflow.workers.kafka.relay import Relay

log = structlog.get_logger("crmflow.relay")


@dataclass
class RetryOutcome:
    """Notifications a retry published, and those still parked."""

    published: list[int]
    still_parked: list[int]


def retry_parked(relay: Relay, notification: int | None = None) -> RetryOutcome:
    """Publish the parked events (all, or ``notification``'s aggregate). Raises RelayDeliveryError while
    Kafka is away: what was not yet published stays parked."""
    parked = relay.parked.all()
    if notification is not None:
        target = next((p for p in parked if p.notification_id == notification), None)
        if target is None:
            raise ValueError(f"notification {notification} is not parked "
                             f"({len(parked)} are: see `crmflow relay parked list`)")  # fmt: skip
        parked = [p for p in parked if p.key == target.key or p.aggregate_id == target.aggregate_id]
    outcome = RetryOutcome([], [])
    blocked = HeldAggregates([])
    try:
        for entry in parked:
            if blocked.waits_for(entry.key, entry.aggregate_id) is not None:
                outcome.still_parked.append(entry.notification_id)
                continue
            reason = _publish(relay, entry)
            if reason is None:
                outcome.published.append(entry.notification_id)
            else:
                _failed_again(relay, entry, reason, blocked, outcome)
    finally:
        relay.producer.close_own()
    return outcome


def _publish(relay: Relay, entry: ParkedEvent) -> str | None:
    """Publish one parked event: None when it is out of the table, else why it stays."""
    notifications = relay.app.recorder.select_notifications(start=entry.notification_id, limit=1)
    if not notifications or notifications[0].id != entry.notification_id:
        return "the notification is no longer in the store"
    outgoing = relay.prepare(notifications[0], None, relay.producer.size_limit())
    if outgoing is None:  # no longer a published type: nothing to send
        relay.parked.published(entry.notification_id)
        return None
    if isinstance(outgoing, Refused):
        return outgoing.reason
    _, reason = relay.producer.send_alone(relay.topic, outgoing.key, outgoing.value, entry.notification_id)
    if reason is None:
        relay.parked.published(entry.notification_id)
        log.info("relay_parked_event_published", notification=entry.notification_id, key=entry.key)
    return reason


def _failed_again(relay: Relay, entry: ParkedEvent, reason: str, blocked: HeldAggregates,
                  outcome: RetryOutcome) -> None:  # fmt: skip
    relay.parked.failed_again(entry.notification_id, reason)
    blocked.hold(entry)
    outcome.still_parked.append(entry.notification_id)
    log.error("relay_event_parked", notification=entry.notification_id, aggregate=entry.aggregate_id,
              key=entry.key, tenant=entry.tenant, topic=entry.topic, cause="retry_failed", reason=reason,
              retried=entry.retried + 1)  # fmt: skip
