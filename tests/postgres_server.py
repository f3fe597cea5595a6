"""A PostgreSQL server of a test's own: initdb into a temporary folder, its own port, so that stopping it
(an outage on purpose) touches no other test and not the machine's cluster."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from crmflow.workers.kafka.broker import free_port


def postgres_bin() -> Path | None:
    """The folder of the newest installed server's programs (initdb, pg_ctl), if any."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def missing_reason() -> str | None:
    if postgres_bin() is None:
        return "PostgreSQL's server programs (initdb, pg_ctl) are not installed: run bash .ci/services"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root, and there is no 'postgres' user to run a private server as"
    return None


class PostgresServer:
    """``start()``, ``stop()`` and ``start()`` again on the same data: an outage and a recovery."""

    def __init__(self, root: Path) -> None:
        # PostgreSQL refuses to run as root: as root, run it as the postgres user, from a folder of its own
        # under the system's temporary folder. Not under pytest's: every pytest session that starts makes
        # /tmp/pytest-of-<user> private again, and the server then cannot reach its data.
        self.owner = "postgres" if os.geteuid() == 0 else None
        self.root = Path(tempfile.mkdtemp(prefix="crmflow-postgres-")) if self.owner else root
        self.data = self.root / "pgdata"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self.bin = postgres_bin()

    def _run(self, program: str, *args: str, timeout_s: float = 60) -> None:
        assert self.bin is not None, missing_reason()
        command = [str(self.bin / program), *args]
        if self.owner:
            command = ["runuser", "-u", self.owner, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
        if done.returncode != 0:
            raise RuntimeError(f"{program} {' '.join(args)} failed: {done.stderr.strip() or done.stdout.strip()}")

    def init(self) -> PostgresServer:
        self.root.mkdir(parents=True, exist_ok=True)
        if self.owner:
            shutil.chown(self.root, user=self.owner)
            self.root.chmod(0o755)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8")
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{self.root}'\n"
                       "max_connections = 200\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\n")
        return self

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-w", "-t", "60", "start")

    def stop(self) -> None:
        """A fast shutdown: connections are cut, as a restart of the server would."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")

    def remove(self) -> None:
        try:
            self.stop()
        except RuntimeError:
            pass  # not running
        shutil.rmtree(self.root, ignore_errors=True)
