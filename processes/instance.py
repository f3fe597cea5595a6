"""A process instance's state: where it stands, what it knows, what it waits for.

Plain data (``to_dict``/``from_dict``), so that the engine stays pure: the
worker stores it in the event store, the simulator keeps it in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from hashlib import sha1
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

INSTANCE_NAMESPACE = uuid5(NAMESPACE_URL, "https://crmflow.dev/process-instances")


def instance_id(tenant: str, definition: str, key: str) -> str:
    return uuid5_text(INSTANCE_NAMESPACE, f"{tenant}\n{definition}\n{key}")


def uuid5_text(namespace: UUID, name: str) -> str:
    """``str(uuid5(namespace, name))`` without building the UUID object: every start and timer makes some."""
    digest = bytearray(sha1(namespace.bytes + name.encode("utf-8"), usedforsecurity=False).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@dataclass
class Waiting:
    """What a waiting instance needs to move on: an event of ``on``, or its timer."""

    step: str
    on: list[str] = field(default_factory=list)
    timer_id: str | None = None
    due: datetime | None = None
    reason: str = "event"  # event | timer | retry
    # Only events with this subject can wake the wait (None: any subject, checked by the condition).
    subject: str | None = None
    # While paused (pause_on), the timeout's remaining time in seconds, and no timer runs.
    paused_remaining_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "on": list(self.on), "timer_id": self.timer_id, "due": self.due,
                "reason": self.reason, "subject": self.subject, "paused_remaining_s": self.paused_remaining_s}  # fmt: skip


@dataclass
class Instance:
    id: str
    definition: str
    version: int
    tenant: str
    key: str
    trigger_event_id: str
    status: str = "running"  # running | waiting | completed | failed
    step: str | None = None
    vars: dict[str, Any] = field(default_factory=dict)
    waiting: Waiting | None = None
    attempt: int = 0
    error: str | None = None
    # Event ids already handled, so a redelivered event never acts twice.
    seen: list[str] = field(default_factory=list)
    # The trigger's correlation id, which what the instance's timers cause carries too. None in states
    # saved before it was kept: the trigger's id stands in (what the trigger's commands then carried
    # when it had no correlation id of its own).
    correlation_id: str | None = None

    SEEN_LIMIT = 100

    def remember(self, event_id: str) -> None:
        self.seen.append(event_id)
        del self.seen[: -self.SEEN_LIMIT]

    def correlation(self) -> str:
        return self.correlation_id or self.trigger_event_id

    def to_dict(self) -> dict[str, Any]:
        # What dataclasses.asdict gives, written out: asdict deep-copies field by field, a large share
        # of the process worker's time per run (benchmarks/README.md). Values are JSON values the
        # engine replaces rather than changes in place, so copying the containers is enough.
        waiting = self.waiting
        return {
            "id": self.id, "definition": self.definition, "version": self.version, "tenant": self.tenant,
            "key": self.key, "trigger_event_id": self.trigger_event_id, "status": self.status, "step": self.step,
            "vars": dict(self.vars), "waiting": None if waiting is None else waiting.to_dict(),
            "attempt": self.attempt, "error": self.error, "seen": list(self.seen),
            "correlation_id": self.correlation_id,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Instance:
        waiting = data.get("waiting")
        return cls(**{**data, "waiting": Waiting(**waiting) if waiting else None})
