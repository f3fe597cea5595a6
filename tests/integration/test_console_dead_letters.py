"""An admin sees its own tenant's dead letters in the console and redrives them; other tenants' stay put."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient

from crmflow.aggregates.application import CrmApplication
from crmflow.projections.db import Database
from crmflow.projections.projector import create_tables
from crmflow.workers.api.app import create_app
from crmflow.workers.api.tokens import issue_token
from crmflow.workers.config import Settings
from crmflow.workers.kafka import deadletters
from crmflow.workers.kafka.clients import KafkaClients
from tests.conftest import Broker
from tests.integration.console_client import signed_in

SECRET = "console-dead-letters-secret-long-enough"


def _letter(kafka: KafkaClients, tenant: str, event_id: str) -> None:
    value = json.dumps(
        {
            "specversion": "1.0",
            "id": event_id,
            "source": "billing",
            "type": "InvoicePaid",
            "tenantid": tenant,
            "data": {},
        }
    ).encode()
    headers = [
        ("content-type", b"application/cloudevents+json"),
        ("crmflow-reason", b"tenant not configured"),
        ("crmflow-error", b"unknown_tenant"),
        ("crmflow-original-topic", kafka.topics.inbound.encode()),
        ("crmflow-original-partition", b"0"),
        ("crmflow-original-offset", b"0"),
        ("crmflow-original-bytes", str(len(value)).encode()),
        ("crmflow-attempts", b"1"),
    ]
    kafka.producer.send(kafka.topics.deadletter, key=event_id.encode(), value=value, headers=headers)
    kafka.producer.flush(timeout=30)


def test_an_admin_sees_and_redrives_only_its_own_tenants_dead_letters(
    kafka: KafkaClients, broker: Broker, tmp_path: Path
) -> None:
    _letter(kafka, "acme", "acme-paid-1")
    _letter(kafka, "globex", "globex-paid-1")
    settings = Settings(
        database_url=None,
        api_secret=SECRET,
        kafka_bootstrap_servers=broker.bootstrap_servers,
        topic_prefix=kafka.settings.topic_prefix,
        partitions=kafka.settings.partitions,
    )
    if broker.name == "bundled":
        settings = settings.tuned_for_bundled_broker()
    app, reports = CrmApplication(str(tmp_path / "e.db")), Database(str(tmp_path / "r.db"))
    create_tables(reports)
    try:
        client = TestClient(create_app(settings, app=app, reports_db=reports))
        csrf = signed_in(client, issue_token(SECRET, tenant="acme", role="admin", subject="olga"))

        page = client.get("/console/dead-letters")
        assert page.status_code == 200
        assert "tenant not configured" in page.text and page.text.count("<td>unknown_tenant</td>") == 1, (
            "acme's only"
        )

        assert (
            client.post("/console/dead-letters/redrive", data={"error": "unknown_tenant"}).status_code == 403
        )
        done = client.post(
            "/console/dead-letters/redrive", data={"csrf_token": csrf, "error": "unknown_tenant"}
        )
        assert done.status_code == 200 and "1 dead letter(s) sent back" in done.text
    finally:
        reports.close()
        app.close()
    pending = deadletters.redrive(kafka, dry_run=True)
    assert [d.tenant for d in pending] == ["globex"], "globex's letter is still there to redrive"
