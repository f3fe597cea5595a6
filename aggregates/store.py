"""Where events are stored: one database URL picks SQLite, PostgreSQL or memory.

- unset / a file path / ``sqlite:///path``: SQLite (embedded default, ``./.crmflow/crmflow.db``)
- ``postgresql://user:password@host:port/dbname[?schema=name]``: PostgreSQL
- ``memory://``: eventsourcing's in-memory store, for unit tests and offline tools
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

DEFAULT_SQLITE_PATH = Path(".crmflow") / "crmflow.db"
# How long a SQLite write waits for another connection's write lock before it fails with "database is
# locked" (eventsourcing's SQLITE_LOCK_TIMEOUT, whole seconds; its own default is 5). Every worker copy,
# the relay and the API write through one lock, and under a burst 5 s of queueing was seen to run out. A
# wait past this is not fatal (the workers retry it: crmflow.workers.run.lock_waits), so it only sets how
# long one statement waits before its worker backs off and handles the batch again. 10 s: well past the
# bursts seen, and with the retry loop's longest back-off (10 s) still far inside the consumer group's
# max poll interval (60 s), so a worker waiting for the lock is not put out of its group. Set here, not in
# the environment: eventsourcing would also read a SQLITE_LOCK_TIMEOUT from the process's environment, and
# the store's behaviour should not depend on a variable crmflow does not document.
SQLITE_BUSY_TIMEOUT_S = 10


class DatabaseUrlError(ValueError):
    """The database URL names no store crmflow can use."""


def persistence_env(database_url: str | None, *, make_folder: bool = True) -> dict[str, str]:
    """eventsourcing's persistence settings for a database URL.

    ``make_folder``: create a SQLite file's folder, as the Python API always has. The CLI's checks
    (crmflow.workers.preflight) read a URL with ``make_folder=False`` and decide first whether a missing
    folder is a typo to refuse.
    """
    url = (database_url or "").strip()
    if url in ("memory://", "memory"):
        return {"PERSISTENCE_MODULE": "eventsourcing.popo"}
    if url.startswith(("postgresql://", "postgres://")):
        return _postgres_env(url)
    if url.startswith("sqlite:///"):
        # sqlite:///relative/path and sqlite:////absolute/path, as in SQLAlchemy.
        url = url[len("sqlite:///") :]
    if "://" in url:
        raise DatabaseUrlError(
            f"unsupported database URL {url!r}: use a SQLite file path, sqlite:///PATH, "
            "postgresql://USER:PASSWORD@HOST:PORT/DB or memory://"
        )
    path = Path(url) if url else DEFAULT_SQLITE_PATH
    if make_folder:
        path.parent.mkdir(parents=True, exist_ok=True)
    return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path),
            "SQLITE_LOCK_TIMEOUT": str(SQLITE_BUSY_TIMEOUT_S)}  # fmt: skip


def _postgres_env(url: str) -> dict[str, str]:
    parts = urlsplit(url)
    dbname = parts.path.lstrip("/")
    if not dbname:
        raise DatabaseUrlError(f"database URL {url!r} names no database: add /DBNAME")
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": unquote(dbname),
        "POSTGRES_HOST": parts.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(parts.port or 5432),
        "POSTGRES_USER": unquote(parts.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(parts.password or ""),
    }
    schema = parse_qs(parts.query).get("schema")
    if schema:
        env["POSTGRES_SCHEMA"] = schema[0]
    return env
