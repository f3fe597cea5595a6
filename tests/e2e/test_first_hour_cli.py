"""A newcomer's first hour: every setup mistake is answered in one line, at once, and changes nothing.

Each call runs `crmflow` as a user would; the subprocess timeout (20 s) is the "within seconds" bound,
not a timed assertion: without the checks these calls took 30 s to minutes.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from tests.databases import POSTGRES_ADMIN_URL, fresh_postgres_database, postgres_available
from tests.waiting import wait_until

LEAD = ("command", "lead.create", "--tenant", "acme", "--data", '{"name": "Ada"}')
AN_ID = "3f2a9c1e-0b7d-4c55-9a4e-2f1d7c0b9e11"
needs_postgres = pytest.mark.skipif(not postgres_available(), reason="PostgreSQL is not running")
POSTGRES_BASE = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]


def crmflow(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("CRMFLOW_", "KAFKA_"))}
    return subprocess.run([sys.executable, "-m", "crmflow", *args], cwd=cwd, capture_output=True, text=True,
                          env={**environ, "COLUMNS": "200", **env}, timeout=20)  # fmt: skip


def answered_in_one_line(done: subprocess.CompletedProcess[str], *expected: str) -> None:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    for text in expected:
        assert text in lines[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@needs_postgres
def test_a_postgres_url_with_a_wrong_port_is_answered_in_one_line_within_seconds(tmp_path: Path) -> None:
    port = free_port()
    done = crmflow(tmp_path, "--database-url", f"postgresql://postgres@127.0.0.1:{port}/crm", *LEAD)
    answered_in_one_line(done, f"cannot use PostgreSQL at 127.0.0.1:{port}: connection refused",
                         "is the server running, is the port right?")  # fmt: skip


@needs_postgres
@pytest.mark.parametrize(("url", "expected"), [
    (f"{POSTGRES_BASE.replace('postgres@', 'nobody@')}/postgres", 'role "nobody" does not exist'),
    (f"{POSTGRES_BASE}/nosuchdb", 'database "nosuchdb" does not exist'),
], ids=["unknown_role", "missing_database"])  # fmt: skip
def test_an_unknown_role_and_a_missing_database_are_told_apart(tmp_path: Path, url: str, expected: str) -> None:
    answered_in_one_line(crmflow(tmp_path, "--database-url", url, "explain", AN_ID), expected)


@needs_postgres
def test_a_read_only_explain_against_a_database_without_a_store_creates_no_tables(tmp_path: Path) -> None:
    with fresh_postgres_database() as url:
        done = crmflow(tmp_path, "--database-url", url, "explain", AN_ID)
        answered_in_one_line(done, "holds no crmflow event store", "crmflow_events")
        with psycopg.connect(url) as conn:
            tables = conn.execute("SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace").fetchall()
        assert tables == [], "a read-only command created tables or sequences"


def test_an_unsupported_url_scheme_names_the_supported_ones(tmp_path: Path) -> None:
    done = crmflow(tmp_path, "--database-url", "mysql://u@h/db", *LEAD)
    answered_in_one_line(done, "unsupported database URL 'mysql://u@h/db'", "postgresql://", "sqlite:///")


def test_a_verb_that_opens_no_store_is_not_stopped_by_a_bad_store_url(tmp_path: Path) -> None:
    done = crmflow(tmp_path, "catalog", "--format", "json", CRMFLOW_DATABASE_URL="mysql://u@h/db")
    assert done.returncode == 0 and "lead.create" in done.stdout, done.stderr


def test_a_sqlite_path_in_a_folder_that_does_not_exist_is_refused_and_not_created(tmp_path: Path) -> None:
    store = tmp_path / "nonexistent" / "dir" / "crm.db"
    answered_in_one_line(crmflow(tmp_path, "--database-url", str(store), *LEAD), str(store), "--create")
    assert not store.parent.parent.exists()


def test_create_makes_the_folder_of_a_new_store(tmp_path: Path) -> None:
    store = tmp_path / "new" / "crm.db"
    done = crmflow(tmp_path, "--database-url", str(store), *LEAD[:2], "--create", *LEAD[2:])
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["events"][0]["type"] == "LeadCreated" and store.exists()


def test_the_default_store_folder_is_made_on_first_use(tmp_path: Path) -> None:
    done = crmflow(tmp_path, *LEAD)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / ".crmflow" / "crmflow.db").exists()


def test_a_folder_or_a_path_ending_in_a_slash_is_refused(tmp_path: Path) -> None:
    answered_in_one_line(crmflow(tmp_path, "--database-url", str(tmp_path), *LEAD), "is a folder")
    slashed = f"{tmp_path}/nodir/"
    answered_in_one_line(crmflow(tmp_path, "--database-url", slashed, *LEAD), "ends with a slash")
    assert not (tmp_path / "nodir").exists()


def test_a_mistyped_path_for_explain_creates_no_store(tmp_path: Path) -> None:
    typo = tmp_path / "crn.db"
    answered_in_one_line(crmflow(tmp_path, "--database-url", str(typo), "explain", AN_ID), f"no event store at {typo}")
    assert list(tmp_path.iterdir()) == []


def test_explain_of_something_not_an_id_on_a_store_is_refused_with_exit_1(tmp_path: Path) -> None:
    assert crmflow(tmp_path, *LEAD).returncode == 0
    done = crmflow(tmp_path, "explain", "not-an-id")
    assert done.returncode == 1 and "'not-an-id' is not an aggregate id" in done.stderr


def test_a_query_before_any_read_model_prints_the_empty_report_and_says_what_writes_them(tmp_path: Path) -> None:
    assert crmflow(tmp_path, *LEAD).returncode == 0
    done = crmflow(tmp_path, "query", "pipeline", "--tenant", "acme")
    assert done.returncode == 0 and "pipeline" in done.stdout
    assert "never built" in done.stderr and "crmflow projections rebuild" in done.stderr
    assert not (tmp_path / ".crmflow" / "reports.db").exists(), "a read-only query creates nothing"


@pytest.mark.parametrize("args", [("worker", "process"), ("projections", "status"), ("deadletter", "list")],
                         ids=["worker_process", "projections_status", "deadletter_list"])  # fmt: skip
def test_no_broker_is_answered_in_one_line_naming_crmflow_broker(tmp_path: Path, args: tuple[str, ...]) -> None:
    assert crmflow(tmp_path, *LEAD).returncode == 0
    assert crmflow(tmp_path, "projections", "rebuild").returncode == 0
    port = free_port()
    done = crmflow(tmp_path, *args, KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{port}")
    answered_in_one_line(done, f"no Kafka broker at 127.0.0.1:{port}", "'crmflow broker'", "KAFKA_BOOTSTRAP_SERVERS")


def test_a_demo_on_a_kafka_cluster_that_is_not_there_is_answered_in_one_line(tmp_path: Path) -> None:
    port = free_port()
    done = crmflow(tmp_path, "demo", "--size", "small", "--bootstrap-servers", f"127.0.0.1:{port}")
    answered_in_one_line(done, f"no Kafka broker at 127.0.0.1:{port}")


def test_a_worker_told_to_wait_for_its_broker_waits_says_why_and_stops_when_asked(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "worker.log"
    with log.open("w") as stderr:
        worker = subprocess.Popen([sys.executable, "-m", "crmflow", "worker", "process", "--wait-for-dependencies"],
                                  cwd=tmp_path, env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{port}"},
                                  stdout=subprocess.DEVNULL, stderr=stderr, text=True)  # fmt: skip
    try:
        # Still there and saying why (a refusal would exit 2 at once): wait for its first retry line.
        wait_until(lambda: worker.poll() is not None or '"worker_retrying"' in log.read_text(), 60,
                   interval_s=0.1, what="the worker's first retry line")  # fmt: skip
        assert worker.poll() is None, log.read_text()
        worker.terminate()
        worker.wait(timeout=15)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(timeout=15)
    stderr_text = log.read_text()
    assert worker.returncode == 0, stderr_text
    retries = [json.loads(line) for line in stderr_text.splitlines() if '"worker_retrying"' in line]
    assert retries and f"no Kafka broker at 127.0.0.1:{port}" in retries[0]["error"]


def test_waiting_for_dependencies_still_refuses_a_sqlite_folder_that_does_not_exist(tmp_path: Path) -> None:
    store = tmp_path / "nonexistent" / "crm.db"
    done = crmflow(tmp_path, "--database-url", str(store), "worker", "timer", "--wait-for-dependencies")
    answered_in_one_line(done, str(store))
    assert not store.parent.exists()


def test_an_unexpected_error_is_one_line_and_debug_shows_the_traceback(tmp_path: Path) -> None:
    store = tmp_path / "crm.db"
    store.write_text("not a database")
    done = crmflow(tmp_path, "--database-url", str(store), *LEAD)
    assert done.returncode == 1 and "Traceback" not in done.stderr and "--debug" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    debug = crmflow(tmp_path, "--debug", "--database-url", str(store), *LEAD)
    assert "Traceback" in debug.stderr


def test_a_sqlite_command_imports_no_kafka_api_or_demo(tmp_path: Path) -> None:
    probe = ("import sys, runpy; sys.argv = ['crmflow', *sys.argv[1:]]\n"
             "try:\n    runpy.run_module('crmflow', run_name='__main__')\n"
             "except SystemExit as done:\n    assert not done.code, done.code\n"
             "heavy = ('kafka', 'fastapi', 'uvicorn', 'crmflow.workers.demo', 'crmflow.workers.run.runner')\n"
             "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy or m.startswith(heavy)))")  # fmt: skip
    for args in (LEAD, ("--help",), ("catalog",)):
        done = subprocess.run([sys.executable, "-c", probe, *args], cwd=tmp_path, capture_output=True, text=True,
                              timeout=60)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip().splitlines()[-1] == "[]", f"crmflow {' '.join(args)} imported {done.stdout[-500:]}"


def test_every_verb_shows_its_help_when_only_its_own_module_is_loaded(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from crmflow.workers.cli import VERBS

    # Two at a time: each call is a fresh interpreter, and the machine has two cores.
    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = dict(zip(VERBS, pool.map(lambda verb: crmflow(tmp_path, verb, "--help"), VERBS)))
    for verb, done in answers.items():
        assert done.returncode == 0 and f"crmflow {verb}" in done.stdout, f"crmflow {verb} --help: {done.stderr}"
