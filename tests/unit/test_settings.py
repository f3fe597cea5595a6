"""Configuration comes from the environment and is validated."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from workers.config import Settings


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
