"""`crmflow demo --serve` keeps the demo's data and serves the console on it, with links that sign in."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.serving import free_port


def test_the_demo_serves_the_console_on_its_data_and_its_printed_link_signs_an_analyst_in(
    tmp_path: Path,
) -> None:
    port = free_port()
    stderr = tmp_path / "demo.err"
    with stderr.open("w") as err:
        demo = subprocess.Popen(
            [sys.executable, "-m", "crmflow", "demo", "--size", "small", "--days", "1", "--tenants", "1",
             "--reports", "none", "--data-dir", str(tmp_path / "data"), "--serve", "--port", str(port)],
            stdout=subprocess.DEVNULL, stderr=err, text=True,
        )  # fmt: skip
    try:
        deadline, link = time.monotonic() + 240, None
        while link is None and time.monotonic() < deadline and demo.poll() is None:
            found = re.search(r"analyst\s+(http://\S+/console/sign-in\?token=\S+)", stderr.read_text())
            if found and _answers(f"http://127.0.0.1:{port}/healthz"):
                link = found.group(1)
            time.sleep(0.2)
        assert link, stderr.read_text()[-2000:]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as browser:
            form = browser.get(link.split(f":{port}", 1)[1])
            nonce = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
            token = re.search(r'name="token" value="([^"]+)"', form.text)
            assert nonce and token, form.text
            fields = {"csrf_token": nonce.group(1), "token": token.group(1), "next": "/console/reports"}
            signed = browser.post("/console/sign-in", data=fields)
            assert signed.status_code == 303 and signed.headers["location"] == "/console/reports"
            dashboard = browser.get("/console/reports")
            assert (
                dashboard.status_code == 200 and "Pipeline: open amount by stage and owner" in dashboard.text
            )
            assert "grace · analyst · tenant acme" in dashboard.text
        assert (tmp_path / "data" / "crmflow.db").exists(), "the demo's data is kept"
    finally:
        demo.send_signal(signal.SIGTERM)
        assert demo.wait(30) == 0, stderr.read_text()[-2000:]


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
