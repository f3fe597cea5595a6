"""The HTTP API on a real store and real read models, and users who call it with their own tokens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from httpx import Response

from crmflow.aggregates.application import CrmApplication
from crmflow.projections.db import Database
from crmflow.projections.projector import apply_all
from crmflow.workers.api.app import create_app
from crmflow.workers.api.tokens import issue_token
from crmflow.workers.config import Settings
from crmflow.workers.history import stored_history

SECRET = "test-secret-that-is-long-enough-for-hs256"


class User:
    """Someone with a token: every request carries it."""

    def __init__(self, client: TestClient, token: str) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"}

    def command(
        self, name: str, /, *, key: str | None = None, correlation: str | None = None, **payload: Any
    ) -> Response:
        headers = dict(self.headers)
        if key:
            headers["Idempotency-Key"] = key
        if correlation:
            headers["X-Correlation-Id"] = correlation
        return self.client.post(
            f"/v1/commands/{name}", json={k: _plain(v) for k, v in payload.items()}, headers=headers
        )

    def created(self, name: str, /, **payload: Any) -> str:
        """Run a command that must succeed; the id of what it created or changed."""
        response = self.command(name, **payload)
        assert response.status_code == 201, response.text
        return str(response.json()["aggregate_id"])

    def get(self, path: str, **params: Any) -> Response:
        return self.client.get(path, params=params, headers=self.headers)

    def post(self, path: str, **kwargs: Any) -> Response:
        return self.client.post(path, headers={**self.headers, **kwargs.pop("headers", {})}, **kwargs)

    def yaml(self, path: str, text: str, content_type: str = "application/yaml") -> Response:
        return self.post(path, content=text.encode(), headers={"Content-Type": content_type})


@dataclass
class Api:
    client: TestClient
    app: CrmApplication
    reports: Database

    def user(self, tenant: str, role: str, subject: str = "ada", expires_in: timedelta | None = None) -> User:
        token = issue_token(SECRET, tenant=tenant, role=role, subject=subject, expires_in=expires_in)
        return User(self.client, token)

    def project(self) -> int:
        """Bring the read models up to date with the store, as the projection worker would."""
        return apply_all(self.reports, stored_history(self.app))

    def stored(self) -> int:
        """How many events the store holds: unchanged means nothing was stored."""
        return int(self.app.recorder.max_notification_id() or 0)


def start_api(app: CrmApplication, reports: Database, tenants: list[str] | None = None) -> Api:
    settings = Settings(database_url=None, api_secret=SECRET, tenants=tenants or ["acme", "globex"])
    return Api(TestClient(create_app(settings, app=app, reports_db=reports)), app, reports)


def _plain(value: Any) -> Any:
    return value if isinstance(value, (dict, list, int, float, bool)) or value is None else str(value)
