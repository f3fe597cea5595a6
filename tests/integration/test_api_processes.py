"""Admins validate and deploy process definitions over HTTP, each within its own scope."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from crmflow.processes.runtime import ProcessRuntime
from crmflow.workers.history import stored_history
from tests.conftest import Clock
from tests.integration.api_harness import Api, User

DEFINITIONS = Path(__file__).parents[2] / "processes" / "definitions"
WEB_LEAD = (DEFINITIONS / "web-lead-follow-up.yaml").read_text()  # tenant: "*"
CALENDARS = (DEFINITIONS / "calendars.yaml").read_text()
ACME_WEB_LEAD = WEB_LEAD.replace("name: web-lead-follow-up", "name: acme-web-lead").replace(
    'tenant: "*"', "tenant: acme"
)


@pytest.fixture
def acme_admin(api: Api) -> User:
    return api.user("acme", "admin", "root")


@pytest.fixture
def platform(api: Api) -> User:
    return api.user("*", "admin", "ops")


def test_a_broken_definition_is_refused_with_every_problem_on_its_line_and_field(acme_admin: User) -> None:
    broken = ACME_WEB_LEAD.replace("do: lead.assign", "do: lead.asign").replace(
        "on_timeout: escalate", "on_timeout: escalte"
    )

    for endpoint in ("/v1/processes/validate", "/v1/processes/definitions"):
        response = acme_admin.yaml(endpoint, broken)
        assert response.status_code == 422, (endpoint, response.text)
        body = response.json()
        assert body["error"] == "invalid_definitions"
        issues = body["details"]["issues"]
        assert issues[0]["line"] == 20 and issues[0]["field"] == "steps[1].do"
        assert "unknown command 'lead.asign'; did you mean lead.assign" in issues[0]["message"]
        assert (issues[1]["line"], issues[1]["field"]) == (27, "steps[2].on_timeout")
        assert body["message"] == f"{len(issues)} problem(s) in the definitions"

    assert acme_admin.get("/v1/processes/definitions").json() == {"definitions": []}, "nothing was deployed"


def test_yaml_that_does_not_parse_is_refused_with_its_line(acme_admin: User) -> None:
    response = acme_admin.yaml("/v1/processes/validate", "kind: Process\nname: [unclosed\n")
    assert response.status_code == 422
    (issue,) = response.json()["details"]["issues"]
    assert issue["line"] >= 2 and "not valid YAML" in issue["message"]


def test_a_valid_definition_validates_and_deploying_it_twice_changes_nothing(acme_admin: User) -> None:
    valid = acme_admin.yaml("/v1/processes/validate", ACME_WEB_LEAD, content_type="text/plain")
    assert (valid.status_code, valid.json()) == (200, {"valid": True, "documents": {"Process": 1}})

    first = acme_admin.yaml("/v1/processes/definitions", ACME_WEB_LEAD)
    again = acme_admin.yaml("/v1/processes/definitions", ACME_WEB_LEAD)

    assert first.status_code == again.status_code == 201
    assert first.json() == {
        "deployed_by": "admin:root",
        "outcomes": [
            {"kind": "Process", "name": "acme-web-lead", "scope": "acme", "version": 3, "result": "deployed"}
        ],
    }
    assert again.json()["outcomes"][0]["result"] == "unchanged"


def test_a_deployed_version_never_changes(acme_admin: User) -> None:
    acme_admin.yaml("/v1/processes/definitions", ACME_WEB_LEAD)
    edited = ACME_WEB_LEAD.replace("nobody contacts within two days", "nobody calls within two days")
    response = acme_admin.yaml("/v1/processes/definitions", edited)
    assert response.status_code == 409 and response.json()["error"] == "version_conflict"


def test_a_tenant_admin_deploys_only_its_own_tenants_definitions(
    api: Api, acme_admin: User, platform: User
) -> None:
    globex_scoped = ACME_WEB_LEAD.replace("tenant: acme", "tenant: globex")
    for text, says in (
        (WEB_LEAD, "need a platform token"),
        (CALENDARS, "need a platform token"),
        (globex_scoped, "deploys only definitions with tenant: acme"),
    ):
        refused = acme_admin.yaml("/v1/processes/definitions", text)
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"] == "wrong_tenant" and says in refused.json()["message"]

    # The platform token deploys platform-wide definitions, and only those.
    assert platform.yaml("/v1/processes/definitions", ACME_WEB_LEAD).status_code == 403
    deployed = platform.yaml("/v1/processes/definitions", WEB_LEAD + "---\n" + CALENDARS)
    assert deployed.status_code == 201, deployed.text
    assert {(o["name"], o["scope"], o["result"]) for o in deployed.json()["outcomes"]} == {
        ("web-lead-follow-up", "*", "deployed"),
        ("support-emea", "*", "deployed"),
        ("support-us", "*", "deployed"),
    }


def test_each_tenant_lists_its_own_definitions_and_the_platform_wide_ones(
    api: Api, acme_admin: User, platform: User
) -> None:
    platform.yaml("/v1/processes/definitions", WEB_LEAD)
    acme_admin.yaml("/v1/processes/definitions", ACME_WEB_LEAD)
    globex_admin = api.user("globex", "admin", "hank")

    acme_sees = {
        (d["name"], d["scope"], d["deployed_by"])
        for d in acme_admin.get("/v1/processes/definitions").json()["definitions"]
    }
    globex_sees = {
        (d["name"], d["scope"]) for d in globex_admin.get("/v1/processes/definitions").json()["definitions"]
    }

    assert acme_sees == {("web-lead-follow-up", "*", "admin:ops"), ("acme-web-lead", "acme", "admin:root")}
    assert globex_sees == {("web-lead-follow-up", "*")}, "another tenant's definitions are not listed"


def test_definitions_are_sent_as_yaml(acme_admin: User) -> None:
    response = acme_admin.post("/v1/processes/definitions", json={"kind": "Process"})
    assert response.status_code == 415 and response.json()["error"] == "unsupported_media_type"
    assert "application/yaml" in response.json()["message"]


def test_instances_of_a_deployed_process_are_reported_to_the_tenant_that_runs_them(
    api: Api, platform: User, clock: Clock
) -> None:
    platform.yaml("/v1/processes/definitions", WEB_LEAD + "---\n" + CALENDARS)
    # A web lead comes in; the process engine (here run in-line, as the process worker would) routes it.
    lead = api.user("acme", "sales").created("lead.create", name="Ada", source="web")
    ProcessRuntime(api.app, clock).handle([e for e in stored_history(api.app) if e["subject"] == lead])
    api.project()

    acme = api.user("acme", "analyst", "grace").get("/v1/processes/instances").json()
    globex = api.user("globex", "analyst", "lin").get("/v1/processes/instances").json()

    assert [
        (r["definition"], r["version"], r["status"], r["step"], r["instances"]) for r in acme["rows"]
    ] == [("web-lead-follow-up", 3, "waiting", "wait-contact", 1)]
    assert globex["rows"] == []
    # The lead's history names the process step that assigned it.
    history = api.user("acme", "admin").get(f"/v1/aggregates/{lead}").json()["history"]
    assert history[-1]["why"].startswith(f"process web-lead-follow-up v3 step assign ran lead.assign, on LeadCreated of {lead}")
    cause = history[-1]["caused_by"]
    assert (cause["kind"], cause["process"], cause["step"], cause["trigger"]["type"]) == (
        "process", "web-lead-follow-up", "assign", "LeadCreated")  # fmt: skip
    assert cause["chosen"]["owner"].startswith("round_robin in step pick-owner")


def test_the_definition_shown_in_the_openapi_document_is_valid(api: Api, acme_admin: User) -> None:
    spec = api.client.get("/openapi.json").json()
    content = spec["paths"]["/v1/processes/definitions"]["post"]["requestBody"]["content"]
    # As text, and as the value a client's YAML serializer writes out.
    for text in (content["text/plain"]["example"], yaml.safe_dump(content["application/yaml"]["example"])):
        response = acme_admin.yaml("/v1/processes/validate", text)
        assert response.status_code == 200, response.text


def test_a_definition_reading_a_field_its_event_lacks_is_refused_over_http_too(acme_admin: User) -> None:
    reads_owner = ACME_WEB_LEAD.replace("on: [LeadCreated]", "on: [OpportunityStageChanged]").replace(
        'when: event.data.source in ["web", "webinar"]', "when: double(event.data.amount) > 1000.0 && event.data.source == 'web'"
    )
    response = acme_admin.yaml("/v1/processes/validate", reads_owner)
    assert response.status_code == 422, response.text
    (issue,) = response.json()["details"]["issues"]
    assert (issue["field"], issue["message"]) == (
        "trigger.when",
        "OpportunityStageChanged has no field 'source' (it has stage, previous_stage, probability, amount, currency)",
    )


def test_a_row_of_the_instances_report_opens_into_its_instances_one_by_one_with_their_story(
    api: Api, platform: User, clock: Clock
) -> None:
    platform.yaml("/v1/processes/definitions", WEB_LEAD + "---\n" + CALENDARS)
    sales = api.user("acme", "sales")
    leads = [sales.created("lead.create", name=name, source="web") for name in ("Ada", "Grace")]
    ProcessRuntime(api.app, clock).handle([e for e in stored_history(api.app) if e["subject"] in leads])
    api.project()
    analyst = api.user("acme", "analyst", "grace")

    waiting = analyst.get("/v1/processes/instances/each", definition="web-lead-follow-up", status="waiting").json()
    # The report's one row (2 instances waiting at wait-contact) is these two, each following its lead.
    assert sorted(r["key"] for r in waiting["rows"]) == sorted(leads)
    assert {(r["version"], r["step"], r["stuck"], r["error"]) for r in waiting["rows"]} == {(3, "wait-contact", 0, None)}
    story = api.user("acme", "admin").get(f"/v1/aggregates/{waiting['rows'][0]['instance_id']}").json()
    assert story["history"][0]["type"] == "ProcessInstanceStarted"

    assert analyst.get("/v1/processes/instances/each", status="failed").json()["rows"] == []
    assert api.user("globex", "analyst").get("/v1/processes/instances/each").json()["rows"] == [], "acme's only"
    refused = api.user("acme", "sales").get("/v1/processes/instances/each")
    assert refused.status_code == 403
    assert analyst.get("/v1/processes/instances/each", status="lost").status_code == 422
