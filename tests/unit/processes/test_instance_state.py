"""An instance's state as stored: every field, nothing shared with the live instance."""

from __future__ import annotations

from dataclasses import asdict, fields
from datetime import datetime, timezone

from crmflow.processes.instance import Instance, Waiting


def waiting_instance() -> Instance:
    due = datetime(2026, 3, 4, 9, tzinfo=timezone.utc)
    return Instance("i-1", "web-lead-follow-up", 3, "acme", "lead-1", "evt-1", status="waiting",
                    step="wait-contact", vars={"owner": "ana", "tags": ["web"]},
                    waiting=Waiting("wait-contact", ["LeadStatusChanged"], "t-1", due, subject="lead-1"),
                    seen=["evt-1"], correlation_id="c-1")  # fmt: skip


def test_the_stored_state_holds_what_asdict_would_for_every_field() -> None:
    instance = waiting_instance()
    assert instance.to_dict() == asdict(instance)
    assert set(instance.to_dict()) == {f.name for f in fields(Instance)}, "a new field must be stored too"
    assert set(instance.to_dict()["waiting"]) == {f.name for f in fields(Waiting)}


def test_the_state_round_trips_and_later_changes_do_not_reach_the_stored_copy() -> None:
    instance = waiting_instance()
    stored = instance.to_dict()
    assert Instance.from_dict(stored) == instance
    instance.vars["owner"] = "ben"
    instance.remember("evt-2")
    assert waiting_instance().waiting is not None and instance.waiting is not None
    instance.waiting.on.append("LeadConverted")
    assert (stored["vars"]["owner"], stored["seen"], stored["waiting"]["on"]) == ("ana", ["evt-1"], ["LeadStatusChanged"])
