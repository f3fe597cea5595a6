"""A hostile tenant tries everything at once, while a canary tenant keeps working: nobody else notices.

The intake gets 5,000 generated hostile messages (tests/hostile.py) shuffled
among valid ones of three tenants; the HTTP API gets 2,000 hostile requests
over every route it has, carrying the canary's real ids. What must hold:
no worker stops, no 5xx, every hostile message is dead-lettered with a
reason, every valid one is stored once, and the canary's reports and
records are exactly what the canary itself did.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from crmflow.aggregates.application import CrmApplication
from crmflow.aggregates.inbound import inbound_id
from crmflow.projections.db import Database
from crmflow.projections.projector import create_tables
from crmflow.projections.reports import REPORTS
from crmflow.workers.api.tokens import issue_token
from crmflow.workers.inbound_checks import InboundPolicy
from crmflow.workers.kafka import deadletters
from crmflow.workers.kafka.clients import KafkaClients
from crmflow.workers.kafka.intake import Intake
from crmflow.workers.shutdown import StopSignal
from tests.conftest import Clock
from tests.hostile import BINARY_FAMILY, TENANTS, hostile_body, hostile_path_value, interleaved
from tests.integration.api_harness import SECRET, Api, start_api
from tests.waiting import run_in_background, wait_until

# With -m slow only (tests/conftest.py): the bundled broker on SQLite, and Apache Kafka on both stores, run by default.
SLOW_VARIANTS = ("bundled-postgres",)

HOSTILE_MESSAGES = 5_000
VALID_PER_TENANT = 100
HOSTILE_REQUESTS = 2_000


def test_five_thousand_hostile_messages_among_valid_ones_stop_nobody_and_every_valid_one_is_stored(
    app: CrmApplication, kafka: KafkaClients
) -> None:
    rng = random.Random(13)
    messages = interleaved(rng, HOSTILE_MESSAGES, VALID_PER_TENANT)
    intake = Intake(app, kafka, InboundPolicy(tenants=frozenset(TENANTS)))
    stop = StopSignal()
    worker, crashed = run_in_background(intake, stop)
    started = time.monotonic()
    for message in messages:
        kafka.producer.send(kafka.topics.inbound, key=message.family.encode(), value=message.value,
                            headers=message.headers)  # fmt: skip
    kafka.producer.flush()
    try:
        wait_until(lambda: crashed or intake.handled >= len(messages), 240, interval_s=0.2,
                   what=f"the intake to handle {len(messages)} messages")  # fmt: skip
        handled_in = time.monotonic() - started
    finally:
        stop.set()
        worker.join(30)

    hostile = [m for m in messages if m.family != "valid"]
    valid = [m for m in messages if m.family == "valid"]
    families = Counter(m.family for m in hostile)
    letters = deadletters.list_dead_letters(kafka, timeout_s=60)
    reasons = [letter for letter in letters if letter.headers.get("crmflow-reason")]
    print(f"\nhostile suite · intake: {len(hostile):,} hostile ({len(families)} families) and {len(valid):,} valid "
          f"messages handled in {handled_in:.1f} s; {len(letters):,} dead letters, {len(reasons):,} with a reason; "
          f"worker crashes {len(crashed)}")  # fmt: skip
    assert not crashed, f"the intake stopped: {crashed[0]!r}"
    assert not worker.is_alive()
    # Every hostile message is dead-lettered, with a reason. Once each, unless the intake lost its
    # partitions mid-batch (a poll that came too late on a loaded machine): the batch is then read again
    # and its dead letters sent again, at least once as Kafka promises, each naming the same original.
    originals = {(letter.headers.get("crmflow-original-partition"), letter.headers.get("crmflow-original-offset"))
                 for letter in letters}  # fmt: skip
    assert len(originals) == len(hostile) == HOSTILE_MESSAGES
    assert len(reasons) == len(letters)
    # A binary-mode message is its headers: its dead letter keeps them, so that a redrive can send it back whole.
    binary = [letter for letter in letters if letter.key == BINARY_FAMILY.encode()]
    binary_originals = {(b.headers.get("crmflow-original-partition"), b.headers.get("crmflow-original-offset"))
                        for b in binary}  # fmt: skip
    assert len(binary_originals) == families[BINARY_FAMILY] > 100
    assert all(any(name.startswith(("ce_", "content-type")) for name, _ in letter.original_headers) for letter in binary)
    # Every valid message of every tenant is stored, the canary's among them: 3 tenants × 100.
    assert intake.counts["accepted"] == len(valid) == len(TENANTS) * VALID_PER_TENANT
    for message in valid:
        document = json.loads(message.value)
        stored = app.history(inbound_id(document["tenantid"], document["source"], document["id"]),
                             document["tenantid"])  # fmt: skip
        assert [h.type for h in stored] == ["InboundEventAccepted"]


# HTTP: every route, hostile requests with the canary's real ids.


@pytest.fixture
def api(tmp_path: Path, clock: Clock) -> Iterator[Api]:
    app = CrmApplication(str(tmp_path / "events.db"), clock=clock)
    reports = Database(str(tmp_path / "reports.db"))
    create_tables(reports)
    yield start_api(app, reports, tenants=list(TENANTS))
    reports.close()
    app.close()


def canary_works(api: Api) -> dict[str, str]:
    """The canary tenant's own work: a campaign, an account, a lead and a case; their ids."""
    canary = api.user("canary", "admin", "cara")
    ids = {"campaign_id": canary.created("campaign.create", name="Canary Spring", channel="webinar", budget="1000.00",
                                         currency="EUR")}  # fmt: skip
    ids["account_id"] = canary.created("account.create", name="Canary Corp")
    ids["lead_id"] = canary.created("lead.create", name="Cara Canary", company="Canary Corp",
                                    campaign_id=ids["campaign_id"], source="webinar")  # fmt: skip
    ids["case_id"] = canary.created("case.open", account_id=ids["account_id"], subject="Canary cannot log in",
                                    category="access", priority="urgent", channel="email", owner="cara")  # fmt: skip
    api.project()
    return ids


def canary_reports(api: Api) -> dict[str, Any]:
    # At one moment: the sla report ages open cases against the time it is run at.
    at = {"sla": {"now": datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)}}
    return {name: report.run(api.reports, "canary", **at.get(name, {})) for name, report in REPORTS.items()}


def hostile_request(rng: random.Random, api: Api, routes: list[tuple[str, str]], canary: dict[str, str]) -> Any:
    """One request a hostile client makes: any route, any token, any body, the canary's ids where ids go."""
    method, template = rng.choice(routes)
    path = template
    for name in ("name", "aggregate_id"):
        value = rng.choice([hostile_path_value(rng), *canary.values()])
        path = path.replace("{" + name + "}", value)
    token = issue_token(SECRET, tenant=rng.choice(("acme", "globex")), role=rng.choice(("admin", "sales", "analyst")),
                        subject="mallory")  # fmt: skip
    if rng.random() < 0.2:  # a forged, a broken or an absurd token
        token = rng.choice((issue_token("another-secret-that-is-long-enough-for-hs256", tenant="canary", role="admin",
                                        subject="m"), "not.a.token", "", "x" * 10_000))  # fmt: skip
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": rng.choice(("k", "", "x" * 300)),
               "Content-Type": rng.choice(("application/json", "application/yaml", "text/plain",
                                           "application/cloudevents+json"))}  # fmt: skip
    if method == "get":
        params = rng.choice(({}, {"since": "yesterday"}, {"until": "9" * 400}, {"all_versions": "maybe"}))
        return api.client.get(path, params=params, headers=headers)
    body = hostile_body(rng)
    if rng.random() < 0.3:  # a well-formed body aimed at the canary's records
        field = rng.choice(sorted(canary))
        body = json.dumps({field: canary[field], "name": "Mallory", "owner": "mallory", "amount": "1000000.00",
                           "close_date": "2026-12-31", "reason": "mine now", "body": "x"}).encode()  # fmt: skip
    return api.client.post(path, content=body, headers=headers)


def test_two_thousand_hostile_requests_over_every_route_give_no_5xx_and_leave_the_canary_untouched(
    api: Api,
) -> None:
    canary = canary_works(api)
    before = canary_reports(api)
    paths = api.client.app.openapi()["paths"]  # type: ignore[attr-defined]
    routes = sorted((method, path) for path, operations in paths.items() for method in operations)
    rng = random.Random(17)
    statuses: Counter[int] = Counter()
    server_errors: list[str] = []
    leaks: list[str] = []
    for _ in range(HOSTILE_REQUESTS):
        try:
            response = hostile_request(rng, api, routes, canary)
        except Exception as error:  # noqa: BLE001 - the TestClient re-raises what the server did not handle
            server_errors.append(repr(error)[:200])
            continue
        statuses[response.status_code] += 1
        if response.status_code >= 500:
            server_errors.append(f"{response.status_code} {response.text[:200]}")
        if "Canary" in response.text or "cara" in response.text:
            leaks.append(response.text[:200])
    api.project()
    after = canary_reports(api)
    print(f"\nhostile suite · HTTP: {HOSTILE_REQUESTS:,} requests over {len(routes)} routes; statuses "
          f"{dict(sorted(statuses.items()))}; 5xx {len(server_errors)}; responses naming the canary {len(leaks)}")
    assert server_errors == []
    assert leaks == []
    # Nothing the hostile tenants did reached the canary's reports: every report equal, row for row.
    assert after == before
    # The canary still works, and its records are its own.
    canary_user = api.user("canary", "admin", "cara")
    assert canary_user.get(f"/v1/aggregates/{canary['lead_id']}").status_code == 200
