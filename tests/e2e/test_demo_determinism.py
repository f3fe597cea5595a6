"""`crmflow demo --seed N` does the same work every time: a workload to compare changes against."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

# Two simulated working days of one tenant (~5 s a run); the start is pinned, so that two runs either side of
# a Monday midnight (when the default start moves on a week) still simulate the same days.
DEMO = ("demo", "--size", "small", "--days", "2", "--tenants", "1", "--start", "2026-03-02",
        "--reports", "all")


@dataclass(frozen=True)
class DemoRun:
    returncode: int
    stdout: str  # the reports
    stderr: str  # progress, the summary, where the logs are

    @property
    def work(self) -> str:
        """The summary's account of the work done (commands, refusals, inbound and stored events), without
        the seconds it took."""
        summary = re.search(r"done: .*?in all", self.stderr, re.S)
        assert summary, self.stderr[-3000:]
        return re.sub(r"in [\d.]+ s;", "", " ".join(summary.group(0).split()))

    @property
    def log_file(self) -> Path:
        found = re.search(r"Logs \(structlog JSON\): (\S+)", self.stderr)
        assert found, self.stderr[-3000:]
        return Path(found.group(1))


def start_demo(seed: int, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "crmflow", *DEMO, "--seed", str(seed)], cwd=cwd,
                            env={**os.environ, "COLUMNS": "200"}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


def finish(demo: subprocess.Popen[str]) -> DemoRun:
    stdout, stderr = demo.communicate(timeout=120)
    assert demo.returncode == 0, stderr[-3000:]
    return DemoRun(demo.returncode, stdout, stderr)


def test_two_demo_runs_with_the_same_seed_do_the_same_work_and_print_the_same_reports(tmp_path: Path) -> None:
    # Both at once, as two people on one machine would: each has its own broker, data and log file.
    first, second = start_demo(11, tmp_path), start_demo(11, tmp_path)
    one, two = finish(first), finish(second)
    assert "commands by users" in one.work
    assert one.work == two.work
    assert "pipeline · acme" in one.stdout and "instances · acme" in one.stdout
    assert one.stdout == two.stdout  # every report, byte for byte
    # Each run logged into a file of its own, kept after the run although its data directory is gone.
    assert one.log_file != two.log_file
    for run in (one, two):
        assert run.log_file.name.startswith("crmflow-demo-") and run.log_file.suffix == ".log"
        assert '"demo_finished"' in run.log_file.read_text(encoding="utf-8")
        run.log_file.unlink()


@pytest.mark.slow  # the same-seed run above is the guarantee; this one only shows the seed matters
def test_a_demo_with_another_seed_does_other_work(tmp_path: Path) -> None:
    started = start_demo(11, tmp_path), start_demo(12, tmp_path)
    eleven, twelve = (finish(demo) for demo in started)
    assert eleven.stdout != twelve.stdout
    for run in (eleven, twelve):
        run.log_file.unlink()
