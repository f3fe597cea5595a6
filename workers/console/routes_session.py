"""Signing in (a bearer token, or a one-time link's), the home page, signing out."""

from __future__ import annotations

import hmac
import secrets
from datetime import datetime, timezone
from typing import Any

import jwt
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from crmflow.workers.api.tokens import InvalidToken, read_token
from crmflow.workers.console import links
from crmflow.workers.console.forms import check_csrf, posted
from crmflow.workers.console.page import html, log, page, services_of
from crmflow.workers.console.session import COOKIE, CSRF_FIELD, LIFETIME, Session, cookie_flags, open_session

router = APIRouter(include_in_schema=False)
SIGN_IN_COOKIE = "crmflow_sign_in"  # the sign-in form's own CSRF nonce: nobody is signed in yet


def _over_tls(request: Request) -> bool:
    return request.url.scheme == "https"


def _safe_next(target: str | None) -> str:
    # Only a console page: a sign-in link must not be a way to send someone to another site.
    return target if target and target.startswith("/console") and not target.startswith("//") else "/console"


@router.get("/")
def root() -> RedirectResponse:
    return RedirectResponse("/console", status_code=307)


@router.get("/console/sign-in")
def sign_in_form(request: Request, token: str = "", next: str = "", why: str = "") -> Response:
    # A GET never signs in: link previews and prefetches must not use up a one-time link. The button posts it.
    nonce = secrets.token_urlsafe(24)
    response = html(
        request,
        "sign_in.html",
        {"token": token, "next": _safe_next(next), "why": why, "nonce": nonce, "from_link": bool(token)},
    )
    response.set_cookie(SIGN_IN_COOKIE, nonce, **cookie_flags(over_tls=_over_tls(request), max_age=3600))
    return response


@router.post("/console/sign-in")
async def sign_in(request: Request) -> Response:
    fields = await posted(request)
    nonce = request.cookies.get(SIGN_IN_COOKIE, "")
    target = _safe_next(fields.get("next"))

    def again(message: str, status: int) -> Response:
        return html(
            request,
            "sign_in.html",
            {"token": "", "next": target, "why": message, "nonce": nonce, "from_link": False},
            status,
        )

    if not nonce or not hmac.compare_digest(nonce.encode(), fields.get(CSRF_FIELD, "").encode()):
        return again(
            "the sign-in form was refused: its CSRF token is missing or does not match "
            "(reload this page and sign in again)",
            403,
        )
    token = fields.get("token", "").strip()
    if token.lower().startswith("bearer "):
        token = token[7:].strip()
    if not token:
        return again("paste a bearer token (crmflow token issue …) or open a sign-in link", 401)
    services = services_of(request)
    try:
        claims, expires = _claims(services.secret, token, services_links(request))
    except InvalidToken as error:
        log.info("console_sign_in_refused", reason=str(error))
        return again(str(error), 401)
    response = RedirectResponse(target, status_code=303)
    value = open_session(services.secret, claims, token_expires=expires)
    response.set_cookie(
        COOKIE,
        value,
        **cookie_flags(
            over_tls=_over_tls(request),  # type: ignore[arg-type]
            max_age=int(LIFETIME.total_seconds()),
        ),
    )
    response.delete_cookie(SIGN_IN_COOKIE, **cookie_flags(over_tls=_over_tls(request)))  # same flags as set
    log.info("console_signed_in", tenant=claims.tenant, caller=f"{claims.role.name}:{claims.subject}")
    return response


def services_links(request: Request) -> links.UsedLinks:
    used: links.UsedLinks = request.app.state.console_links
    return used


def _claims(secret: str, token: str, used: links.UsedLinks) -> tuple[Any, datetime | None]:
    """A sign-in link's claims (used up now), or a bearer token's, as the API reads it."""
    try:
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        unverified = {}
    if unverified.get("aud") == links.AUDIENCE:
        return used.claim(secret, token)
    claims = read_token(secret, token)
    exp = unverified.get("exp")
    return claims, datetime.fromtimestamp(exp, timezone.utc) if isinstance(exp, int) else None


@router.get("/console")
def home(request: Request) -> Response:
    def build(session: Session) -> tuple[str, dict[str, Any]]:
        return "home.html", {}

    return page(request, build)


@router.post("/console/sign-out")
async def sign_out(request: Request) -> Response:
    fields = await posted(request)

    def build(session: Session) -> Response:
        check_csrf(session, fields)
        response = RedirectResponse("/console/sign-in?why=you+are+signed+out", status_code=303)
        response.delete_cookie(COOKIE, **cookie_flags(over_tls=_over_tls(request)))
        return response

    return page(request, build)
