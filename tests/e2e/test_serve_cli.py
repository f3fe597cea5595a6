"""An operator starts `crmflow serve`, issues a token, and a client uses the API; SIGTERM stops it cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.serving import free_port, serving

SECRET = "e2e-secret-that-is-long-enough-for-hs256"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "CRMFLOW_DATABASE_URL": str(tmp_path / "crm.db"),
        "CRMFLOW_API_SECRET": SECRET,
        "CRMFLOW_TENANTS": "acme",
    }


def crmflow(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crmflow", *args],
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def server(env: dict[str, str], tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    with serving(env, tmp_path / "serve.log") as running:
        yield running


def test_a_client_runs_a_command_with_an_issued_token_and_the_server_stops_on_sigterm(
    env: dict[str, str], server: tuple[subprocess.Popen[str], str], tmp_path: Path
) -> None:
    process, base = server
    issued = crmflow(
        env,
        "token",
        "issue",
        "--tenant",
        "acme",
        "--role",
        "sales",
        "--subject",
        "ada",
        "--expires-in-days",
        "1",
    )
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip()

    status, headers, body = _request(
        f"{base}/v1/commands/lead.create",
        token,
        {"name": "Ada", "source": "web"},
        {"Idempotency-Key": "e2e-1", "X-Correlation-Id": "e2e-story"},
    )
    assert status == 201, body
    assert body["events"][0]["type"] == "LeadCreated" and body["events"][0]["correlationid"] == "e2e-story"
    status, headers, again = _request(
        f"{base}/v1/commands/lead.create",
        token,
        {"name": "Ada", "source": "web"},
        {"Idempotency-Key": "e2e-1"},
    )
    assert (status, headers["Idempotent-Replayed"], again["aggregate_id"]) == (
        200,
        "true",
        body["aggregate_id"],
    )

    status, _, record = _request(f"{base}/v1/aggregates/{body['aggregate_id']}", token)
    assert status == 200 and record["history"][0]["meta"]["caller"] == "sales:ada"

    status, _, refused = _request(f"{base}/v1/commands/lead.create", "not-a-token", {"name": "Ada"})
    assert (status, refused["error"]) == (401, "unauthorized")

    with urllib.request.urlopen(f"{base}/openapi.json", timeout=10) as response:
        spec = json.load(response)
    assert "/v1/commands/lead.create" in spec["paths"] and "bearer" in spec["components"]["securitySchemes"]
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as response:
        metrics = response.read().decode()
    assert (
        'crmflow_http_requests_total{method="POST",route="/v1/commands/{name}",status="201"} 1.0' in metrics
    )
    assert 'crmflow_command_duration_seconds_count{command="lead.create",outcome="ok"}' in metrics

    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 0
    logged = [
        json.loads(line) for line in (tmp_path / "serve.log").read_text().splitlines() if line.startswith("{")
    ]
    requests = [
        line for line in logged if line["event"] == "http_request" and line["route"] == "/v1/commands/{name}"
    ]
    assert {(r["tenant"], r["status"]) for r in requests} >= {("acme", 201), ("acme", 200)}
    assert any(r.get("correlation_id") == "e2e-story" for r in requests)


def test_serve_refuses_to_start_and_token_issue_refuses_without_the_secret(env: dict[str, str]) -> None:
    without = {k: v for k, v in env.items() if k != "CRMFLOW_API_SECRET"}
    served = crmflow(without, "serve", "--port", str(free_port()))
    assert served.returncode == 2
    assert "crmflow serve refuses to start: CRMFLOW_API_SECRET is not set" in served.stderr
    issued = crmflow(without, "token", "issue", "--tenant", "acme", "--role", "sales", "--subject", "ada")
    assert issued.returncode == 2 and "CRMFLOW_API_SECRET is not set" in issued.stderr
    assert issued.stdout == ""


def _request(
    url: str, token: str, payload: dict[str, Any] | None = None, headers: dict[str, str] | None = None
) -> tuple[int, Any, Any]:
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(
        url,
        data=data,
        method="POST" if data else "GET",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, error.headers, json.load(error)
