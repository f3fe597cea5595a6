"""An activity's lifecycle (open → completed | cancelled), old LeadQualified events, and business_add()."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from crmflow.aggregates.activity import Activity
from crmflow.aggregates.catalog import event_data_model, from_cloudevent
from crmflow.aggregates.envelope import to_cloudevent_dict
from crmflow.aggregates.errors import IllegalTransitionError, InvalidValueError
from crmflow.aggregates.lead import Lead
from crmflow.processes.business_time import business_add, literal_calls
from crmflow.processes.calendar import BusinessCalendar
from crmflow.processes.expressions import ExpressionError
from crmflow.processes.loader import load_files

SHIPPED = Path(__file__).parents[2] / "processes" / "definitions" / "optional" / "lead-follow-up-activity.yaml"
MONDAY = datetime(2026, 3, 2, 9, tzinfo=timezone.utc)
LEAD = uuid.uuid4()


def scheduled() -> Activity:
    return Activity.schedule(tenant_id="acme", activity_kind="call", related_kind="lead", related_id=LEAD,
                             owner="ana", subject="Intro", due_at=MONDAY + timedelta(days=1))  # fmt: skip


def test_an_open_activity_is_completed_or_cancelled_once_and_then_stays_so() -> None:
    done, dropped = scheduled(), scheduled()
    done.complete("interested", None, MONDAY)
    dropped.cancel("moved to May", MONDAY)
    assert (done.status, done.outcome, dropped.status, dropped.cancel_reason) == (
        "completed", "interested", "cancelled", "moved to May")
    with pytest.raises(IllegalTransitionError, match="cannot cancel activity .* from completed: allowed from open"):
        done.cancel("too late", MONDAY)
    with pytest.raises(IllegalTransitionError, match="cannot complete activity .* from cancelled: allowed from open"):
        dropped.complete("done after all", None, MONDAY)
    assert (done.status, dropped.status) == ("completed", "cancelled"), "a refused move changes nothing"


def test_an_activity_kind_or_record_kind_outside_the_lists_is_refused_naming_the_allowed_ones() -> None:
    with pytest.raises(InvalidValueError, match="kind 'fax' is not allowed: use one of call, email, meeting, task"):
        Activity.schedule(tenant_id="acme", activity_kind="fax", related_kind="lead", related_id=LEAD, owner="ana",
                          subject="x", due_at=MONDAY)  # fmt: skip
    with pytest.raises(InvalidValueError, match="related_kind 'campaign' is not allowed"):
        Activity.log(tenant_id="acme", activity_kind="call", related_kind="campaign", related_id=LEAD, owner="ana",
                     subject="x", outcome="ok", occurred_at=MONDAY, now=MONDAY)  # fmt: skip


def test_a_lead_qualified_event_stored_before_it_named_an_activity_still_loads() -> None:
    lead = Lead(tenant_id="acme", name="Ada", company=None, email=None, source="web", campaign_id=None,
                owner="ana", score=0)  # fmt: skip
    lead.start_working()
    lead.qualify()
    documents = [to_cloudevent_dict(e) for e in lead.collect_events()]
    assert documents[-1]["data"] == {"status": "qualified", "previous_status": "working", "activity_id": None}
    del documents[-1]["data"]["activity_id"]  # as an event stored before the field existed

    assert event_data_model(type(from_cloudevent(documents[-1]))).model_validate(documents[-1]["data"]).activity_id is None
    replayed = None
    for document in documents:
        replayed = from_cloudevent(document).mutate(replayed)
    assert (replayed.status, replayed.qualifying_activity_id) == ("qualified", None)


def test_business_add_counts_working_hours_over_a_weekend_and_names_a_missing_calendar() -> None:
    # The shipped sales-emea calendar: 09:00-17:00 in Berlin on weekdays.
    (document,) = [d for d in load_files([SHIPPED]) if d.kind == "Calendar"]
    calendar = BusinessCalendar(document.model)  # type: ignore[arg-type]
    add = business_add({"sales-emea": calendar})
    friday_3pm_berlin = datetime(2026, 3, 6, 14, tzinfo=timezone.utc)
    # 2 working hours left on Friday (15-17), 6 on Monday from 09:00: Monday 15:00 Berlin = 14:00 UTC.
    assert add(friday_3pm_berlin, "8h", "sales-emea") == datetime(2026, 3, 9, 14, tzinfo=timezone.utc)
    with pytest.raises(ExpressionError, match="calendar 'nowhere' is not loaded"):
        add(friday_3pm_berlin, "8h", "nowhere")
    with pytest.raises(ExpressionError, match="is not a duration"):
        add(friday_3pm_berlin, "a day", "sales-emea")
    assert literal_calls('business_add(now, "8h", "sales-emea")') == [("8h", "sales-emea")]
