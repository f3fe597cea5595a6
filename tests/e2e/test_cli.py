"""A sales rep and an admin use the crmflow command."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.e2e.conftest import Crmflow


def test_a_rep_creates_and_works_a_lead_then_asks_why_it_is_assigned(crmflow: Crmflow) -> None:
    created = json.loads(crmflow("command", "lead.create", "--tenant", "acme",
                                 "--data", '{"name": "Ada", "company": "Analytical Engines"}').stdout)  # fmt: skip
    lead = created["aggregate_id"]
    assert created["events"][0]["type"] == "LeadCreated"

    crmflow("command", "lead.assign", "--tenant", "acme", "--caller", "router-service",
            "--data", json.dumps({"lead_id": lead, "owner": "maria"}))  # fmt: skip

    history = json.loads(crmflow("explain", lead, "--tenant", "acme", "--format", "json").stdout)
    assert [h["event"] for h in history] == ["LeadCreated", "LeadAssigned"]
    assert history[0]["why"] == "command lead.create by cli:ada"
    assert history[1]["why"] == "command lead.assign by router-service"
    # Objects, not strings, and full ids: for programs.
    assert (history[1]["caused_by"]["kind"], history[1]["caused_by"]["caller"]) == ("command", "router-service")
    assert history[1]["data"]["owner"] == "maria" and history[1]["subject"] == lead
    assert len(history[1]["id"]) == 36 and len(history[1]["caused_by"]["command_id"]) == 36
    table = crmflow("explain", lead, "--tenant", "acme").stdout
    assert "LeadAssigned" in table and "router-service" in table


def test_a_retried_cli_command_with_the_same_key_acts_once(crmflow: Crmflow) -> None:
    args = ("command", "lead.create", "--tenant", "acme", "--data", '{"name": "Ada"}', "--idempotency-key", "form-1")
    first, second = json.loads(crmflow(*args).stdout), json.loads(crmflow(*args).stdout)
    assert (first["replayed"], second["replayed"]) == (False, True)
    assert first["aggregate_id"] == second["aggregate_id"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("command", "lead.qualfy", "--tenant", "acme"), "unknown command 'lead.qualfy'; did you mean lead.qualify"),
        (("command", "lead.create", "--tenant", "acme", "--data", "{name"), "--data is not valid JSON"),
        (("command", "lead.create", "--tenant", "acme", "--data", '{"nam": "x"}'), "name: Field required"),
        (("command", "lead.work", "--tenant", "acme", "--data", '{"lead_id": "00000000-0000-4000-8000-000000000001"}'),
         "lead 00000000-0000-4000-8000-000000000001 not found in tenant acme"),
        (("command", "lead.create", "--tenant", "acme\n", "--data", '{"name": "Ada"}'),
         "tenant 'acme\\n' is not a valid tenant id"),
        (("command", "lead.create", "--tenant", "acme", "--data", "[" * 50_000),
         "the limit is json_depth (32 levels)"),
        (("command", "lead.create", "--tenant", "acme", "--data", '{"name": "Ada", "n": ' + "1" * 5000 + "}"),
         "the limit is integer_range"),
        (("command", "lead.create", "--tenant", "acme", "--data", '{"name": "Ada", "n": ' + str(2**64) + "}"),
         "the limit is integer_range"),
    ],
    ids=["unknown_command", "not_json", "missing_field", "not_found", "tenant_with_a_newline",
         "nested_50000_deep", "integer_of_5000_digits", "integer_2_to_the_64"],
)
def test_mistakes_exit_1_with_a_message_naming_what_is_wrong(crmflow: Crmflow, args: tuple[str, ...], message: str) -> None:
    done = crmflow(*args, check=False)
    assert done.returncode == 1
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_a_data_file_that_is_missing_a_folder_or_not_json_is_named_with_its_path(crmflow: Crmflow, tmp_path: Path) -> None:
    (tmp_path / "lead.json").write_text("{name: Ada}")
    cases = {"@/nonexistent.json": "error: --data @/nonexistent.json: no such file",
             f"@{tmp_path}": f"error: --data @{tmp_path}: is a folder, not a file",
             "@lead.json": "error: --data @lead.json is not valid JSON: "}  # fmt: skip
    for data, line in cases.items():
        done = crmflow("command", "lead.create", "--tenant", "acme", "--data", data, check=False)
        assert done.returncode == 1 and done.stderr.startswith(line), done.stderr
        assert len(done.stderr.splitlines()) == 1


def test_an_illegal_transition_is_refused_with_the_lifecycle(crmflow: Crmflow) -> None:
    lead = json.loads(crmflow("command", "lead.create", "--tenant", "acme", "--data", '{"name": "Ada"}').stdout)["aggregate_id"]
    done = crmflow("command", "lead.qualify", "--tenant", "acme", "--data", json.dumps({"lead_id": lead}), check=False)
    assert done.returncode == 1
    assert f"cannot qualify lead {lead[:8]} from new: allowed from working" in done.stderr


def test_the_catalogue_is_printed_for_people_and_for_machines(crmflow: Crmflow) -> None:
    machine = json.loads(crmflow("catalog", "--format", "json").stdout)
    assert "lead.convert" in {c["name"] for c in machine["commands"]}
    assert machine["events"][0]["schema"]["type"] == "object"
    people = crmflow("catalog").stdout
    assert "opportunity.win" in people and "OpportunityWon" in people


def test_the_catalogue_is_printed_as_the_markdown_docs_page(crmflow: Crmflow) -> None:
    from crmflow.workers.cli.domain import catalogue_markdown

    page = crmflow("catalog", "--format", "markdown").stdout
    assert page == catalogue_markdown(), "the command prints the very page docs/catalog.md is checked against"
    assert page.startswith("# ") and "do not edit it by hand" in page
    assert "| `opportunity.win` |" in page and "| `OpportunityWon` | opportunity |" in page
    assert "crmflow catalog --format markdown > docs/catalog.md" in crmflow("catalog", "--help").stdout


@pytest.mark.parametrize("sub", ["catalog", "command", "explain"])
def test_every_subcommand_has_help_with_an_example(crmflow: Crmflow, sub: str) -> None:
    done = crmflow(sub, "--help")
    assert "example" in done.stdout and "crmflow " + sub in done.stdout


def test_the_console_script_is_installed() -> None:
    assert shutil.which("crmflow"), "pip install should put `crmflow` on PATH"


def test_a_bad_setting_in_the_environment_is_named_without_a_traceback(tmp_path: object) -> None:
    import os
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "crmflow", "catalog"], capture_output=True, text=True,
                          env={**os.environ, "CRMFLOW_PARTITIONS": "0"}, timeout=60)  # fmt: skip
    assert done.returncode == 2
    assert "invalid configuration: PARTITIONS: Input should be greater than or equal to 1" in done.stderr
    assert "Traceback" not in done.stderr


def test_without_user_in_the_environment_the_caller_is_still_the_login_name(crmflow: Crmflow) -> None:
    login = {k: "" for k in ("USER", "LOGNAME", "LNAME", "USERNAME")}  # as under cron or in a container
    created = crmflow("command", "lead.create", "--tenant", "acme", "--data", '{"name": "Ada"}',
                      extra_env={**login, "LOGNAME": "grace"})  # fmt: skip
    lead = json.loads(created.stdout)["aggregate_id"]
    (entry,) = json.loads(crmflow("explain", lead, "--tenant", "acme", "--format", "json").stdout)
    assert (entry["caused_by"]["caller"], entry["why"]) == ("cli:grace", "command lead.create by cli:grace")
