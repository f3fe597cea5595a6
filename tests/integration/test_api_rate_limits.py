"""Fair share over HTTP: a tenant over its rate is told to come back later; the others carry on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from crmflow.aggregates.application import CrmApplication
from crmflow.projections.db import Database
from crmflow.projections.projector import create_tables
from crmflow.workers.api.app import create_app
from crmflow.workers.api.tokens import issue_token
from crmflow.workers.config import Settings
from tests.conftest import Clock, Seconds
from tests.integration.api_harness import SECRET, Api, User
from tests.integration.console_client import signed_in


@pytest.fixture
def limited_api(tmp_path: Path, clock: Clock, seconds: Seconds) -> Iterator[Api]:
    """The API with a tight limit, as an operator would set it: 1 request per second, 3 at once."""
    app = CrmApplication(str(tmp_path / "events.db"), clock=clock)
    reports = Database(str(tmp_path / "reports.db"))
    create_tables(reports)
    settings = Settings(database_url=None, api_secret=SECRET, tenants=["acme", "globex"],
                        api_rate_per_s=1, api_burst=3)  # fmt: skip
    api = create_app(settings, app=app, reports_db=reports)
    api.state.rate_limit.clock = seconds
    yield Api(TestClient(api), app, reports)
    reports.close()
    app.close()


def refused_so_far(tenant: str) -> float:
    return REGISTRY.get_sample_value("crmflow_rate_limited_total", {"entry": "api", "tenant": tenant}) or 0.0


def create_lead(user: User, n: int) -> int:
    return user.command("lead.create", name=f"Lead {n}").status_code


def test_a_tenant_over_its_rate_gets_429_with_retry_after_and_another_tenant_is_not_held_back(
    limited_api: Api, seconds: Seconds
) -> None:
    acme = limited_api.user("acme", "sales", "ada")
    globex = limited_api.user("globex", "sales", "hank")
    refused_before = refused_so_far("acme"), refused_so_far("globex")

    # Acme's burst of 3 passes at once; the 4th request (a read counts as much as a command) is refused.
    assert [create_lead(acme, n) for n in range(3)] == [201, 201, 201]
    response = acme.get("/v1/reports/pipeline")

    assert response.status_code == 429
    # One token a second, none left: the next one is 1 s away, and Retry-After says so in whole seconds.
    assert response.headers["Retry-After"] == "1"
    body = response.json()
    assert body["error"] == "rate_limited"
    assert body["message"] == (
        "tenant acme is over its api_requests limit of 1 per second (burst 3): retry after 1 s"
    )
    assert body["details"] == {"limit": "api_requests", "tenant": "acme", "rate_per_s": 1.0, "burst": 3,
                               "retry_after_s": 1.0}  # fmt: skip
    assert limited_api.stored() == 3, "nothing of a refused request is stored"

    # Globex has a bucket of its own: its 3 pass while acme waits.
    assert [create_lead(globex, n) for n in range(3)] == [201, 201, 201]
    assert acme.command("lead.create", name="Too soon").status_code == 429

    # A second later acme has one token again: one more passes, the next is refused.
    seconds.now += 1
    assert [create_lead(acme, 4), create_lead(acme, 5)] == [201, 429]
    assert limited_api.stored() == 3 + 3 + 1
    # Three refusals of acme were counted, none of globex.
    assert (refused_so_far("acme"), refused_so_far("globex")) == (refused_before[0] + 3, refused_before[1])


def test_health_metrics_and_the_openapi_pages_are_never_limited(limited_api: Api) -> None:
    acme = limited_api.user("acme", "sales", "ada")
    assert [acme.get("/v1/reports/pipeline").status_code for _ in range(4)] == [200, 200, 200, 429]

    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"):
        statuses = {limited_api.client.get(path, headers=acme.headers).status_code for _ in range(10)}
        assert statuses == {200}, f"{path} answered {statuses}"
    assert 'crmflow_rate_limited_total{entry="api",tenant="acme"}' in limited_api.client.get("/metrics").text


def test_a_request_without_a_valid_token_is_refused_as_unauthorized_before_any_rate_is_charged(
    limited_api: Api,
) -> None:
    acme = limited_api.user("acme", "sales", "ada")
    for _ in range(5):
        response = limited_api.client.get(
            "/v1/reports/pipeline", headers={"Authorization": "Bearer nonsense"}
        )
        assert response.status_code == 401
    # The bad tokens spent nothing: acme still has its whole burst of 3.
    assert [create_lead(acme, n) for n in range(4)] == [201, 201, 201, 429]


def test_the_openapi_document_shows_429_with_retry_after_on_the_v1_routes_only(limited_api: Api) -> None:
    paths = limited_api.client.get("/openapi.json").json()["paths"]

    command = paths["/v1/commands/lead.create"]["post"]["responses"]
    assert "Retry-After" in command["429"]["headers"]
    assert all("429" in op["responses"] for path, ops in paths.items() if path.startswith("/v1/")
               for op in ops.values())  # fmt: skip
    assert "429" not in paths["/healthz"]["get"]["responses"]


def test_the_consoles_pages_take_from_the_same_bucket_as_the_api(limited_api: Api, seconds: Seconds) -> None:
    console = TestClient(limited_api.client.app)
    # Signing in lands on /console, and signed_in opens it again for its CSRF token: 2 of the burst of 3.
    signed_in(console, issue_token(SECRET, tenant="acme", role="analyst", subject="olga"))
    assert limited_api.user("acme", "analyst").get("/v1/reports/pipeline").status_code == 200  # 3
    page = console.get("/console/reports/pipeline")
    assert page.status_code == 429 and page.headers["Retry-After"] == "1"
    assert "tenant acme is over its api_requests limit" in page.text
    assert limited_api.user("globex", "analyst").get("/v1/reports/pipeline").status_code == 200
    seconds.advance(1)  # one token back
    assert console.get("/console/reports/pipeline").status_code == 200
