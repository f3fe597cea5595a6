"""Configuration comes from the environment and is validated."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from crmflow.workers.config import Settings


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

