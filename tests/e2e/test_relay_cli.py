"""An operator finds the events the relay parked, retries them, and raises the size limit once Kafka can."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from uuid import UUID

import pytest

from crmflow.aggregates.application import CommandRequest, CrmApplication
from crmflow.aggregates.metadata import event_metadata
from crmflow.workers.kafka.clients import KafkaClients, KafkaSettings
from crmflow.workers.kafka.relay import Relay
from crmflow.workers.shutdown import StopSignal
from tests.waiting import read_topic
from tests.worker_processes import worker_env


@pytest.fixture
def offline(tmp_path: Path) -> dict[str, str]:
    """No broker needed: help and refused arguments."""
    return {**os.environ, "CRMFLOW_DATABASE_URL": str(tmp_path / "crm.db")}


@pytest.fixture
def env(kafka_settings: KafkaSettings, tmp_path: Path) -> dict[str, str]:
    return {**worker_env(str(tmp_path / "crm.db"), kafka_settings), "COLUMNS": "250"}


def crmflow(env: dict[str, str], *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "crmflow", *args], env=env, capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == code, f"crmflow {' '.join(args)} exited {done.returncode}:\n{done.stderr}"
    return done


def parked_list(env: dict[str, str]) -> list[dict[str, object]]:
    return json.loads(crmflow(env, "relay", "parked", "list", "--format", "json").stdout)


def test_every_relay_command_has_help_with_an_example(offline: dict[str, str]) -> None:
    for command in (
        ["relay"],
        ["relay", "parked"],
        ["relay", "parked", "list"],
        ["relay", "parked", "retry"],
    ):
        assert "example" in crmflow(offline, *command, "--help").stdout


def test_a_bad_notification_number_is_refused_with_what_is_allowed(offline: dict[str, str]) -> None:
    done = crmflow(offline, "relay", "parked", "retry", "--notification", "seven", code=2)
    assert "'seven' is not a whole number; give one from 1 up" in done.stderr
    done = crmflow(offline, "relay", "parked", "retry", code=2)
    assert "one of the arguments --notification --all is required" in done.stderr


def test_an_operator_lists_parked_events_retries_them_and_publishes_them_with_a_larger_limit(
    env: dict[str, str], kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    app = CrmApplication(str(tmp_path / "crm.db"))
    ada = str(app.execute(CommandRequest("lead.create", "acme", {"name": "Ada"})).aggregate_id)  # 1
    lead = app.repository.get(UUID(ada))
    with event_metadata({"tenant": "acme"}):
        lead._rescore(score=1, points=1, reason="r" * 600_000)  # 2: 600 KB, stored without the checks
    app.save(lead)
    app.execute(CommandRequest("lead.assign", "acme", {"lead_id": ada, "owner": "maria"}))  # 3: waits for 2
    with KafkaClients(kafka_settings, name="relay") as kafka:
        kafka.ensure_topics()
        Relay(app, kafka).run(StopSignal(), until_caught_up=True)
    app.close()

    listed = parked_list(env)
    assert [
        (p["notification"], p["aggregate"], p["tenant"], p["waits_for"], p["retried"]) for p in listed
    ] == [
        (2, ada, "acme", None, 0),
        (3, ada, "acme", 2, 0),
    ]
    table = crmflow(env, "relay", "parked", "list").stdout
    assert "2 parked events" in table and "waits for parked notification 2" in table

    refused = crmflow(env, "relay", "parked", "retry", "--all", code=1)
    assert json.loads(refused.stdout) == {"published": [], "still_parked": [2, 3]}
    assert "2 events are still parked" in refused.stderr
    missing = crmflow(env, "relay", "parked", "retry", "--notification", "99", code=1)
    assert "notification 99 is not parked (2 are: see `crmflow relay parked list`)" in missing.stderr
    assert [p["retried"] for p in parked_list(env)] == [1, 0]

    done = crmflow(env, "relay", "parked", "retry", "--notification", "3", "--max-bytes", "1000000")
    assert json.loads(done.stdout) == {"published": [2, 3], "still_parked": []}
    assert parked_list(env) == []
    with KafkaClients(kafka_settings, name="reader") as kafka:
        records = read_topic(kafka, kafka.topics.events, at_least=3)
    assert [int(json.loads(r.value)["sequence"]) for r in records] == [1, 2, 3]  # one aggregate: one partition
