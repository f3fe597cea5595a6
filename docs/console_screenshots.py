"""Regenerate the README's console screenshots from a fresh demo: `python docs/console_screenshots.py`.

Runs `crmflow demo --size small` into a temporary directory, serves the console on it with `crmflow serve`,
signs in with Debian's Chromium (the browser tests' Playwright, no browser download) and writes
docs/images/console-dashboard.png and docs/images/console-process-diagram.png. About 30 seconds.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

IMAGES = Path(__file__).parent / "images"
SECRET = "screenshots-secret-that-is-long-enough-for-hs256"


def crmflow(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crmflow", *args], env=env, check=True, capture_output=True, text=True
    )


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="crmflow-shots-") as where:
        data = Path(where) / "data"
        env = {**os.environ, "CRMFLOW_API_SECRET": SECRET}
        crmflow("demo", "--size", "small", "--data-dir", str(data), "--reports", "none", env=env)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        served = {**env, "CRMFLOW_DATABASE_URL": str(data / "crmflow.db")}
        server = subprocess.Popen(
            [sys.executable, "-m", "crmflow", "serve", "--port", str(port)],
            env=served,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    urllib.request.urlopen(f"{base}/healthz", timeout=1)
                    break
                except OSError:
                    time.sleep(0.1)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=shutil.which("chromium"), args=["--no-sandbox", "--disable-dev-shm-usage"]
                )
                for role, path, selector, image in (
                    ("analyst", "/console/reports", "body[data-charts=drawn]", "console-dashboard.png"),
                    (
                        "admin",
                        "/console/definitions/*/web-lead-follow-up/3",
                        "body[data-diagrams=drawn]",
                        "console-process-diagram.png",
                    ),
                ):
                    link = crmflow(
                        "token",
                        "issue",
                        "--tenant",
                        "acme",
                        "--role",
                        role,
                        "--subject",
                        "ada",
                        "--console",
                        "--url",
                        base,
                        env=env,
                    ).stdout.strip()
                    page = browser.new_context(viewport={"width": 1400, "height": 1100}).new_page()
                    page.goto(link)
                    page.click("button[type=submit]")
                    page.goto(base + path)
                    page.wait_for_selector(selector)
                    page.wait_for_timeout(800)  # ECharts animates its bars in
                    page.screenshot(path=IMAGES / image)
                    print(IMAGES / image)
                browser.close()
        finally:
            server.terminate()
            server.wait(10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
