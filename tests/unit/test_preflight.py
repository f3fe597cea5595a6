"""The start-up checks' answers: one line naming what failed and the likely fix, and nothing created."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from crmflow.workers.preflight import Unavailable, check_broker, check_database

SQLITE = {"what": "event store", "table": "stored_events", "timeout_s": 2.0}


def test_a_server_that_accepts_but_never_answers_is_given_up_after_the_connect_timeout() -> None:
    with socket.socket() as silent:  # the kernel completes the handshake; nobody ever speaks
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        with pytest.raises(Unavailable, match=rf"cannot use PostgreSQL at 127.0.0.1:{port}: no answer within 2 s"):
            check_database(f"postgresql://crm@127.0.0.1:{port}/crm", what="event store", table="crmflow_events",
                           access="write", create=False, timeout_s=2.0)  # fmt: skip


def test_an_unknown_host_is_named(tmp_path: Path) -> None:
    with pytest.raises(Unavailable, match="nosuchhost.invalid.*is the host name right"):
        check_database("postgresql://crm@nosuchhost.invalid:5432/crm", what="event store", table="crmflow_events",
                       access="write", create=False, timeout_s=2.0)  # fmt: skip


def test_a_file_that_is_not_a_database_is_refused_for_reading(tmp_path: Path) -> None:
    junk = tmp_path / "crm.db"
    junk.write_text("not a database" * 100)
    with pytest.raises(Unavailable, match="is not a crmflow event store"):
        check_database(str(junk), access="read", create=False, **SQLITE)  # type: ignore[arg-type]


def test_a_new_file_in_an_existing_folder_is_fine_for_writing_and_not_created_by_the_check(tmp_path: Path) -> None:
    target = check_database(str(tmp_path / "crm.db"), access="write", create=False, **SQLITE)  # type: ignore[arg-type]
    assert target.path == tmp_path / "crm.db"
    assert list(tmp_path.iterdir()) == []


def test_create_makes_only_the_folder(tmp_path: Path) -> None:
    store = tmp_path / "a" / "b" / "crm.db"
    check_database(f"sqlite:///{store}", access="write", create=True, **SQLITE)  # type: ignore[arg-type]
    assert store.parent.is_dir() and not store.exists()


def test_a_path_inside_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(Unavailable, match="which is not a folder"):
        check_database(str(tmp_path / "file" / "crm.db"), access="write", create=True, **SQLITE)  # type: ignore[arg-type]


def test_a_broker_address_that_is_not_host_and_port_is_named() -> None:
    with pytest.raises(Unavailable, match=r"no Kafka broker at kafka \(kafka: not HOST:PORT\)"):
        check_broker("kafka", timeout_s=1.0)


def test_one_listening_bootstrap_server_of_several_is_enough() -> None:
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen(1)
        port = listening.getsockname()[1]
        assert check_broker(f"127.0.0.1:1,127.0.0.1:{port}", timeout_s=1.0) == f"127.0.0.1:{port}"
