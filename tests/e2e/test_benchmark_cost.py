"""The end-to-end benchmark's cost mode runs and reports what a lead costs (benchmarks/e2e.py --cost --quick)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_cost_mode_reports_cpu_records_and_events_per_lead(tmp_path: Path) -> None:
    out = tmp_path / "cost.json"
    subprocess.run([sys.executable, "benchmarks/e2e.py", "--cost", "--quick", "--leads", "60", "--broker", "bundled",
                    "--store", "sqlite", "--copies", "1", "--json", str(out)], cwd=REPO, check=True, timeout=600)  # fmt: skip
    (run,) = json.loads(out.read_text())["cost"]
    figures = run["figures"]
    assert "timer" in figures["per_lead_ms"]  # the timer may tick through a short run within one clock tick
    assert {"relay", "process", "projection", "broker"} <= {k for k, v in figures["per_lead_ms"].items() if v > 0}
    assert run["stored"]["the lead's own"] == 2 * 60  # LeadCreated and LeadAssigned, nothing else
    assert run["published"].get("LeadCreated") and figures["bare_ms"] > 0
