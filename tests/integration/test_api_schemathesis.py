"""Schemathesis, a tool nobody here wrote, reads /openapi.json and tries every operation with a valid token.

Its engine runs as ``schemathesis run`` does (its phases, its default checks), over ASGI with no network:
no 5xx, every status, content type, header and body as documented, data the document allows accepted,
data it forbids refused, 405 with every allowed method, auth not ignored. A few examples per operation keep
it to well under a minute; ``-m slow`` tries many more. (Its pytest plugin's lazy fixtures do not run on
pytest 9, so the engine is driven directly and every failed check is listed.)
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import schemathesis
from schemathesis.engine import Status, events

from crmflow.workers.rate_limits import Rate, TenantBuckets
from tests.integration.api_harness import Api

# Refusals of data no JSON Schema can tell from valid data, by error code: the one tuning of the checks.
# Positive data is "accepted" unless refused with one of these; any other refusal of schema-valid data fails.
REFUSED_BY_WHAT_IS_STORED = {
    # A definition that names a command, event or process that does not exist, or a CEL expression that
    # does not compile: the documents' JSON Schema cannot know which names exist.
    ("invalid_definitions", None),
    # An account keeps its books in one currency: which one is stored state, not schema.
    ("invalid_value", "currency"),
}


# A body over the size limit is refused with 413 before it is read (docs/http-api.md); schemathesis's
# negative_data_rejection does not count 413 among the refusals, and its coverage phase sends such bodies.
CONFIG = """
[checks.negative_data_rejection]
expected-statuses = [
    "400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5xx",
]
"""


def failed_checks(api: Api, examples: int, *, deterministic: bool = True) -> list[str]:
    """Every check schemathesis failed, one line each: the operation, the check and what it saw."""
    # Thousands of requests in seconds: a tenant's rate limit would answer most of them 429 and test nothing.
    api.client.app.state.rate_limit = TenantBuckets(Rate(per_s=1e9, burst=10**9))
    config = schemathesis.config.SchemathesisConfig.from_str(CONFIG)
    schema = schemathesis.openapi.from_asgi("/openapi.json", api.client.app, config=config)
    # The token is ours, not generated: a generated one only ever meets the 401 that is checked elsewhere.
    schema.config.update(headers=api.user("acme", "admin").headers)
    schema.config.generation.update(
        max_examples=examples, with_security_parameters=False, deterministic=deterministic
    )
    failures: list[str] = []
    for event in schemathesis.engine.from_schema(schema).execute():
        if isinstance(event, events.FatalError):
            raise event.exception
        if isinstance(event, events.NonFatalError):
            failures.append(f"{event.label}: error {event.info.title}: {event.info.message}")
        if isinstance(event, events.ScenarioFinished) and event.status == Status.FAILURE:
            recorder = event.recorder
            for case_id, checks in recorder.checks.items():
                failures += [
                    f"{recorder.label} {check.name}: {check.failure_info.failure.title}; "
                    f"{_exchange(recorder.interactions.get(case_id))}"
                    for check in checks
                    if check.status == Status.FAILURE and check.failure_info is not None
                    and not _refused_by_what_is_stored(check.name, recorder.interactions.get(case_id))
                ]
    return sorted(set(failures))


def _refused_by_what_is_stored(check: str, interaction: Any) -> bool:
    if check != "positive_data_acceptance" or interaction is None or interaction.response is None:
        return False
    if interaction.response.status_code != 422:
        return False
    answer = json.loads(interaction.response.content)
    return (answer["error"], answer["details"].get("field")) in REFUSED_BY_WHAT_IS_STORED


SHOWN = 2000  # bytes of a request or answer body in a failure line


def _exchange(interaction: Any) -> str:
    """The request body sent and the answer, enough to see why."""
    if interaction is None or interaction.response is None:
        return "(no answer)"
    request, response = interaction.request, interaction.response
    sent = (request.body or b"")[:SHOWN] if isinstance(request.body, bytes) else str(request.body)[:SHOWN]
    return f"sent {sent!r}, answered {response.status_code} {response.content[:SHOWN]!r}"


def test_every_operation_answers_as_its_openapi_document_says_to_a_tool_nobody_here_wrote(api: Api) -> None:
    assert failed_checks(api, examples=3) == []


@pytest.mark.slow
def test_many_more_generated_requests_find_nothing_either(api: Api) -> None:
    assert failed_checks(api, examples=50, deterministic=False) == []  # new data each run


