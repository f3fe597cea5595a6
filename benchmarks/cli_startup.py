"""How long a `crmflow` call takes to start: `--help` and a SQLite `command`, next to bare Python.

    python benchmarks/cli_startup.py [--runs 20]

Prints p50 and p99 wall time of each, in one run beside `python -c pass` and `python -c "import crmflow"`,
and how many modules each call imports (crmflow's own, and whether Kafka, FastAPI, uvicorn or the demo
came along). Not a test: figures depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEAVY = ("kafka", "fastapi", "uvicorn", "crmflow.workers.demo", "crmflow.workers.run.runner")
PROBE = ("import sys, runpy; sys.argv = ['crmflow', *sys.argv[1:]]\n"
         "try:\n    runpy.run_module('crmflow', run_name='__main__')\n"
         "except SystemExit:\n    pass\n"
         "mods = list(sys.modules)\n"
         f"heavy = sorted({{m if m.startswith('crmflow') else m.split('.')[0] for m in mods if m.startswith({HEAVY!r})}})\n"
         "own = sum(m.startswith('crmflow') for m in mods)\n"
         "sys.stderr.write('\\nMODULES %d %d %s\\n' % (len(mods), own, heavy))")  # fmt: skip


def timed(argv: list[str], runs: int, cwd: Path) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, cwd=cwd, capture_output=True, check=False)
        times.append(time.perf_counter() - start)
    return times


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        lead = ["--database-url", str(cwd / "crm.db"), "command", "lead.create", "--tenant", "acme",
                "--data", '{"name": "Ada"}']  # fmt: skip
        cases = {
            "python -c pass": ([sys.executable, "-c", "pass"], None),
            "python -c 'import crmflow'": ([sys.executable, "-c", "import crmflow"], None),
            "crmflow --help": ([sys.executable, "-m", "crmflow", "--help"], ["--help"]),
            "crmflow command lead.create (SQLite)": ([sys.executable, "-m", "crmflow", *lead], lead),
        }
        print(f"{runs} runs each, wall time of the whole process\n")
        print(f"{'call':40} {'p50 ms':>8} {'p99 ms':>8}  modules (crmflow's) heavy ones imported")
        for name, (argv, probe_args) in cases.items():
            times = timed(argv, runs, cwd)
            modules = ""
            if probe_args is not None:
                done = subprocess.run([sys.executable, "-c", PROBE, *probe_args], cwd=cwd, capture_output=True,
                                      text=True, check=False)  # fmt: skip
                line = next((x for x in done.stderr.splitlines() if x.startswith("MODULES")), "MODULES ? ? ?")
                _, total, own, heavy = line.split(" ", 3)
                modules = f"{total} ({own}) {heavy}"
            print(f"{name:40} {statistics.median(times) * 1000:8.0f} {p(times, 0.99) * 1000:8.0f}  {modules}")


if __name__ == "__main__":
    main()
