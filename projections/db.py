"""The read-model database: SQLite (default) or PostgreSQL, through one small interface.

SQL is written once, with ``%(name)s`` parameters (psycopg's style); for SQLite
they become ``:name``. Both speak ``INSERT ... ON CONFLICT ... DO UPDATE``.
Times are stored as ISO 8601 text in UTC (they sort and compare the same on
both), money as numbers, durations as seconds.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from crmflow.aggregates.store import DEFAULT_SQLITE_PATH

PARAM = re.compile(r"%\((\w+)\)s")


@lru_cache(maxsize=1024)
def _sqlite_params(statement: str) -> str:
    """``%(name)s`` → ``:name``, once per distinct statement (the handlers reuse a few dozen)."""
    return PARAM.sub(r":\1", statement)


def reports_url(store_url: str | None) -> str:
    """Reports live beside the event store: a sibling SQLite file, or the same PostgreSQL database.

    A separate SQLite file keeps the projector's writes from waiting on the
    event store's single writer.
    """
    url = (store_url or "").strip()
    if url.startswith(("postgresql://", "postgres://")):
        return url
    path = Path(url.removeprefix("sqlite:///")) if url and url != "memory://" else DEFAULT_SQLITE_PATH
    return str(path.with_name("reports.db"))


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.postgres = url.startswith(("postgresql://", "postgres://"))
        if self.postgres:
            self.connection: Any = self._connect()
        else:
            Path(url).parent.mkdir(parents=True, exist_ok=True)
            self.connection = sqlite3.connect(url, isolation_level=None, check_same_thread=False, timeout=30)
            self.connection.row_factory = sqlite3.Row
            self.connection.execute("PRAGMA journal_mode=WAL")
            # A 64 MiB page cache (the default is 2 MiB): tables of a million rows
            # otherwise read their B-tree pages back from disk on every insert.
            self.connection.execute("PRAGMA cache_size=-65536")

    def _connect(self) -> Any:
        return psycopg.connect(self.url, row_factory=dict_row)

    def sql(self, statement: str) -> str:
        return statement if self.postgres else _sqlite_params(statement)

    @contextmanager
    def transaction(self) -> Iterator[Cursor]:
        """One transaction: everything in it is stored, or nothing."""
        if self.postgres:
            if self.connection.closed:
                # Lost with the server (a restart, an outage): a new connection, or the caller's
                # psycopg.OperationalError while the server is still away.
                self.connection = self._connect()
            with self.connection.transaction():
                yield Cursor(self, self.connection.cursor())
        else:
            cursor = self.connection.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            try:
                yield Cursor(self, cursor)
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
            cursor.execute("COMMIT")

    @contextmanager
    def scratch_writes(self) -> Iterator[None]:
        """Writes that need not survive a crash (a rebuild's scratch tables): no fsync per commit on SQLite."""
        if self.postgres:
            yield
            return
        self.connection.execute("PRAGMA synchronous=OFF")
        try:
            yield
        finally:
            self.connection.execute("PRAGMA synchronous=FULL")

    def query(self, statement: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        with self.transaction() as cursor:
            return cursor.rows(statement, params)

    def close(self) -> None:
        self.connection.close()


class Cursor:
    def __init__(self, db: Database, cursor: Any) -> None:
        self.db = db
        self.cursor = cursor

    def execute(self, statement: str, params: Mapping[str, Any] | None = None) -> int:
        self.cursor.execute(self.db.sql(statement), dict(params or {}))
        return int(self.cursor.rowcount)

    def executemany(self, statement: str, rows: Sequence[Mapping[str, Any]]) -> None:
        self.cursor.executemany(self.db.sql(statement), [dict(r) for r in rows])

    def rows(self, statement: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        self.cursor.execute(self.db.sql(statement), dict(params or {}))
        return [dict(r) for r in self.cursor.fetchall()]
