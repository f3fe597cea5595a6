"""Connection checks before a command does anything: the store, the read models and the broker.

Left to themselves, the libraries wait (eventsourcing's pool 30 s, kafka-python minutes) and then raise a
traceback that hides the cause. These checks take a few seconds at most (``connect_timeout_s``) and raise
``Unavailable`` with one line that names what failed and the likely fix; the CLI prints it and exits 2.

They also keep a read-only command from creating anything: a store or read models that do not exist are
refused before anything is opened (eventsourcing and the read models create their tables when opened).
"""

from __future__ import annotations

import math
import re
import socket
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from crmflow.aggregates.store import DEFAULT_SQLITE_PATH, DatabaseUrlError, persistence_env

# What a command does with a database: reads one that must exist, or writes one (creating its tables).
Access = Literal["read", "write"]
# The table that marks each database as crmflow's: eventsourcing's on SQLite and on PostgreSQL, the read
# models' schema table.
STORE_TABLES = {"sqlite": "stored_events", "postgres": "crmflow_events"}
REPORTS_TABLE = "rm_schema"
# libpq puts the server's refusal after "FATAL:"; it gives no SQLSTATE for a refused connection
# (psycopg's OperationalError.sqlstate is None), so the text is all there is to go on.
SERVER_REFUSAL = re.compile(r"FATAL:\s+(.+)")
HINTS = (
    (re.compile(r'^role ".*" does not exist'), "create the role or fix the user in the URL"),
    (re.compile(r'^database ".*" does not exist'), "create the database (createdb NAME) or fix its name"),
    (re.compile(r"^password authentication failed"), "check the password in the URL"),
)


class Unavailable(Exception):
    """A dependency is missing or unreachable; ``str()`` is the one line to show."""


@dataclass(frozen=True)
class Target:
    """Where a database URL points: a SQLite file, a PostgreSQL database, or memory."""

    kind: Literal["sqlite", "postgres", "memory"]
    path: Path | None = None
    conninfo: dict[str, str] | None = None
    schema: str = "public"

    @property
    def where(self) -> str:
        if self.conninfo is not None:
            return f"{self.conninfo['host']}:{self.conninfo['port']}"
        return str(self.path)


def target_of(url: str | None) -> Target:
    try:
        env = persistence_env(url, make_folder=False)
    except DatabaseUrlError as error:
        raise Unavailable(str(error)) from error
    module = env["PERSISTENCE_MODULE"]
    if module.endswith("popo"):
        return Target("memory")
    if module.endswith("sqlite"):
        return Target("sqlite", path=Path(env["SQLITE_DBNAME"]))
    conninfo = {"dbname": env["POSTGRES_DBNAME"], "host": env["POSTGRES_HOST"], "port": env["POSTGRES_PORT"],
                "user": env["POSTGRES_USER"], "password": env["POSTGRES_PASSWORD"]}  # fmt: skip
    return Target("postgres", conninfo=conninfo, schema=env.get("POSTGRES_SCHEMA", "public"))


def check_database(url: str | None, *, what: str, table: str, access: Access, create: bool,
                   timeout_s: float, missing: str = "is the path right?") -> Target:  # fmt: skip
    """Refuse ``url`` unless ``access`` can go ahead on it; the folder of a new SQLite file is made if ``create``.

    ``what`` names the database in the message ("event store", "read models"); ``table`` is the one that
    shows crmflow has been there (for ``read``, it must exist); ``missing`` is the advice when it does not.
    """
    target = target_of(url)
    raw = (url or "").strip().removeprefix("sqlite:///")
    if target.kind == "sqlite" and raw.endswith(("/", "\\")):  # Path() drops the slash: look at the text
        raise Unavailable(f"the {what} path {raw} ends with a slash: name a file, e.g. {raw}crmflow.db")
    if target.kind == "sqlite":
        _check_sqlite(target.path, what=what, table=table, access=access, create=create,  # type: ignore[arg-type]
                      missing=missing)  # fmt: skip
    elif target.kind == "postgres":
        _check_postgres(target, what=what, table=table, access=access, timeout_s=timeout_s)
    return target


def _check_sqlite(path: Path, *, what: str, table: str, access: Access, create: bool, missing: str) -> None:
    text = str(path)
    if path.is_dir():
        raise Unavailable(f"the {what} path {text} is a folder: name a file in it, e.g. {path / 'crmflow.db'}")
    if access == "read":
        if not path.exists():
            raise Unavailable(f"no {what} at {text}: the file does not exist ({missing})")
        try:  # read-only and without creating: mode=ro never makes a file
            with sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True) as db:
                found = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone()
        except sqlite3.DatabaseError as error:
            raise Unavailable(f"{text} is not a crmflow {what}: {error}") from error
        if not found:
            raise Unavailable(f"{text} holds no crmflow {what} (no {table} table): {missing}")
        return
    folder = path.parent
    if folder.is_dir():
        return
    if folder.exists():
        raise Unavailable(f"the {what} path {text} is inside {folder}, which is not a folder")
    # The default location is nobody's typo: a first `crmflow command` in a new folder just works.
    if create or folder == DEFAULT_SQLITE_PATH.parent:
        folder.mkdir(parents=True, exist_ok=True)
        return
    raise Unavailable(f"the folder of the {what} {text} does not exist: is the path right? "
                      "(--create makes it)")  # fmt: skip


def _check_postgres(target: Target, *, what: str, table: str, access: Access, timeout_s: float) -> None:
    import psycopg  # only PostgreSQL URLs pay for it

    info = target.conninfo or {}
    where = f"PostgreSQL at {target.where}"
    try:
        # libpq counts connect_timeout in whole seconds and treats less than 2 as 2.
        with psycopg.connect(**info, connect_timeout=max(2, math.ceil(timeout_s)), autocommit=True) as conn:
            if access == "read":
                found = conn.execute("SELECT to_regclass(%s)", (f'"{target.schema}"."{table}"',)).fetchone()
                if not found or found[0] is None:
                    raise Unavailable(
                        f"database \"{info['dbname']}\" at {target.where} holds no crmflow {what} (no "
                        f"{target.schema}.{table} table): is the database name right?"
                    )
    except psycopg.OperationalError as error:
        raise Unavailable(f"cannot use {where}: {_postgres_reason(str(error), timeout_s)}") from error


def _postgres_reason(message: str, timeout_s: float) -> str:
    refusal = SERVER_REFUSAL.search(message)
    if refusal:
        reason = refusal.group(1).strip()
        hint = next((h for pattern, h in HINTS if pattern.search(reason)), None)
        return f"{reason} — {hint}" if hint else reason
    lowered = message.lower()
    if "connection refused" in lowered:
        return "connection refused — is the server running, is the port right?"
    if "timeout expired" in lowered or "timed out" in lowered:
        return f"no answer within {timeout_s:g} s — is the host right, is a firewall in the way? " \
               "(CRMFLOW_CONNECT_TIMEOUT_S)"  # fmt: skip
    if "resolve host" in lowered or "could not translate host name" in lowered:
        return f"{message.splitlines()[0].removeprefix('connection failed: ')} — is the host name right?"
    return " ".join(message.split())


def check_broker(bootstrap_servers: str, *, timeout_s: float) -> str:
    """The first bootstrap server that accepts a connection (a TCP connect: no Kafka client needed)."""
    reasons = []
    for server in [s.strip() for s in bootstrap_servers.split(",") if s.strip()]:
        host, _, port = server.rpartition(":")
        try:
            with socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=timeout_s):
                return server
        except ValueError:
            reasons.append(f"{server}: not HOST:PORT")
        except OSError as error:
            reasons.append(f"{server}: {error.strerror or error}")
    raise Unavailable(
        f"no Kafka broker at {bootstrap_servers} ({'; '.join(reasons)}) — start one with 'crmflow broker' "
        "or set KAFKA_BOOTSTRAP_SERVERS"
    )
