"""A store written by release 0.1 (topics such as ``aggregates.lead:Lead.LeadCreated``) is read, then migrated.

The fixture ``tests/fixtures/store-0.1.sqlite`` is the event store of
``crmflow demo --size small --days 3 --tenants 1 --seed 5`` run by release 0.1
(commit f220800): 441 stored events of every kind, internal records included.
Its rows are copied byte for byte into a fresh SQLite or PostgreSQL store.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from eventsourcing.persistence import StoredEvent

from crmflow.aggregates.application import CrmApplication
from crmflow.aggregates.topics import migrate_stored_topics
from crmflow.processes.runtime import StoredInstances
from crmflow.workers.history import stored_history

FIXTURE = Path(__file__).parent.parent / "fixtures" / "store-0.1.sqlite"


def fixture_rows() -> list[StoredEvent]:
    with sqlite3.connect(FIXTURE) as old:
        rows = old.execute("SELECT originator_id, originator_version, topic, state FROM stored_events ORDER BY rowid")
        return [StoredEvent(originator_id=i, originator_version=v, topic=t, state=bytes(s)) for i, v, t, s in rows]


OLD_ROWS = fixture_rows()
OLD_TOPICS = Counter(row.topic for row in OLD_ROWS)


@pytest.fixture
def old_store(database_url: str) -> Iterator[CrmApplication]:
    app = CrmApplication(database_url)
    app.recorder.insert_events(OLD_ROWS)
    yield app
    app.close()


def stored_topics(app: CrmApplication) -> Counter[str]:
    return Counter(n.topic for n in app.recorder.select_notifications(start=1, limit=10_000))


def test_the_fixture_is_what_release_0_1_stored() -> None:
    assert len(OLD_ROWS) == 441
    assert all(topic.startswith(("aggregates.", "processes.")) for topic in OLD_TOPICS)


def test_a_store_written_by_release_0_1_is_read_as_it_is(old_store: CrmApplication) -> None:
    # Published: 441 stored, less the internal records: 20 idempotency keys, 1 + 8 definition-index
    # events, 52 saved instance states and 8 round-robin slots: 441 - 89 = 352.
    internal = sum(n for topic, n in OLD_TOPICS.items() if topic.startswith(
        ("aggregates.idempotency:", "processes.registry:DefinitionIndex", "processes.rotation_record:")
    ) or topic.endswith("ProcessStateSaved"))  # fmt: skip
    assert internal == 20 + 9 + 52 + 8
    history = list(stored_history(old_store))
    assert len(history) == 441 - internal == 352
    assert Counter(d["type"] for d in history)["LeadCreated"] == OLD_TOPICS["aggregates.lead:Lead.LeadCreated"] == 19

    every_aggregate = {row.originator_id for row in OLD_ROWS}
    assert all(old_store.repository.get(aggregate_id) is not None for aggregate_id in every_aggregate)

    # The process workers find every instance's saved state under its old topic: 29 instances started.
    instances = StoredInstances(old_store)
    assert instances.refresh() == OLD_TOPICS["processes.instance_record:ProcessInstanceRecord.ProcessStateSaved"] == 52
    assert len(instances.instances) == OLD_TOPICS["processes.instance_record:ProcessInstanceRecord.ProcessInstanceStarted"]


def test_migrate_rewrites_every_old_topic_once_and_the_history_reads_the_same(
    old_store: CrmApplication, database_url: str
) -> None:
    before = list(stored_history(old_store))

    counted = migrate_stored_topics(old_store, dry_run=True)
    assert stored_topics(old_store) == OLD_TOPICS  # a dry run changes nothing
    done = migrate_stored_topics(old_store, batch=100)  # 441 rows: 5 batches

    # Every row is renamed; each aggregate's one created event also names its aggregate's class.
    assert counted == done
    assert done.events == 441
    assert done.states == len({row.originator_id for row in OLD_ROWS})
    assert stored_topics(old_store) == Counter({f"crmflow.{topic}": n for topic, n in OLD_TOPICS.items()})
    assert migrate_stored_topics(old_store).events == 0
    assert list(stored_history(old_store)) == before

    # Another process opening the migrated store rebuilds every aggregate from the rewritten rows.
    reopened = CrmApplication(database_url)
    assert all(type(reopened.repository.get(row.originator_id)).__module__.startswith("crmflow.")
               for row in OLD_ROWS if row.originator_version == 1)  # fmt: skip
    reopened.close()
