"""A report written to a pipe or a file keeps every header and value whole; in a terminal it wraps, never cuts."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
from pathlib import Path

from crmflow.projections.reports import REPORTS
from tests.e2e.conftest import Crmflow


def test_the_sla_report_piped_to_a_file_has_every_header_in_full_on_one_line(crmflow: Crmflow) -> None:
    crmflow("command", "account.create", "--tenant", "acme", "--data", '{"name": "Globex"}')  # a store to report on
    done = crmflow("query", "sla", "--tenant", "acme", extra_env={"COLUMNS": "80"})
    header = next(line for line in done.stdout.splitlines() if "priority" in line)
    cells = [cell.strip() for cell in header.strip("┃ ").split("┃")]
    assert cells == list(REPORTS["sla"].columns)
    assert "…" not in done.stdout


def test_in_a_narrow_terminal_the_table_wraps_its_headers_instead_of_cutting_them(tmp_path: Path) -> None:
    env = {**os.environ, "CRMFLOW_DATABASE_URL": str(tmp_path / "crm.db"), "COLUMNS": "60", "LINES": "40"}
    subprocess.run([sys.executable, "-m", "crmflow", "command", "account.create", "--tenant", "acme", "--data",
                    '{"name": "Globex"}'], env=env, cwd=tmp_path, capture_output=True, timeout=60, check=True)  # fmt: skip
    leader, follower = pty.openpty()
    try:
        done = subprocess.run([sys.executable, "-m", "crmflow", "query", "sla", "--tenant", "acme"], env=env,
                              cwd=tmp_path, stdout=follower, stderr=subprocess.PIPE, timeout=60)  # fmt: skip
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal's other end is closed: all was read
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(leader)
    shown = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", b"".join(chunks).decode())  # colours and styles
    assert done.returncode == 0
    lines = [line for line in shown.splitlines() if line.strip()]
    assert lines and max(len(line) for line in lines) <= 60 < len("".join(REPORTS["sla"].columns))
    assert "…" not in shown
