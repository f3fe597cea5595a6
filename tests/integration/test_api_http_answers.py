"""The answers HTTP itself has rules for: 405 with Allow, 422 for a body that cannot be read, metrics whose
labels no caller can multiply, and an OpenAPI document a validator nobody here wrote accepts."""

from __future__ import annotations

from typing import Any

import pytest
from openapi_spec_validator import validate
from prometheus_client import REGISTRY

from crmflow.aggregates.commanding import COMMANDS
from crmflow.projections.reports import REPORTS
from tests.integration.api_harness import Api, User


@pytest.fixture
def admin(api: Api) -> User:
    return api.user("acme", "admin")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/v1/processes/definitions", "GET, POST"),  # two routes share the path: both are named
        ("DELETE", "/v1/events", "POST"),
        ("POST", "/v1/reports/pipeline", "GET"),
        ("GET", "/v1/commands/lead.create", "POST"),
        ("GET", "/v1/commands/no.such-command", "POST"),  # not in the document: the route's own methods
    ],
)
def test_a_method_the_path_does_not_take_is_405_and_allow_names_every_method_it_does(
    api: Api, admin: User, method: str, path: str, allowed: str
) -> None:
    response = api.client.request(method, path, headers=admin.headers)
    assert response.status_code == 405, response.text
    assert response.headers["allow"] == allowed
    body = response.json()
    assert (body["error"], body["details"]["allowed"]) == ("method_not_allowed", allowed.split(", "))


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b'{"name": "Ada \xff"}'),  # bytes that are not UTF-8
        ("application/json", b'{"name": '),  # JSON cut short
        ("application/json; charset=utf-8", b"\x00\x00\x00{"),  # what json.loads would read as UTF-32
        ("text/plain", b'{"name": "Ada"}'),  # JSON, but not sent as JSON
        (None, b'{"name": "Ada"}'),  # no content type at all
        ("application/json", b'["Ada"]'),  # JSON, not an object
    ],
    ids=["not_utf8", "cut_short", "utf32_lookalike", "text_plain", "no_content_type", "an_array"],
)
def test_a_command_body_that_cannot_be_read_as_a_json_object_is_422_invalid_request_never_a_bare_400(
    api: Api, admin: User, content_type: str | None, body: bytes
) -> None:
    headers = dict(admin.headers)
    if content_type:
        headers["Content-Type"] = content_type
    response = api.client.post("/v1/commands/lead.create", content=body, headers=headers)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "invalid_request"
    assert api.stored() == 0


def requests_counted(**labels: str) -> float:
    return REGISTRY.get_sample_value("crmflow_http_requests_total", labels) or 0.0


def test_any_method_string_and_any_path_count_under_a_few_label_values_not_one_series_each(
    api: Api, admin: User
) -> None:
    before = requests_counted(method="other", route="/v1/events", status="405")
    for method in ("BREW", "PROPFIND", "X-" + "A" * 200):
        assert api.client.request(method, "/v1/events", headers=admin.headers).status_code == 405
    assert requests_counted(method="other", route="/v1/events", status="405") == before + 3
    for method in ("BREW", "PROPFIND"):
        assert requests_counted(method=method, route="/v1/events", status="405") == 0.0

    unmatched = requests_counted(method="GET", route="(unmatched)", status="404")
    for n in range(3):
        assert api.client.get(f"/v1/no-such-thing/{n}", headers=admin.headers).status_code == 404
    assert requests_counted(method="GET", route="(unmatched)", status="404") == unmatched + 3
    assert requests_counted(method="GET", route="/v1/no-such-thing/0", status="404") == 0.0

    routed = requests_counted(method="GET", route="/v1/reports/{name}", status="200")
    assert admin.get("/v1/reports/pipeline").status_code == 200
    assert requests_counted(method="GET", route="/v1/reports/{name}", status="200") == routed + 1


def document(api: Api) -> dict[str, Any]:
    return dict(api.client.get("/openapi.json").json())


def test_the_openapi_document_passes_a_validator_nobody_here_wrote(api: Api) -> None:
    spec = document(api)
    validate(spec)  # raises, naming the first problem
    assert spec["openapi"].startswith("3.1")


def test_every_command_is_an_operation_of_its_own_with_its_payload_schema(api: Api) -> None:
    spec = document(api)
    schemas = spec["components"]["schemas"]
    for name, command in COMMANDS.items():
        operation = spec["paths"][f"/v1/commands/{name}"]["post"]
        ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        schema = schemas[ref.rsplit("/", 1)[1]]
        assert set(schema["properties"]) == set(command.payload.model_fields), name
        assert schema["additionalProperties"] is False
    assert "/v1/commands/{name}" not in spec["paths"]
    money = schemas["RecordCampaignCost"]["properties"]["amount"]["anyOf"]
    assert {"type": "string", "pattern": r"^\+?([0-9]{1,16}(\.[0-9]{0,2})?|\.[0-9]{1,2})$"} in money


def test_the_event_body_is_a_cloudevent_with_its_required_attributes_and_no_data_base64(api: Api) -> None:
    spec = document(api)
    body = spec["paths"]["/v1/events"]["post"]["requestBody"]["content"]
    assert set(body) == {"application/cloudevents+json", "application/json"}
    event = spec["components"]["schemas"]["CloudEvent"]
    assert event["required"] == ["specversion", "id", "source", "type", "tenantid"]
    assert {"subject", "time", "datacontenttype", "dataschema", "data"} <= set(event["properties"])
    assert event["properties"]["data_base64"] is False
    assert "LeadCreated" in event["properties"]["type"]["not"]["enum"]


def test_reports_name_their_names_and_since_until_their_formats_and_yaml_its_media_type(api: Api) -> None:
    spec = document(api)
    parameters = {p["name"]: p["schema"] for p in spec["paths"]["/v1/reports/{name}"]["get"]["parameters"]}
    assert parameters["name"]["enum"] == list(REPORTS)
    for moment in ("since", "until"):
        assert parameters[moment]["anyOf"] == [{"format": "date"}, {"format": "date-time"}]
    for path in ("/v1/processes/validate", "/v1/processes/definitions"):
        content = spec["paths"][path]["post"]["requestBody"]["content"]
        # The documents' schema (not "a string"), told apart by their kind.
        assert content["application/yaml"]["schema"]["discriminator"]["propertyName"] == "kind"
        assert content["text/plain"]["schema"]["contentMediaType"] == "application/yaml"


def test_no_422_is_documented_with_a_body_the_server_never_sends(api: Api) -> None:
    spec = document(api)
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for media in operation["responses"].get("422", {}).get("content", {}).values():
                assert media["schema"] == {"$ref": "#/components/schemas/ErrorBody"}, f"{method} {path}"
