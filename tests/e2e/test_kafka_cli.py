"""An operator runs the intake and relay, another service publishes, the operator handles dead letters."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from confluent_kafka import Producer

from crmflow.aggregates.application import CrmApplication
from crmflow.aggregates.inbound import inbound_id
from crmflow.workers.kafka.broker import free_port
from crmflow.workers.kafka.clients import KafkaClients, KafkaSettings
from tests.waiting import wait_until
from tests.worker_processes import worker_env

GOOD = {"specversion": "1.0", "id": "form-1", "source": "/web/forms", "type": "FormSubmitted",
        "tenantid": "acme", "data": {"email": "ada@ae.example"}}  # fmt: skip


@pytest.fixture
def env(kafka_settings: KafkaSettings, tmp_path: Path) -> dict[str, str]:
    return {**worker_env(str(tmp_path / "crm.db"), kafka_settings), "COLUMNS": "200",
            "CRMFLOW_TENANTS": "acme,globex"}  # fmt: skip


def crmflow(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "crmflow", *args], env=env, input=stdin,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, f"crmflow {' '.join(args)} failed:\n{done.stderr}"
    return done


def test_published_events_are_taken_in_and_failures_can_be_inspected_and_redriven(env: dict[str, str], tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join([json.dumps(GOOD), "this is not json",
                                 json.dumps({**GOOD, "id": "form-2", "tenantid": "initech"})]) + "\n")  # fmt: skip
    intake = subprocess.Popen([sys.executable, "-m", "crmflow", "worker", "intake"], env=env,
                              stdout=subprocess.DEVNULL, stderr=(tmp_path / "intake.log").open("wb"))  # fmt: skip
    try:
        published = crmflow(env, "publish", str(events))
        assert json.loads(published.stdout)["published"] == 3
        assert "line(s) 2 are not JSON objects" in published.stderr

        def dead_letters() -> list[dict[str, object]]:
            return json.loads(crmflow(env, "deadletter", "list", "--format", "json").stdout)

        letters = wait_until(lambda: len(dead_letters()) == 2 and dead_letters(), 60, interval_s=0.5,
                             what="two dead letters")  # fmt: skip
        assert sorted(d["error"] for d in letters) == ["not_json", "unknown_tenant"]
        not_json = next(d for d in letters if d["error"] == "not_json")
        shown = json.loads(crmflow(env, "deadletter", "show", str(not_json["position"])).stdout)
        assert shown["value"] == "this is not json"
        assert shown["headers"]["crmflow-original-topic"].endswith(".inbound")

        app = CrmApplication(env["CRMFLOW_DATABASE_URL"])
        wait_until(lambda: app.history(inbound_id("acme", "/web/forms", "form-1")), 30, what="the good event stored")

        redriven = json.loads(crmflow(env, "deadletter", "redrive", "--error", "not_json").stdout)
        assert redriven["count"] == 1
        # Still not JSON: it comes back as a second attempt.
        wait_until(lambda: any(d["attempts"] == 2 for d in dead_letters()), 60, interval_s=0.5, what="attempt 2")
    finally:
        intake.send_signal(signal.SIGTERM)
        assert intake.wait(timeout=30) == 0, "the intake stops cleanly on SIGTERM"
    assert '"intake_stopped"' in (tmp_path / "intake.log").read_text()


def test_the_local_broker_command_starts_a_broker_with_the_topics(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "CRMFLOW_TOPIC_PREFIX": "localdev"}
    broker = subprocess.Popen([sys.executable, "-m", "crmflow", "broker", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        from kafka import KafkaConsumer

        def topics() -> set[str]:
            try:
                consumer = KafkaConsumer(bootstrap_servers=f"127.0.0.1:{port}")
            except Exception:  # noqa: BLE001 - not listening yet
                return set()
            try:
                return set(consumer.topics())
            finally:
                consumer.close()

        wait_until(lambda: {"localdev.events", "localdev.inbound", "localdev.deadletter"} <= topics(), 30,
                   interval_s=0.2, what="the broker's topics")  # fmt: skip
    finally:
        broker.send_signal(signal.SIGTERM)
        assert broker.wait(timeout=30) == 0


def test_a_binary_mode_event_refused_for_an_unknown_tenant_is_redriven_whole_by_the_cli_after_onboarding(
    env: dict[str, str], kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    # A service publishes with the official SDK in binary mode (attributes in ce_ headers) for a tenant not
    # onboarded yet, through confluent-kafka's producer.
    event = CloudEvent(attributes={"specversion": "1.0", "id": "inv-1", "source": "/spring/billing",
                                   "type": "InvoicePaid", "tenantid": "initech", "partitionkey": "inv-1"},
                       data={"invoice": "inv-1", "amount": "99.00"})  # fmt: skip
    message = ce_kafka.to_binary(event, JSONFormat())
    producer = Producer({"bootstrap.servers": env["KAFKA_BOOTSTRAP_SERVERS"]})
    with KafkaClients(kafka_settings, name="test") as kafka:
        kafka.ensure_topics()  # before the producer: it would create a missing topic with the broker's defaults
    intake = subprocess.Popen([sys.executable, "-m", "crmflow", "worker", "intake"], env=env,
                              stdout=subprocess.DEVNULL, stderr=(tmp_path / "intake.log").open("wb"))  # fmt: skip
    try:
        producer.produce(f"{env['CRMFLOW_TOPIC_PREFIX']}.inbound", key=message.key, value=message.value,
                         headers=list(message.headers.items()))  # fmt: skip
        assert producer.flush(30) == 0

        def dead_letters() -> list[dict[str, object]]:
            return json.loads(crmflow(env, "deadletter", "list", "--format", "json").stdout)

        (letter,) = wait_until(dead_letters, 60, interval_s=0.5, what="the dead letter")
        assert letter["error"] == "unknown_tenant"
        shown = json.loads(crmflow(env, "deadletter", "show", str(letter["position"])).stdout)
        assert shown["headers"]["ce_tenantid"] == "initech" and shown["headers"]["ce_type"] == "InvoicePaid"
    finally:
        intake.send_signal(signal.SIGTERM)
        assert intake.wait(timeout=30) == 0

    # Onboarded: the intake runs with the tenant, and the operator redrives what failed for that reason.
    onboarded = {**env, "CRMFLOW_TENANTS": "acme,globex,initech"}
    intake = subprocess.Popen([sys.executable, "-m", "crmflow", "worker", "intake"], env=onboarded,
                              stdout=subprocess.DEVNULL, stderr=(tmp_path / "intake2.log").open("wb"))  # fmt: skip
    try:
        assert json.loads(crmflow(env, "deadletter", "redrive", "--error", "unknown_tenant").stdout)["count"] == 1
        app = CrmApplication(env["CRMFLOW_DATABASE_URL"])
        stored = wait_until(lambda: app.history(inbound_id("initech", "/spring/billing", "inv-1"), "initech"), 60,
                            interval_s=0.5, what="the redriven binary-mode event stored")  # fmt: skip
        assert [h.type for h in stored] == ["InboundEventAccepted"]
    finally:
        intake.send_signal(signal.SIGTERM)
        assert intake.wait(timeout=30) == 0
