"""A single-node Apache Kafka (KRaft: broker and controller in one JVM) from the cached jars.

For tests, benchmarks and local runs that need the real broker users run: the
jars come from Maven Central by ``.ci/fetch-kafka`` (pinned there), into a cache
outside the work tree. The node formats its own log directory, listens on free
loopback ports and keeps its data on disk, so it can be killed and started
again on the same directory, as a crash of a real broker would be.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from types import TracebackType

import structlog

from crmflow.workers.kafka.broker import BrokerError, free_port, stop_process
from crmflow.workers.kafka.clients import answers_metadata

log = structlog.get_logger("crmflow.apache_kafka")

# Keep in step with .ci/kafka/pom.xml and deploy/docker-compose.yaml.
KAFKA_VERSION = "4.1.1"

# The same settings a single-node production cluster would need (replication 1
# for the internal topics), plus what makes a test group form at once: no
# initial rebalance delay.
_SERVER_PROPERTIES = """\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller_port}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs={log_dir}
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
"""

_LOG4J2 = """\
<Configuration status="WARN">
  <Appenders><Console name="out" target="SYSTEM_OUT"><PatternLayout pattern="[%d] %p %m (%c)%n"/></Console></Appenders>
  <Loggers><Root level="WARN"><AppenderRef ref="out"/></Root></Loggers>
</Configuration>
"""


def kafka_cache() -> Path:
    root = os.environ.get("CRMFLOW_KAFKA_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "crmflow"
    )
    return Path(root)


def kafka_libs() -> Path:
    """The folder of the pinned release's jars, as ``.ci/fetch-kafka`` leaves it."""
    return kafka_cache() / f"kafka-{KAFKA_VERSION}" / "libs"


def missing_reason() -> str | None:
    """Why Apache Kafka cannot be started here, or None when it can."""
    if shutil.which("java") is None:
        return "java is not installed (Apache Kafka needs Java 17): run bash .ci/services"
    if not (kafka_libs() / ".complete").exists():
        return f"the Apache Kafka {KAFKA_VERSION} jars are not in {kafka_libs()}: run bash .ci/services"
    return None


def _cluster_id() -> str:
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


class ApacheKafka:
    """Apache Kafka on loopback; ``kill()`` and ``start()`` again keep its log directory."""

    name = "apache"

    def __init__(self, data_dir: Path | None = None, port: int | None = None, heap: str = "768m") -> None:
        self._own_dir = data_dir is None
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="crmflow-kafka-"))
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.controller_port = free_port()
        self.bootstrap_servers = f"127.0.0.1:{self.port}"
        self.heap = heap
        self.process: subprocess.Popen[bytes] | None = None
        self.log_file = self.data_dir / "server.log"

    @property
    def _config(self) -> Path:
        return self.data_dir / "server.properties"

    def _java(self, main: str, *args: str) -> list[str]:
        return ["java", f"-Xms{self.heap}", f"-Xmx{self.heap}", "-XX:+UseG1GC", "-Djava.awt.headless=true",
                f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.xml'}",
                "-cp", f"{kafka_libs()}/*", main, *args]  # fmt: skip

    def _format(self) -> None:
        log_dir = self.data_dir / "logs"
        self._config.write_text(_SERVER_PROPERTIES.format(port=self.port, controller_port=self.controller_port,
                                                          log_dir=log_dir))  # fmt: skip
        (self.data_dir / "log4j2.xml").write_text(_LOG4J2)
        if (log_dir / "meta.properties").exists():
            return
        # "--cluster-id=ID" in one argument: an id may start with "-" (base64url), which a separate
        # argument would make look like an option.
        done = subprocess.run(self._java("kafka.tools.StorageTool", "format", f"--cluster-id={_cluster_id()}",
                                         "-c", str(self._config)),
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        if done.returncode != 0:
            raise BrokerError(f"formatting the Kafka log directory failed: {done.stderr.strip() or done.stdout}")

    def start(self, timeout_s: float = 90.0) -> ApacheKafka:
        reason = missing_reason()
        if reason:
            raise BrokerError(reason)
        self._format()
        output = open(self.log_file, "ab")  # noqa: SIM115 - the child keeps it
        self.process = subprocess.Popen(self._java("kafka.Kafka", str(self._config)), stdout=output,
                                        stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        output.close()
        self._wait_ready(timeout_s)
        log.info("apache_kafka_started", bootstrap_servers=self.bootstrap_servers, pid=self.process.pid)
        return self

    def _wait_ready(self, timeout_s: float) -> None:
        """Ready when the broker answers a metadata request (a listening socket comes earlier)."""
        deadline = time.monotonic() + timeout_s
        last: Exception | None = None
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise BrokerError(f"Apache Kafka exited with status {self.process.returncode}; see {self.log_file}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    pass
                answers_metadata(self.bootstrap_servers)  # the broker has joined its own quorum
                return
            except Exception as error:  # noqa: BLE001 - any failure means "not yet"
                last = error
                time.sleep(0.2)
        self.kill()
        raise BrokerError(f"Apache Kafka did not answer on {self.bootstrap_servers} within {timeout_s:.0f}s "
                          f"({last!r}); see {self.log_file}")  # fmt: skip

    def kill(self) -> None:
        """SIGKILL the broker, as a crash would; its log directory stays for the next start."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None

    def stop(self) -> None:
        stop_process(self.process, timeout_s=30)
        self.process = None

    def remove(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> ApacheKafka:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.remove()
