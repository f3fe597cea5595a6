"""A process designer checks definitions from the command line."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.conftest import Crmflow

DEFINITIONS = Path(__file__).parents[2] / "processes" / "definitions"
SHIPPED_SCHEMA = DEFINITIONS.parent / "crmflow.schema.json"


def test_valid_definitions_pass_and_broken_ones_exit_1_with_file_line_and_field(crmflow: Crmflow, tmp_path: Path) -> None:
    ok = crmflow("process", "validate", *map(str, sorted(DEFINITIONS.glob("*.yaml"))))
    assert ok.stdout.startswith("valid:")

    broken = tmp_path / "broken.yaml"
    broken.write_text((DEFINITIONS / "web-lead-follow-up.yaml").read_text()
                      .replace("do: lead.assign", "do: lead.asign").replace("on_timeout: escalate", "on_timeout: escalte"))  # fmt: skip
    done = crmflow("process", "validate", str(broken), check=False)
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert f"{broken}:20: steps[1].do: unknown command 'lead.asign'; did you mean lead.assign" in lines[0]
    assert f"{broken}:27: steps[2].on_timeout: 'escalte' is not a step of this process" in lines[1]
    # With the timeout pointing nowhere, the escalation step cannot be reached either.
    assert f"{broken}:29: steps[3].id: step 'escalate' can never be reached" in lines[2]
    assert lines[-1] == "3 problem(s) in 1 file(s)"


def test_the_schema_is_printed_for_editors(crmflow: Crmflow) -> None:
    schema = json.loads(crmflow("process", "schema").stdout)
    assert "ProcessDefinition" in schema["definitions"] and schema["$id"] == "urn:crmflow:process-documents:v1"


def test_a_designer_outside_the_repository_writes_the_schema_beside_the_definitions(crmflow: Crmflow, tmp_path: Path) -> None:
    done = crmflow("process", "schema", "--output", "crmflow.schema.json")  # the fixture runs in tmp_path
    written = (tmp_path / "crmflow.schema.json").read_text(encoding="utf-8")
    assert done.stdout == "" and written == SHIPPED_SCHEMA.read_text(encoding="utf-8")
    assert json.loads(written)["definitions"]["Calendar"]["properties"]["kind"]["const"] == "Calendar"


def test_the_schema_help_shows_how_to_write_it_and_the_modeline_that_names_it(crmflow: Crmflow) -> None:
    shown = crmflow("process", "schema", "--help").stdout
    assert "crmflow process schema --output crmflow.schema.json" in shown
    assert "# yaml-language-server: $schema=crmflow.schema.json" in shown
    assert "crmflow process schema --output crmflow.schema.json" in crmflow("process", "--help").stdout


def test_the_shipped_process_tests_pass_through_the_designers_command(crmflow: Crmflow) -> None:
    done = crmflow("process", "test", *map(str, sorted(DEFINITIONS.glob("*.yaml"))))
    summary = done.stdout.strip().splitlines()[-1]
    passed = int(summary.split()[0])
    assert summary == f"{passed} passed, 0 failed" and passed >= 12
    assert "FAIL" not in done.stdout


def test_a_designers_ci_tests_and_validates_the_definitions_folder_as_it_would_the_files(crmflow: Crmflow) -> None:
    files = [str(p) for p in sorted([*DEFINITIONS.glob("*.yaml"), *DEFINITIONS.glob("*.yml")])]
    assert crmflow("process", "test", str(DEFINITIONS)).stdout == crmflow("process", "test", *files).stdout
    validated = crmflow("process", "validate", str(DEFINITIONS)).stdout
    assert validated == crmflow("process", "validate", *files).stdout
    assert validated.startswith(f"valid: {len(files)} file(s)")


def test_a_folder_named_twice_or_beside_its_own_file_is_read_once(crmflow: Crmflow) -> None:
    once = crmflow("process", "validate", str(DEFINITIONS)).stdout
    assert crmflow("process", "validate", str(DEFINITIONS), str(DEFINITIONS / "calendars.yaml")).stdout == once


def test_a_folder_without_definitions_is_refused_naming_it(crmflow: Crmflow, tmp_path: Path) -> None:
    empty = tmp_path / "drafts"
    empty.mkdir()
    (empty / "notes.txt").write_text("not a definition")
    for action in ("test", "validate"):
        done = crmflow("process", action, str(empty), check=False)
        assert done.returncode == 1
        assert done.stderr.strip() == f"error: {empty} is a folder with no .yaml or .yml file in it"


def test_the_help_of_test_and_validate_shows_a_folder_example(crmflow: Crmflow) -> None:
    for action in ("test", "validate"):
        shown = crmflow("process", action, "--help").stdout
        assert f"crmflow process {action} processes/definitions " in shown and "FILE_OR_FOLDER" in shown


def test_a_failing_process_test_exits_1_and_says_what_differed(crmflow: Crmflow, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text((DEFINITIONS / "invoice-paid.yaml").read_text().replace("currency: EUR", "currency: USD"))
    done = crmflow("process", "test", str(wrong), check=False)
    assert done.returncode == 1
    assert "FAIL a paid invoice is booked once against its account" in done.stdout
    assert "'currency': 'EUR'" in done.stdout  # what the process really did


def test_a_designer_deploys_then_asks_what_a_change_would_do(crmflow: Crmflow, tmp_path: Path) -> None:
    crmflow("process", "deploy", str(DEFINITIONS / "web-lead-follow-up.yaml"), str(DEFINITIONS / "calendars.yaml"), "--by", "ada")
    for n in range(3):
        crmflow("command", "lead.create", "--tenant", "acme", "--data", json.dumps({"name": f"L{n}", "source": "web"}))
    listed = json.loads(crmflow("process", "list", "--format", "json").stdout)
    assert {(d["name"], d["version"], d["deployed_by"]) for d in listed} >= {("web-lead-follow-up", 3, "ada")}

    proposal = tmp_path / "web-v4.yaml"
    proposal.write_text((DEFINITIONS / "web-lead-follow-up.yaml").read_text()
                        .replace("version: 3", "version: 4").replace('"chen"])', '"chen", "dana"])'))  # fmt: skip
    report = json.loads(crmflow("process", "whatif", str(proposal), "--format", "json").stdout)
    rows = {r["measure"]: (r["deployed"], r["proposed"]) for r in report["rows"]}
    assert report["events"] >= 3
    assert rows["assignments"] == (3, 3)
    assert rows["workload ana"] == (1, 1) and rows["workload chen"] == (1, 1)
    assert report["running_now"] == {"web-lead-follow-up@3 at wait-contact": 3}
