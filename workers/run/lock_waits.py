"""Telling a SQLite lock wait from an outage: another writer held the database's one write lock longer than
the busy timeout (crmflow.aggregates.store.SQLITE_BUSY_TIMEOUT_S).

SQLite says so with ``sqlite3.OperationalError('database is locked')``; eventsourcing re-raises it as its own
``OperationalError`` with the original as ``__cause__`` (eventsourcing 9.5, ``SQLiteTransaction``). Both are
in ``resilience.TRANSIENT``, so a lock wait is retried like an outage; it is told apart only to be logged
(``store_locked``) and counted (``crmflow_store_lock_waits_total``) as what it is: the store is there, it is
busy. Many of them say that too many copies write to one SQLite file (docs/operations.md, Outages).
"""

from __future__ import annotations

import sqlite3

import eventsourcing.persistence as store_errors

# SQLITE_BUSY and SQLITE_LOCKED in Python's words (a lock of the file, a lock of one table in shared cache).
LOCK_MESSAGES = ("database is locked", "database table is locked")
LOCK_ERRORS = (sqlite3.OperationalError, store_errors.OperationalError)


def is_lock_wait(error: BaseException) -> bool:
    """Did ``error`` (or what it wraps) come from waiting for a SQLite lock?"""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:  # a cycle of causes ends the walk
        seen.add(id(current))
        if isinstance(current, LOCK_ERRORS) and str(current).startswith(LOCK_MESSAGES):
            return True
        current = current.__cause__ or current.__context__
    return False
