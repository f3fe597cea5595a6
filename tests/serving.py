"""A real `crmflow serve` on a free loopback port, for the tests that need the command itself."""

from __future__ import annotations

import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.waiting import wait_until


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@contextmanager
def serving(env: dict[str, str], log_path: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """The server once it answers /healthz, and its base URL; killed at the end if still running."""
    port = free_port()
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "crmflow", "serve", "--port", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until(lambda: answers(f"{base}/healthz") or process.poll() is not None, 60, interval_s=0.1,
                       what="crmflow serve to answer /healthz")  # fmt: skip
            assert process.poll() is None, log_path.read_text()
            yield process, base
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(10)
