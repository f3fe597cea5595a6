"""Each role does its own job over HTTP, and nothing else; a bad token does nothing at all."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import jwt
import pytest

from crmflow.workers.api.tokens import issue_token
from tests.integration.api_harness import SECRET, Api, User

# The role table as the README states it, written out again here on purpose.
AREAS_OF = {
    "marketing": {"lead", "campaign"},
    "sales": {"lead", "opportunity", "account", "contact", "activity"},
    "service": {"case", "article", "activity"},
    "analyst": set(),
    "admin": {"lead", "campaign", "opportunity", "account", "contact", "case", "article", "activity"},
}
EVERY_REPORT = {
    "pipeline",
    "forecast",
    "win-rate",
    "funnel",
    "campaigns",
    "sla",
    "faq",
    "accounts",
    "instances",
    "activities",
    # The customer view.
    "profile",
    "profitability",
    "segments",
    "cross-sell",
}
REPORTS_OF = {
    "marketing": {"funnel", "campaigns"},
    "sales": {"pipeline", "forecast", "win-rate", "funnel", "accounts", "activities", "profile", "profitability"},
    "service": {"sla", "faq", "activities"},
    "analyst": EVERY_REPORT,
    "admin": EVERY_REPORT,
}
ROLES = list(AREAS_OF)
AREAS = sorted(AREAS_OF["admin"])


def representative_command(area: str, account_id: str) -> tuple[str, dict[str, Any]]:
    """One command per area, with a payload the domain accepts."""
    return {
        "lead": ("lead.create", {"name": "Ada Lovelace", "source": "web"}),
        "campaign": (
            "campaign.create",
            {"name": "Spring webinar", "channel": "webinar", "budget": "1500.00"},
        ),
        "opportunity": (
            "opportunity.create",
            {"account_id": account_id, "name": "Pilot", "amount": "9000", "close_date": "2027-03-31"},
        ),
        "account": ("account.create", {"name": "Analytical Engines"}),
        "contact": ("contact.create", {"account_id": account_id, "name": "Charles Babbage"}),
        "case": ("case.open", {"subject": "Cannot log in", "priority": "high"}),
        "article": (
            "article.create",
            {"title": "Reset a password", "body": "Use the link.", "category": "login"},
        ),
        "activity": (
            "activity.schedule",
            {"kind": "call", "related_kind": "account", "related_id": account_id, "owner": "ada",
             "subject": "Check in", "due_at": "2027-03-01T09:00:00+00:00"},
        ),
    }[area]


@pytest.fixture
def admin(api: Api) -> User:
    return api.user("acme", "admin", "root")


@pytest.mark.parametrize("area", AREAS)
@pytest.mark.parametrize("role", ROLES)
def test_a_role_runs_the_commands_of_its_own_areas_and_no_others(
    api: Api, admin: User, role: str, area: str
) -> None:
    # An account exists already (an opportunity or a contact needs one): the admin made it.
    account = admin.created("account.create", name="Globex Supplies")
    name, payload = representative_command(area, account)
    before = api.stored()

    response = api.user("acme", role).command(name, **payload)

    if area in AREAS_OF[role]:
        assert response.status_code == 201, response.text
        assert response.json()["events"][0]["data"]["tenant_id"] == "acme"
        assert api.stored() > before
    else:
        assert response.status_code == 403, response.text
        assert response.json()["error"] == "forbidden"
        assert f"role {role} may not run {name}" in response.json()["message"]
        assert api.stored() == before, "a refused command stores nothing"


@pytest.mark.parametrize("role", ROLES)
def test_a_role_reads_only_its_own_reports(api: Api, role: str) -> None:
    user = api.user("acme", role)
    for report in sorted(EVERY_REPORT):
        response = user.get(f"/v1/reports/{report}")
        if report in REPORTS_OF[role]:
            assert response.status_code == 200, (report, response.text)
            assert response.json()["report"] == report and response.json()["tenant"] == "acme"
        else:
            assert response.status_code == 403, (report, response.text)
            assert response.json()["error"] == "forbidden"


@pytest.mark.parametrize("role", ROLES)
def test_a_role_reads_the_records_of_its_own_areas(api: Api, admin: User, role: str) -> None:
    account = admin.created("account.create", name="Globex Supplies")
    commands = {area: representative_command(area, account) for area in AREAS}
    records = {area: admin.created(name, **payload) for area, (name, payload) in commands.items()}
    user = api.user("acme", role)
    for area, record in records.items():
        response = user.get(f"/v1/aggregates/{record}")
        if area in AREAS_OF[role]:
            assert response.status_code == 200, (area, response.text)
            assert response.json()["kind"] == area
        else:
            assert response.status_code == 403, (area, response.text)


def test_an_analyst_reads_every_report_and_instances_but_cannot_command_or_send_events(api: Api) -> None:
    analyst = api.user("acme", "analyst", "grace")
    assert analyst.command("lead.create", name="Ada").status_code == 403
    assert analyst.post("/v1/events", json=_inbound("acme")).status_code == 403
    assert analyst.get("/v1/processes/instances").status_code == 200
    assert analyst.get("/v1/processes/definitions").status_code == 403
    assert api.stored() == 0, "nothing the analyst tried was stored"


@pytest.mark.parametrize("role", ROLES)
def test_every_role_but_the_analyst_sends_events_from_other_services(api: Api, role: str) -> None:
    response = api.user("acme", role).post("/v1/events", json=_inbound("acme", event_id=f"paid-{role}"))
    assert response.status_code == (403 if role == "analyst" else 202), response.text


@pytest.mark.parametrize("role", ROLES)
def test_only_an_admin_handles_definitions_and_only_admins_and_analysts_see_instances(
    api: Api, role: str
) -> None:
    user = api.user("acme", role)
    definitions = user.get("/v1/processes/definitions").status_code
    validated = user.yaml("/v1/processes/validate", "kind: Process\n").status_code
    deployed = user.yaml("/v1/processes/definitions", "kind: Process\n").status_code
    instances = user.get("/v1/processes/instances").status_code
    if role == "admin":
        assert (definitions, validated, deployed) == (200, 422, 422)  # allowed; the YAML itself is incomplete
    else:
        assert (definitions, validated, deployed) == (403, 403, 403)
    assert instances == (200 if role in ("admin", "analyst") else 403)


def test_a_platform_token_has_no_tenant_so_it_runs_no_commands_and_reads_no_data(api: Api) -> None:
    platform = api.user("*", "admin", "ops")
    refused = platform.command("lead.create", name="Ada")
    assert refused.status_code == 403 and refused.json()["error"] == "no_tenant"
    assert platform.get("/v1/reports/pipeline").status_code == 403
    assert platform.get("/v1/processes/instances").status_code == 403
    assert api.stored() == 0


def test_missing_garbled_expired_and_foreign_tokens_are_refused_with_401(api: Api) -> None:
    now = datetime.now(timezone.utc)
    expired = issue_token(
        SECRET,
        tenant="acme",
        role="admin",
        subject="ada",
        now=now - timedelta(days=2),
        expires_in=timedelta(days=1),
    )
    foreign = issue_token(
        "another-secret-that-is-long-enough-too", tenant="acme", role="admin", subject="ada"
    )
    unknown_role = jwt.encode(
        {"sub": "ada", "tenant": "acme", "role": "root", "iat": int(now.timestamp())}, SECRET
    )
    no_tenant = jwt.encode({"sub": "ada", "role": "admin", "iat": int(now.timestamp())}, SECRET)
    cases = {
        "no header": ({}, "needs a bearer token"),
        "not bearer": ({"Authorization": "Basic YWRhOnNlY3JldA=="}, "must be 'Bearer <token>'"),
        "garbled": ({"Authorization": "Bearer not-a-jwt"}, "not a well-formed JWT"),
        "expired": ({"Authorization": f"Bearer {expired}"}, "has expired"),
        "wrong secret": ({"Authorization": f"Bearer {foreign}"}, "signature does not match"),
        "unknown role": ({"Authorization": f"Bearer {unknown_role}"}, "role 'root' is not a role"),
        "no tenant claim": ({"Authorization": f"Bearer {no_tenant}"}, "lacks the 'tenant' claim"),
    }
    for case, (headers, says) in cases.items():
        response = api.client.post("/v1/commands/lead.create", json={"name": "Ada"}, headers=headers)
        assert response.status_code == 401, case
        assert response.json()["error"] == "unauthorized", case
        assert says in response.json()["message"], (case, response.json())
        assert response.headers["WWW-Authenticate"].startswith("Bearer"), case
    assert api.stored() == 0


def test_health_and_metrics_need_no_token_and_the_openapi_names_the_bearer_scheme(api: Api) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok"}
    assert api.client.get("/readyz").json()["checks"] == {"event_store": "ok", "reports_database": "ok"}
    assert "crmflow_http_requests_total" in api.client.get("/metrics").text
    spec = api.client.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": spec["components"]["securitySchemes"]["bearer"]["description"],
    }
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            assert operation.get("summary"), f"{method} {path} has no summary"
            success = next(v for k, v in operation["responses"].items() if k.startswith("2"))
            assert any("example" in c or "examples" in c for c in success.get("content", {}).values()), (
                f"{method} {path} has no example"
            )
            if path.startswith("/v1/"):
                assert operation["security"] == [{"bearer": []}], (
                    f"{method} {path} is not behind the bearer scheme"
                )


def _inbound(tenant: str, event_id: str = "inv-42-paid") -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": "billing",
        "type": "InvoicePaid",
        "tenantid": tenant,
        "time": "2026-03-02T10:00:00+00:00",
        "data": {"invoice_id": "inv-42", "amount": "4800.00"},
    }


def test_readiness_names_the_dependency_that_does_not_answer(api: Api) -> None:
    api.reports.close()  # the reports database goes away

    response = api.client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["error"] == "not_ready" and body["message"].startswith("reports_database does not answer")
    assert body["details"]["checks"]["event_store"] == "ok"
    assert api.client.get("/healthz").status_code == 200, "alive, though not ready"
