"""The read-model database: SQLite (default) or PostgreSQL, through one small interface.

SQL is written once, with ``%(name)s`` parameters (psycopg's style); for SQLite
they become ``:name``. Both speak ``INSERT ... ON CONFLICT ... DO UPDATE``.
What the two do differently (money, months of a time) is spelled by the small
methods of ``Database`` (``money_sum``, ``money_add``, ``month``); the column
types are in projections.tables. PostgreSQL sessions run in UTC, so a date an
analyst passes (``--since 2026-03-01``) means midnight UTC on both.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from crmflow.aggregates.store import DEFAULT_SQLITE_PATH

PARAM = re.compile(r"%\((\w+)\)s")
# sqlite3 has no adapter for Decimal; money is decimal text there (projections.tables).
sqlite3.register_adapter(Decimal, str)


class _DecimalSum:
    """SQLite's ``decimal_sum(amount [, factor])``: the exact sum of amount × factor, as decimal text.

    SQLite's own SUM turns text into REAL. NULL amounts are skipped, as SUM does.
    """

    def __init__(self) -> None:
        self.total = Decimal(0)

    def step(self, amount: object, factor: object = 1) -> None:
        if amount is not None:
            self.total += Decimal(str(amount)) * Decimal(str(factor))

    def finalize(self) -> str:
        return str(self.total)


def _decimal_add(a: object, b: object) -> str | None:
    """SQLite's ``decimal_add(a, b)``: a + b exactly; NULL if either is NULL, as ``a + b`` is."""
    if a is None or b is None:
        return None
    return str(Decimal(str(a)) + Decimal(str(b)))


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
            self.connection.create_aggregate("decimal_sum", 1, _DecimalSum)
            self.connection.create_aggregate("decimal_sum", 2, _DecimalSum)
            self.connection.create_function("decimal_add", 2, _decimal_add, deterministic=True)

    def _connect(self) -> Any:
        return psycopg.connect(self.url, row_factory=dict_row, options="-c TimeZone=UTC")

    def sql(self, statement: str) -> str:
        return statement if self.postgres else _sqlite_params(statement)

    def money_sum(self, amount: str, factor: str | None = None) -> str:
        """SQL for the exact sum of ``amount`` (× ``factor``), 0 when there is nothing to add."""
        if self.postgres:
            return f"COALESCE(SUM({amount}{f' * {factor}' if factor else ''}), 0)"
        return f"decimal_sum({amount}{f', {factor}' if factor else ''})"

    def money_add(self, column: str, param: str) -> str:
        """SQL for ``column + %(param)s``, exact on both."""
        return f"{column} + %({param})s" if self.postgres else f"decimal_add({column}, %({param})s)"

    def month(self, column: str) -> str:
        """SQL for the UTC month (``2026-03``) of a time or date column."""
        return f"to_char({column}, 'YYYY-MM')" if self.postgres else f"SUBSTR({column}, 1, 7)"

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
