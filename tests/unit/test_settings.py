"""Configuration comes from the environment and is validated."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from crmflow.workers.config import NOT_SETTINGS, Settings, environment_names, unknown_settings

ROOT = Path(__file__).resolve().parents[2]


def test_an_operator_configures_kafka_and_tenants_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka-1:9092,kafka-2:9092")
    monkeypatch.setenv("CRMFLOW_TOPIC_PREFIX", "prod")
    monkeypatch.setenv("CRMFLOW_PARTITIONS", "12")
    monkeypatch.setenv("CRMFLOW_TENANTS", "acme, globex ,")
    monkeypatch.setenv("CRMFLOW_KAFKA_CLIENT_ID", "crm-eu")
    settings = Settings()
    kafka = settings.kafka()
    assert (kafka.bootstrap_servers, kafka.topic_prefix, kafka.partitions, kafka.client_id) == (
        "kafka-1:9092,kafka-2:9092", "prod", 12, "crm-eu")  # fmt: skip
    assert settings.tenants == ["acme", "globex"]


@pytest.mark.parametrize(("name", "value"), [("CRMFLOW_PARTITIONS", "0"), ("CRMFLOW_TOPIC_PREFIX", "my topics"),
                                             ("CRMFLOW_LOG_LEVEL", "loud")])  # fmt: skip
def test_a_bad_setting_is_refused_naming_the_setting(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=name.removeprefix("CRMFLOW_").lower()):
        Settings()


def test_a_misspelled_variable_stops_crmflow_naming_it_and_the_setting_meant(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMFLOW_PARTITION", "3")  # meant: CRMFLOW_PARTITIONS; ignored, the default 6 would win
    with pytest.raises(ValidationError) as refused:
        Settings()
    (error,) = refused.value.errors()
    assert (error["loc"], error["msg"]) == (("CRMFLOW_PARTITION",), "unknown setting; did you mean CRMFLOW_PARTITIONS?")


@pytest.mark.parametrize(("typo", "meant"), [("CRMFLOW_KAFKA_SESION_TIMEOUT_MS", "CRMFLOW_KAFKA_SESSION_TIMEOUT_MS"),
                                             ("CRMFLOW_LOGLEVEL", "CRMFLOW_LOG_LEVEL"),
                                             ("CRMFLOW_DATABASE", "CRMFLOW_DATABASE_URL"),
                                             ("CRMFLOW_API_SECRETS", "CRMFLOW_API_SECRET")])  # fmt: skip
def test_the_nearest_setting_is_named_for_each_typo(typo: str, meant: str) -> None:
    (error,) = unknown_settings({typo: "1", "PATH": "/bin"})
    assert error["loc"] == (typo,) and error["type"].message() == f"unknown setting; did you mean {meant}?"


def test_a_variable_like_no_setting_is_refused_without_a_guess() -> None:
    # The shared prefix is not compared: otherwise every CRMFLOW_ name would look near every other.
    (error,) = unknown_settings({"CRMFLOW_ZZZ": "1"})
    assert error["type"].message() == "unknown setting; no setting is named like it (README.md, Configuration)"


def test_settings_in_any_case_and_other_programs_variables_are_not_refused() -> None:
    # pydantic-settings reads crmflow_partitions as CRMFLOW_PARTITIONS; KAFKA_* and the rest are not crmflow's.
    assert unknown_settings({"crmflow_partitions": "12", "KAFKA_HOST_PORT": "9092", "CRMFLOWX": "1"}) == []


def test_the_variables_crmflows_own_tools_read_do_not_stop_the_service(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in NOT_SETTINGS:
        monkeypatch.setenv(name, "1")
    assert Settings().partitions == 6


def mentioned_variables() -> dict[str, str]:
    """Every CRMFLOW_* name in the repository's code, scripts, manifests and docs, with a file that has it."""
    found: dict[str, str] = {}
    folders = ["aggregates", "processes", "projections", "workers", "crmflow", "tests", "benchmarks", "deploy",
               "docs", ".ci"]  # fmt: skip
    files = [ROOT / "README.md", ROOT / "pyproject.toml", *(p for f in folders for p in (ROOT / f).rglob("*"))]
    for path in files:
        if not path.is_file() or path.suffix in (".pyc", ".db") or path.resolve() == Path(__file__).resolve():
            continue  # this file spells typos on purpose
        for name in re.findall(r"\bCRMFLOW_[A-Z0-9_]*[A-Z0-9]\b", path.read_text(encoding="utf-8", errors="ignore")):
            found.setdefault(name, str(path.relative_to(ROOT)))
    return found


def test_every_crmflow_variable_the_repository_sets_or_documents_is_a_setting_or_allowed() -> None:
    mentioned = mentioned_variables()
    assert {"CRMFLOW_PARTITIONS", "CRMFLOW_TEST_POSTGRES", "CRMFLOW_IMAGE"} <= set(mentioned)
    examples = {"CRMFLOW_PARTITION", "CRMFLOW_ZZZ"}  # what the docs show being refused
    strays = {name: where for name, where in mentioned.items()
              if name not in environment_names() | set(NOT_SETTINGS) | examples}  # fmt: skip
    assert not strays, f"neither settings nor in workers/config.py NOT_SETTINGS (crmflow would refuse them): {strays}"


def test_a_join_that_completed_after_its_poll_gave_up_is_finished_with_its_assignment() -> None:
    # The work-around in workers/kafka.py for kafka-python 3.0's join race: the next poll must rejoin while a
    # join task is outstanding, and a task that already succeeded is finished with its own result.
    import asyncio
    import threading

    from kafka.coordinator.base import BaseCoordinator
    from kafka.coordinator.consumer import ConsumerCoordinator
    from kafka.future import Future
    from kafka.structs import MemberState

    import crmflow.workers.kafka.clients  # noqa: F401 - applies the work-around

    completed: list[tuple[object, ...]] = []

    class Coordinator:
        _lock = threading.Lock()
        _generation = type("Generation", (), {"generation_id": 7, "member_id": "m-1", "protocol": "sticky"})()
        rejoining = rejoin_needed = True
        state = MemberState.REBALANCING
        heartbeat = False

        def __init__(self) -> None:
            self._join_task = Future().success(b"assignment")

        def _enable_heartbeat(self) -> None:
            self.heartbeat = True

        async def _on_join_complete_async(self, *args: object) -> None:
            completed.append(args)

    coordinator = Coordinator()
    assert ConsumerCoordinator.need_rejoin(coordinator) is True
    assert asyncio.run(BaseCoordinator.join_group_async(coordinator)) is True
    assert completed == [(7, "m-1", "sticky", b"assignment")]
    assert (coordinator.state, coordinator.heartbeat, coordinator._join_task) == (MemberState.STABLE, True, None)


def test_kafka_defaults_are_for_apache_kafka_and_the_bundled_broker_gets_its_own_tuning() -> None:
    from crmflow.workers.config import Settings
    from crmflow.workers.kafka.broker import BUNDLED_BROKER_TUNING

    production = Settings(_env_file=None)
    assert (production.kafka_max_poll_interval_ms, production.kafka_fetch_max_wait_ms) == (60_000, 500)
    assert production.kafka_assignor == "cooperative-sticky"
    bundled = production.tuned_for_bundled_broker().kafka()
    assert {name: getattr(bundled, name) for name in BUNDLED_BROKER_TUNING} == BUNDLED_BROKER_TUNING



def test_a_short_api_secret_is_placed_at_its_variable_and_never_repeated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMFLOW_API_SECRET", "hunter2")
    monkeypatch.setenv("CRMFLOW_PARTITIONS", "0")
    with pytest.raises(ValidationError) as refused:
        Settings()
    problems = {e["loc"]: e["msg"] for e in refused.value.errors()}
    assert problems[("CRMFLOW_API_SECRET",)] == "must be at least 32 characters (got 7)"
    assert problems[("partitions",)] == "Input should be greater than or equal to 1", "other problems keep their words"
    assert "hunter2" not in str(refused.value)


def test_a_secret_of_32_characters_is_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRMFLOW_API_SECRET", "s" * 32)
    secret = Settings().api_secret
    assert secret is not None and secret.get_secret_value() == "s" * 32
