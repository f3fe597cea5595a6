"""One database URL picks the event store."""

from __future__ import annotations

from pathlib import Path

import pytest

from crmflow.aggregates.store import SQLITE_BUSY_TIMEOUT_S, DatabaseUrlError, persistence_env


def test_no_url_means_sqlite_under_dot_crmflow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert persistence_env(None) == {"PERSISTENCE_MODULE": "eventsourcing.sqlite",
                                     "SQLITE_DBNAME": ".crmflow/crmflow.db", "SQLITE_LOCK_TIMEOUT": "10"}  # fmt: skip
    assert (tmp_path / ".crmflow").is_dir()


def test_a_sqlite_url_or_path_names_the_file(tmp_path: Path) -> None:
    assert persistence_env(f"sqlite:///{tmp_path}/a.db")["SQLITE_DBNAME"] == f"{tmp_path}/a.db"
    assert persistence_env(str(tmp_path / "b.db"))["SQLITE_DBNAME"] == str(tmp_path / "b.db")


def test_a_sqlite_store_waits_ten_seconds_for_the_write_lock_whatever_the_environment_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from crmflow.aggregates.application import CrmApplication

    monkeypatch.setenv("SQLITE_LOCK_TIMEOUT", "1")  # eventsourcing reads it, crmflow's setting wins
    app = CrmApplication(str(tmp_path / "events.db"))
    try:
        assert app.factory.datastore.pool.lock_timeout == SQLITE_BUSY_TIMEOUT_S == 10  # type: ignore[attr-defined]
    finally:
        app.close()


def test_a_postgresql_url_sets_every_connection_setting() -> None:
    env = persistence_env("postgresql://crm:s%40cret@db.internal:6543/crmflow?schema=tenant_a")
    assert env == {
        "PERSISTENCE_MODULE": "eventsourcing.postgres", "POSTGRES_DBNAME": "crmflow",
        "POSTGRES_HOST": "db.internal", "POSTGRES_PORT": "6543", "POSTGRES_USER": "crm",
        "POSTGRES_PASSWORD": "s@cret", "POSTGRES_SCHEMA": "tenant_a",
    }  # fmt: skip


def test_an_unknown_scheme_is_refused_with_the_choices() -> None:
    with pytest.raises(DatabaseUrlError, match="unsupported database URL 'mysql://x/y': use a SQLite file path"):
        persistence_env("mysql://x/y")
    with pytest.raises(DatabaseUrlError, match="names no database"):
        persistence_env("postgresql://localhost")
