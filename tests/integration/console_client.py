"""Signing in to the console from a FastAPI TestClient, as a browser's form post would."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has a form with its CSRF token"
    return found.group(1)


def signed_in(client: TestClient, token: str) -> str:
    """Sign in with the token; return the session's CSRF token for the forms that follow."""
    nonce = csrf_of(client.get("/console/sign-in").text)
    assert client.post("/console/sign-in", data={"csrf_token": nonce, "token": token}).status_code == 200
    return csrf_of(client.get("/console").text)
