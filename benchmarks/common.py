"""What the benchmark scripts share: fresh stores per run, percentiles, memory, verdicts."""

from __future__ import annotations

import resource
import sys
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql


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
