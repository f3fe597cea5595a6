"""The Apache Kafka the tests start formats its log directory whatever random cluster id it draws."""

from __future__ import annotations

from pathlib import Path

import pytest

from crmflow.workers.kafka import apache_kafka
from tests.conftest import required_service_missing


def test_a_cluster_id_that_starts_with_a_dash_is_not_taken_for_an_option(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    # base64url ids start with "-" one time in 64; passed as a separate argument, kafka-storage read it as an option.
    reason = apache_kafka.missing_reason()
    if reason:
        required_service_missing(request, reason)
    monkeypatch.setattr(apache_kafka, "_cluster_id", lambda: "-nd0pLg6IRraswE2T7VHdRg")
    apache_kafka.ApacheKafka(data_dir=tmp_path)._format()
    assert "cluster.id=-nd0pLg6IRraswE2T7VHdRg" in (tmp_path / "logs" / "meta.properties").read_text()
