"""An operator's typo in an environment variable stops crmflow at once, naming the setting meant."""

from __future__ import annotations

import time
from pathlib import Path

from tests.e2e.conftest import Crmflow


def test_a_misspelled_variable_exits_2_within_seconds_with_one_line_naming_the_setting_meant(
    crmflow: Crmflow, tmp_path: Path
) -> None:
    started = time.monotonic()
    done = crmflow("process", "list", check=False, extra_env={"CRMFLOW_PARTITION": "3"})
    assert time.monotonic() - started < 10
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [
        "error: invalid configuration: CRMFLOW_PARTITION: unknown setting; did you mean CRMFLOW_PARTITIONS?"
    ]
    assert not (tmp_path / "crm.db").exists(), "refused before the store is opened"


def test_the_same_command_runs_once_the_variable_is_spelled_right(crmflow: Crmflow) -> None:
    crmflow("command", "lead.create", "--tenant", "acme", "--data", '{"name": "Ada"}')  # a store to list from
    done = crmflow("process", "list", "--format", "json", extra_env={"CRMFLOW_PARTITIONS": "3"})
    assert done.stdout.strip() == "[]"


def test_a_short_api_secret_is_refused_naming_the_variable_and_the_length_in_characters(crmflow: Crmflow) -> None:
    done = crmflow("process", "list", check=False, extra_env={"CRMFLOW_API_SECRET": "short"})
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [
        "error: invalid configuration: CRMFLOW_API_SECRET: must be at least 32 characters (got 5)"
    ]
