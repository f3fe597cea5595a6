"""Several stored aggregates read in one query, on SQLite and PostgreSQL, as one-by-one reads find them."""

from __future__ import annotations

import uuid

from crmflow.aggregates.application import CommandRequest, CrmApplication
from crmflow.aggregates.reading import find, find_many


def test_a_batch_of_leads_is_read_in_one_query_as_each_would_be_read_alone(app: CrmApplication) -> None:
    leads = [app.execute(CommandRequest("lead.create", "acme", {"name": f"Lead {n}", "source": "web"})).aggregate_id
             for n in range(5)]  # fmt: skip
    # The second and fourth lead move on: two more events each, so histories of 1 and 3 events are mixed.
    for lead_id in leads[1::2]:
        app.execute(CommandRequest("lead.assign", "acme", {"lead_id": str(lead_id), "owner": "sam"}))
        app.execute(CommandRequest("lead.work", "acme", {"lead_id": str(lead_id)}))
    nobody = uuid.uuid4()

    found = find_many(app, [*leads, nobody, leads[0]])  # an id nothing holds, and one asked for twice

    assert set(found) == set(leads)  # 5 leads; the unknown id is left out
    for lead_id in leads:
        alone = find(app.repository, lead_id)
        assert (found[lead_id].version, found[lead_id].owner, found[lead_id].status) == (
            alone.version, alone.owner, alone.status)  # fmt: skip
    assert [found[lead_id].version for lead_id in leads] == [1, 3, 1, 3, 1]


def test_reading_no_ids_reads_nothing(app: CrmApplication) -> None:
    assert find_many(app, []) == {}
