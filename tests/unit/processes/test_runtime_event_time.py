"""The live runtime times waits from the event, stamps what it records with the time it records it, and
logs a timer's work under the story of the instance's trigger."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import structlog

from crmflow.aggregates.application import CommandRequest, CrmApplication
from crmflow.aggregates.publication import published_documents
from crmflow.processes.instance import instance_id
from crmflow.processes.loader import load_files
from crmflow.processes.registry import DefinitionRegistry
from crmflow.processes.runtime import ProcessRuntime
from tests.conftest import Clock

DEFINITIONS = Path(__file__).parents[3] / "processes" / "definitions"
MONDAY_9 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_a_lead_routed_an_hour_late_is_overdue_two_days_after_it_was_created() -> None:
    clock = Clock(MONDAY_9)
    app = CrmApplication("memory://", clock=clock)
    DefinitionRegistry(app).deploy(load_files([DEFINITIONS / "web-lead-follow-up.yaml"]), "ada")
    before = app.recorder.max_notification_id() or 0
    lead = str(app.execute(CommandRequest("lead.create", "acme", {"name": "Ada", "source": "web"},
                                          correlation_id="web-form-7")).aggregate_id)  # fmt: skip
    stored = app.recorder.select_notifications(start=before + 1, limit=10)
    (created,) = [document for _, document in published_documents(app, stored)]
    runtime = ProcessRuntime(app, clock)

    clock.advance(hours=1)  # the process worker gets to it at 10:00
    runtime.handle([created])

    instance = runtime.instances.get(instance_id("acme", "web-lead-follow-up", lead))
    # wait-contact: P2D from the lead's creation, Monday 09:00 → Wednesday 09:00 (not 10:00).
    assert instance.waiting.due == MONDAY_9 + timedelta(days=2)
    # What the worker recorded happened when it recorded it: the assignment at 10:00.
    assert [(h.type, h.time) for h in app.history(lead, "acme")] == [
        ("LeadCreated", MONDAY_9), ("LeadAssigned", MONDAY_9 + timedelta(hours=1))]  # fmt: skip

    clock.advance(days=2)  # Wednesday 10:00: due an hour ago
    with structlog.testing.capture_logs() as logs:
        runtime.fire_due()

    (overdue,) = [line for line in logs if line["event"] == "process_emitted"]
    assert (overdue["tenant"], overdue["correlation_id"]) == ("acme", "web-form-7")
    assert runtime.fire_due() == [], "once"
