"""The console's cookies over TLS and over plain HTTP, as the server sets them on a real request."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from crmflow.aggregates.application import CrmApplication
from crmflow.projections.db import Database
from crmflow.projections.projector import create_tables
from crmflow.workers.api.app import create_app
from crmflow.workers.api.tokens import issue_token
from crmflow.workers.config import Settings
from tests.integration.console_client import csrf_of

SECRET = "console-cookies-secret-long-enough-for-hs256"


@pytest.mark.parametrize(("base", "secure"), [("https://crm.example", True), ("http://127.0.0.1", False)])
def test_the_session_cookie_is_secure_exactly_when_the_console_is_reached_over_tls(
    base: str, secure: bool, tmp_path: Path
) -> None:
    app, reports = CrmApplication(str(tmp_path / "e.db")), Database(str(tmp_path / "r.db"))
    create_tables(reports)
    try:
        client = TestClient(create_app(Settings(database_url=None, api_secret=SECRET), app=app, reports_db=reports),
                            base_url=base)  # fmt: skip
        form = client.get("/console/sign-in")
        token = issue_token(SECRET, tenant="acme", role="analyst", subject="olga")
        signed = client.post("/console/sign-in", data={"csrf_token": csrf_of(form.text), "token": token},
                             follow_redirects=False)  # fmt: skip
        assert signed.status_code == 303
        cookies = form.headers.get_list("set-cookie") + signed.headers.get_list("set-cookie")
        assert len(cookies) == 3, "the sign-in form's nonce; the session, and the nonce's deletion"
        for cookie in cookies:
            flags = {f.strip().lower() for f in cookie.split(";")[1:]}
            assert {"httponly", "samesite=strict"} <= flags
            assert ("secure" in flags) is secure, cookie
    finally:
        reports.close()
        app.close()
