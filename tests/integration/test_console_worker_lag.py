"""An operator reads on the console how far each worker is behind: the relay, the consumer groups, the read
models, each counted as its metric counts it."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient

from crmflow.aggregates.application import CommandRequest, CrmApplication
from crmflow.projections.db import Database
from crmflow.projections.projector import create_tables
from crmflow.workers.api.app import create_app
from crmflow.workers.api.tokens import issue_token
from crmflow.workers.config import Settings
from crmflow.workers.kafka.clients import KafkaClients
from crmflow.workers.kafka.relay import Relay
from crmflow.workers.shutdown import StopSignal
from tests.conftest import Broker
from tests.integration.console_client import signed_in

SECRET = "console-worker-lag-secret-long-enough"


def behind(html: str, stage: str) -> str:
    row = re.search(rf'<tr data-stage="{stage}">(.*?)</tr>', html, re.DOTALL)
    assert row, f"the page has a row for {stage}"
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.DOTALL)
    return cells[3]


def test_an_operator_sees_the_relay_the_consumer_groups_and_the_read_models_fall_behind_and_catch_up(
    kafka: KafkaClients, broker: Broker, tmp_path: Path
) -> None:
    settings = Settings(
        database_url=None, api_secret=SECRET, kafka_bootstrap_servers=broker.bootstrap_servers,
        topic_prefix=kafka.settings.topic_prefix, partitions=kafka.settings.partitions,
    )  # fmt: skip
    if broker.name == "bundled":
        settings = settings.tuned_for_bundled_broker()
    app, reports = CrmApplication(str(tmp_path / "e.db")), Database(str(tmp_path / "r.db"))
    create_tables(reports)
    try:
        for name in ("Ada", "Grace", "Edsger"):
            app.execute(CommandRequest("lead.create", "acme", {"name": name}, caller="marketing:mia"))
        stored = app.recorder.max_notification_id()
        client = TestClient(create_app(settings, app=app, reports_db=reports))
        signed_in(client, issue_token(SECRET, tenant="acme", role="analyst", subject="olga"))

        before = client.get("/console/workers")
        assert before.status_code == 200
        # Nothing relayed yet: every stored record is the relay's backlog; three LeadCreated not projected.
        assert behind(before.text, "relay") == str(stored)
        assert behind(before.text, "read models") == "3"
        assert "never built" in before.text

        published = Relay(app, kafka).run(StopSignal(), until_caught_up=True)
        after = client.get("/console/workers").text
        assert behind(after, "relay") == "0"
        # Published but consumed by nobody: each group that reads the events topic has all of it to read,
        # and the intake's inbound topic is empty.
        assert published >= 3
        assert behind(after, "process") == behind(after, "projection") == str(published)
        assert behind(after, "intake") == "0"
    finally:
        reports.close()
        app.close()


def test_a_role_without_process_instances_is_refused_the_workers_page(tmp_path: Path) -> None:
    settings = Settings(database_url=None, api_secret=SECRET, kafka_bootstrap_servers="127.0.0.1:9")
    app, reports = CrmApplication(str(tmp_path / "e.db")), Database(str(tmp_path / "r.db"))
    create_tables(reports)
    try:
        client = TestClient(create_app(settings, app=app, reports_db=reports))
        signed_in(client, issue_token(SECRET, tenant="acme", role="sales", subject="sam"))
        refused = client.get("/console/workers")
        assert refused.status_code == 403 and "role sales may not read process instances" in refused.text
        assert 'href="/console/workers"' not in client.get("/console").text, "nor is it in the menu"
    finally:
        reports.close()
        app.close()
