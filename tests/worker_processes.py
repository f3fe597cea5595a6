"""Real `crmflow worker KIND` processes for crash tests: started, killed or stopped, their JSON logs read."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

from crmflow.workers.kafka.clients import KafkaSettings


def worker_env(database_url: str, settings: KafkaSettings, reports_url: str | None = None) -> dict[str, str]:
    """A worker's environment: this store, these topics, the test's group timeouts and fetch wait."""
    env = {**os.environ, "CRMFLOW_DATABASE_URL": database_url, "CRMFLOW_TOPIC_PREFIX": settings.topic_prefix,
           "KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers, "CRMFLOW_LOG_LEVEL": "info",
           "CRMFLOW_KAFKA_SESSION_TIMEOUT_MS": str(settings.session_timeout_ms),
           "CRMFLOW_KAFKA_MAX_POLL_INTERVAL_MS": str(settings.max_poll_interval_ms),
           "CRMFLOW_KAFKA_FETCH_MAX_WAIT_MS": str(settings.fetch_max_wait_ms)}  # fmt: skip
    if reports_url is not None:
        env["CRMFLOW_REPORTS_DATABASE_URL"] = reports_url
    return env


class WorkerProcess:
    """One `python -m workers worker KIND` subprocess, logging JSON lines to a file of its own."""

    def __init__(self, kind: str, env: dict[str, str], log: Path, options: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self.log = log
        with log.open("ab") as stderr:
            self.process = subprocess.Popen([sys.executable, "-m", "crmflow", "worker", kind, *options], env=env,
                                            stdout=subprocess.DEVNULL, stderr=stderr)  # fmt: skip

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """kill -9: no chance to finish the batch in hand, to commit, or to leave the group."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self, timeout_s: float = 30.0) -> int:
        """A polite stop (SIGTERM); the exit code (0: it stopped cleanly, not because it had failed)."""
        if self.alive:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout_s)

    def ensure_gone(self) -> None:
        """For `finally:` blocks: whatever happened, leave no worker behind."""
        if self.alive:
            self.process.kill()
            self.process.wait(timeout=10)

    def records(self, event: str | None = None) -> list[dict[str, Any]]:
        """The structured log lines written so far (of one event, if given); other output is skipped."""
        if not self.log.exists():
            return []
        found = []
        for line in self.log.read_bytes().splitlines():
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue  # a line still being written, or a library's plain-text warning
            if isinstance(record, dict) and (event is None or record.get("event") == event):
                found.append(record)
        return found

    def describe(self) -> str:
        """Who it is and the tail of its log, for assertion messages."""
        tail = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else "(no log)"
        return f"{self.kind} worker (pid {self.process.pid}, exit code {self.process.poll()}):\n{tail}"
