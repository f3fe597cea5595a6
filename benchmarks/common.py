"""What the benchmark scripts share: fresh stores per run, percentiles, memory and CPU, verdicts."""

from __future__ import annotations

import os
import resource
import secrets
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql
from rich.console import Console


def consoles(width: int = 150) -> tuple[Console, Console]:
    """(report, progress): progress goes to stderr so that --json leaves stdout parseable.

    Piped to a file, a console would wrap the tables at 80 columns: ``width`` instead.
    """
    progress = Console(stderr=True, log_path=False)
    console = Console()
    for c in (console, progress):
        if not c.is_terminal:
            c.width = width
    return console, progress


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile: no interpolation, so p99 is a latency that happened."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]

def peak_rss_mib() -> float:
    # ru_maxrss is in KiB on Linux (bytes on macOS); the peak only ever grows.
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale

def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) another process of this machine has used so far; 0 once it is gone.

    From /proc (Linux), so that no extra dependency is needed to watch worker processes.
    """
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    # After the command name: state is field 3, utime and stime are fields 14 and 15 (man 5 proc).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

def machine_busy_s() -> float:
    """CPU seconds the machine's CPUs have spent busy so far (not idle, not waiting for I/O): /proc/stat.

    Set against a benchmark's own processes, it shows whether something else was using the machine.
    """
    with open("/proc/stat") as stat:
        fields = [int(x) for x in stat.readline().split()[1:]]
    idle, iowait = fields[3], fields[4]
    return (sum(fields[:8]) - idle - iowait) / os.sysconf("SC_CLK_TCK")

def process_peak_rss_mib(pid: int) -> float | None:
    """Peak resident memory (VmHWM) of another process, from /proc; None if it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None

def verdict(passed: bool | None) -> str:
    if passed is None:
        return "[dim]–[/dim]"
    return "[bold green]PASS[/bold green]" if passed else "[bold red]FAIL[/bold red]"

class SqliteStores:
    name = "sqlite"

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.count = 0

    @contextmanager
    def fresh(self) -> Iterator[str]:
        self.count += 1
        path = self.directory / f"bench-{self.count}.db"
        try:
            yield str(path)
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)

    def describe(self) -> str:
        return f"SQLite {sqlite3.sqlite_version} (file in {self.directory})"

    def close(self) -> None:
        pass

class PostgresStores:
    name = "postgres"

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        # Autocommit: CREATE/DROP DATABASE cannot run inside a transaction.
        self.admin = psycopg.connect(admin_url, autocommit=True)
        self.server_version = self.admin.execute("SHOW server_version").fetchone()[0]
        self.created: list[str] = []

    @contextmanager
    def fresh(self) -> Iterator[str]:
        dbname = f"crmflow_bench_{secrets.token_hex(6)}"
        self.admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
        self.created.append(dbname)
        self.checkpoint()
        try:
            yield urlunsplit(urlsplit(self.admin_url)._replace(path=f"/{dbname}", query=""))
        finally:
            self.drop(dbname)

    def checkpoint(self) -> None:
        # Flush the pages dirtied by the last run and CREATE DATABASE now, so
        # that the server does not write them back during the next timed run.
        # Needs superuser (or pg_checkpoint); without it, runs are just noisier.
        try:
            self.admin.execute("CHECKPOINT")
        except psycopg.errors.InsufficientPrivilege:
            pass

    def drop(self, dbname: str) -> None:
        # FORCE: a connection the pool failed to close must not leave the database behind.
        self.admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))
        self.created.remove(dbname)

    def close(self) -> None:
        for dbname in list(self.created):
            self.drop(dbname)
        self.admin.close()

    def describe(self) -> str:
        parts = urlsplit(self.admin_url)
        return f"PostgreSQL {self.server_version} at {parts.hostname}:{parts.port or 5432}"
