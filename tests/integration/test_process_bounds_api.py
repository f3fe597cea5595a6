"""Hostile definitions sent to the HTTP API get a 4xx naming the limit, and the server goes on serving."""

from __future__ import annotations

import pytest

from crmflow.aggregates.limits import MAX_DEFINITION_BYTES
from tests.integration.api_harness import Api, User

HEAD = ("apiVersion: crmflow/v1\nkind: Process\nname: hostile\nversion: 1\ntenant: acme\n"
        "trigger: {on: [LeadCreated]}\nsteps:\n")  # fmt: skip
SUM_240_KB = " + ".join(["1"] * 60_000)  # 239,997 characters: the expression that crashed the runtime


@pytest.fixture
def acme_admin(api: Api) -> User:
    return api.user("acme", "admin", "root")


def issues(response: object) -> list[str]:
    return [issue["message"] for issue in response.json()["details"]["issues"]]  # type: ignore[attr-defined]


def test_the_240_kb_expression_is_a_422_naming_the_length_limit_and_the_server_lives_on(
    acme_admin: User,
) -> None:
    text = HEAD + f"  - id: boom\n    set: {{x: '{SUM_240_KB}'}}\n"
    for endpoint in ("/v1/processes/validate", "/v1/processes/definitions"):
        response = acme_admin.yaml(endpoint, text)
        assert response.status_code == 422, response.text
        (message,) = issues(response)
        assert message.endswith(
            "the expression has 239,997 characters; the limit is expression_chars (4,096 characters)"
        )
    assert acme_admin.get("/v1/processes/definitions").json() == {"definitions": []}


def test_a_body_over_the_size_limit_is_a_413_read_no_further_than_the_limit(acme_admin: User) -> None:
    response = acme_admin.yaml("/v1/processes/validate", HEAD + "#" * (MAX_DEFINITION_BYTES + 1))
    assert response.status_code == 413
    # Every body meets the API's own limit first; a definition's (definition_bytes) is as large.
    size = len(HEAD) + MAX_DEFINITION_BYTES + 1
    assert response.json()["message"] == (f"the request body is {size:,} bytes; "
                                          "the limit is message_bytes (262,144 bytes)")  # fmt: skip


def test_yaml_nested_four_thousand_deep_is_a_422_not_a_500(acme_admin: User) -> None:
    response = acme_admin.yaml("/v1/processes/validate", HEAD + "  - " + "[" * 4000 + "]" * 4000 + "\n")
    assert response.status_code == 422
    assert issues(response) == [
        (
            "refused before parsing: mappings and lists are nested 33 deep here; "
            "the limit is yaml_depth (32 levels)"
        )
    ]


def test_a_definition_that_would_ring_with_a_deployed_one_is_refused_at_deploy(acme_admin: User) -> None:
    ping = HEAD.replace("hostile", "ping").replace("LeadCreated", "Pong") + "  - {id: ping, emit: Ping}\n"
    pong = HEAD.replace("hostile", "pong").replace("LeadCreated", "Ping") + "  - {id: pong, emit: Pong}\n"
    assert acme_admin.yaml("/v1/processes/definitions", ping).status_code == 201

    response = acme_admin.yaml("/v1/processes/definitions", pong)

    assert response.status_code == 422
    (message,) = issues(response)
    assert message.startswith("triggers in a ring with ping (ping emits Ping; pong emits Pong")


def test_a_platform_definition_that_would_ring_with_a_tenants_own_is_refused(
    api: Api, acme_admin: User
) -> None:
    ping = HEAD.replace("hostile", "ping").replace("LeadCreated", "Pong") + "  - {id: ping, emit: Ping}\n"
    assert acme_admin.yaml("/v1/processes/definitions", ping).status_code == 201
    everyone = (
        HEAD.replace("hostile", "pong").replace("LeadCreated", "Ping").replace("tenant: acme", 'tenant: "*"')
    )

    response = api.user("*", "admin", "ops").yaml(
        "/v1/processes/definitions", everyone + "  - {id: pong, emit: Pong}\n"
    )

    assert response.status_code == 422
    (message,) = issues(response)
    assert message.startswith("triggers in a ring with ping (ping emits Ping; pong emits Pong")
