"""A designer validates a hostile definition from the shell: exit 1 and one line, never a crash."""

from __future__ import annotations

import signal
from pathlib import Path

from tests.e2e.conftest import Crmflow

HEAD = (
    "apiVersion: crmflow/v1\nkind: Process\nname: hostile\nversion: 1\ntrigger: {on: [LeadCreated]}\nsteps:\n"
)


def test_validating_the_240_kb_expression_exits_1_with_one_line_naming_the_limit(
    crmflow: Crmflow, tmp_path: Path
) -> None:
    hostile = tmp_path / "sum.yaml"
    hostile.write_text(HEAD + "  - id: boom\n    set: {x: '" + " + ".join(["1"] * 60_000) + "'}\n")
    assert 240_000 < hostile.stat().st_size < 256 * 1024, (
        "the size that crashed the CEL runtime, under the file limit"
    )

    done = crmflow("process", "validate", str(hostile), check=False)

    assert done.returncode == 1, f"not a clean refusal: {done.returncode} (SIGSEGV is {-signal.SIGSEGV})"
    problem, summary = done.stderr.splitlines()
    assert problem.startswith(f"{hostile}:8: steps[0].set.x: '1 + 1 + 1")
    assert problem.endswith(
        "the expression has 239,997 characters; the limit is expression_chars (4,096 characters)"
    )
    assert summary == "1 problem(s) in 1 file(s)"
    assert "Traceback" not in done.stderr


def test_deploying_yaml_nested_five_thousand_deep_exits_1_with_one_line(
    crmflow: Crmflow, tmp_path: Path
) -> None:
    deep = tmp_path / "deep.yaml"
    deep.write_text(HEAD + "  - " + "[" * 5000 + "]" * 5000 + "\n")

    done = crmflow("process", "deploy", str(deep), check=False)

    assert done.returncode == 1
    assert done.stderr.splitlines()[0] == (
        f"{deep}:7: refused before parsing: mappings and lists are nested 33 deep here; "
        "the limit is yaml_depth (32 levels)"
    )
    assert "Traceback" not in done.stderr
