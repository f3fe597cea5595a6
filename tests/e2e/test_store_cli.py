"""An operator upgrades from release 0.1: the old store is read, then migrated once with `crmflow store migrate`."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

from tests.e2e.conftest import Crmflow

FIXTURE = Path(__file__).parent.parent / "fixtures" / "store-0.1.sqlite"


def test_an_operator_migrates_a_release_0_1_store_once_and_its_histories_stay(crmflow: Crmflow, tmp_path: Path) -> None:
    shutil.copy(FIXTURE, tmp_path / "crm.db")  # the store the crmflow fixture points at
    with sqlite3.connect(tmp_path / "crm.db") as db:
        (lead,) = db.execute("SELECT originator_id FROM stored_events WHERE topic = 'aggregates.lead:Lead.LeadCreated' "
                             "ORDER BY rowid LIMIT 1").fetchone()  # fmt: skip
    story = json.loads(crmflow("explain", lead, "--tenant", "acme", "--format", "json").stdout)
    assert story[0]["event"] == "LeadCreated"

    # 441 rows in the fixture, every one under a 0.1 name.
    assert "would rewrite the topics of 441 stored events" in crmflow("store", "migrate", "--dry-run").stdout
    assert "rewrote the topics of 441 stored events" in crmflow("store", "migrate").stdout
    assert "the store uses the current names" in crmflow("store", "migrate").stdout

    assert json.loads(crmflow("explain", lead, "--tenant", "acme", "--format", "json").stdout) == story
    with sqlite3.connect(tmp_path / "crm.db") as db:
        assert db.execute("SELECT count(*) FROM stored_events WHERE topic NOT LIKE 'crmflow.%'").fetchone() == (0,)


def test_store_migrate_explains_itself(crmflow: Crmflow) -> None:
    help_text = crmflow("store", "migrate", "--help").stdout
    assert "crmflow store migrate --dry-run" in help_text and "Idempotent" in help_text
