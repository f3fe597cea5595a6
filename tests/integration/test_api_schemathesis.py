"""Schemathesis, a tool nobody here wrote, reads /openapi.json and tries every operation with a valid token.

Its engine runs as ``schemathesis run`` does (its phases, its default checks), over ASGI with no network:
no 5xx, every status, content type, header and body as documented, data the document allows accepted,
data it forbids refused, 405 with every allowed method, auth not ignored. A few examples per operation keep
it to well under a minute; ``-m slow`` tries many more, and adds the coverage phase. (Its pytest plugin's
lazy fixtures do not run on pytest 9, so the engine is driven directly and every failed check is listed.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from schemathesis.engine import Status, events

from crmflow.workers.rate_limits import Rate, TenantBuckets
from tests.integration.api_harness import Api

# The repository's schemathesis.toml, which `schemathesis run` reads too: its few tunings, with reasons.
CONFIG = Path(__file__).resolve().parents[2] / "schemathesis.toml"


def failed_checks(api: Api, examples: int, *, deterministic: bool = True, phases: list[str] | None = None) -> list[str]:
    """Every check schemathesis failed, one line each: the operation, the check and what it saw."""
    # Thousands of requests in seconds: a tenant's rate limit would answer most of them 429 and test nothing.
    api.client.app.state.rate_limit = TenantBuckets(Rate(per_s=1e9, burst=10**9))
    config = schemathesis.config.SchemathesisConfig.from_path(CONFIG)
    schema = schemathesis.openapi.from_asgi("/openapi.json", api.client.app, config=config)
    # The token is ours, not generated: a generated one only ever meets the 401 that is checked elsewhere.
    schema.config.update(headers=api.user("acme", "admin").headers)
    schema.config.generation.update(
        max_examples=examples, with_security_parameters=False, deterministic=deterministic
    )
    if phases is not None:
        schema.config.phases.update(phases=phases)
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
                ]
    return sorted(set(failures))


SHOWN = 2000  # bytes of a request or answer body in a failure line


def _exchange(interaction: Any) -> str:
    """The request body sent and the answer, enough to see why."""
    if interaction is None or interaction.response is None:
        return "(no answer)"
    request, response = interaction.request, interaction.response
    sent = (request.body or b"")[:SHOWN] if isinstance(request.body, bytes) else str(request.body)[:SHOWN]
    return f"sent {sent!r}, answered {response.status_code} {response.content[:SHOWN]!r}"


def test_every_operation_answers_as_its_openapi_document_says_to_a_tool_nobody_here_wrote(api: Api) -> None:
    # The coverage phase (every boundary and every invalid value of every field, thousands of requests) takes
    # over a minute on its own: it runs in the slow story below.
    assert failed_checks(api, examples=3, phases=["examples", "fuzzing"]) == []


@pytest.mark.slow
def test_many_more_generated_requests_and_every_boundary_of_every_field_find_nothing_either(api: Api) -> None:
    assert failed_checks(api, examples=50, deterministic=False) == []  # every phase; new data each run


