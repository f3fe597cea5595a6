"""One stored aggregate read by id (or None), and the application's save of aggregates."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from crmflow.aggregates.application import CommandRequest, CrmApplication
from crmflow.aggregates.lead import Lead
from crmflow.aggregates.reading import find

AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def new_lead(name: str) -> Lead:
    return Lead(tenant_id="acme", name=name, company=None, email=None, source="web", campaign_id=None, owner=None,
                score=10)  # fmt: skip


def store() -> CrmApplication:
    return CrmApplication("memory://", clock=lambda: AT)


def test_an_id_nothing_is_stored_under_is_found_as_none() -> None:
    assert find(store().repository, uuid.uuid4()) is None


def test_a_lead_is_found_as_it_is_now_and_as_it_was_at_its_first_version() -> None:
    app = store()
    lead_id = app.execute(CommandRequest("lead.create", "acme", {"name": "Ada", "source": "web"})).aggregate_id
    app.execute(CommandRequest("lead.assign", "acme", {"lead_id": str(lead_id), "owner": "sam"}))

    now, first = find(app.repository, lead_id), find(app.repository, lead_id, version=1)

    assert isinstance(now, Lead) and now.owner == "sam" and now.version == 2  # created, then assigned
    assert isinstance(first, Lead) and first.owner is None and first.version == 1


def test_saving_two_new_aggregates_stores_each_ones_events_once_in_the_order_given() -> None:
    app = store()
    first, second = new_lead("Ada"), new_lead("Grace")
    second.assign("sam")  # two pending events: created, assigned

    recordings = app.save(first, None, second)  # None is skipped, as eventsourcing's save skips it

    # 1 event of the first lead + 2 of the second = 3 recordings, with notification ids 1, 2, 3.
    assert [(r.domain_event.originator_id, r.domain_event.originator_version) for r in recordings] == [
        (first.id, 1), (second.id, 1), (second.id, 2)]  # fmt: skip
    assert [r.notification.id for r in recordings] == [1, 2, 3]
    assert not first.pending_events and not second.pending_events
    assert find(app.repository, second.id).owner == "sam"


def test_an_event_saved_on_its_own_is_stored_as_the_library_stores_it() -> None:
    app = store()
    lead = new_lead("Ada")
    app.save(lead)
    lead.assign("sam")
    (assigned,) = lead.collect_events()

    app.save(assigned)

    assert find(app.repository, lead.id).owner == "sam"
