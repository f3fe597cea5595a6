"""Every refusal as JSON ``{"error": code, "message": ..., "details": ...}`` with its HTTP status.

Domain errors keep their own codes (the CLI and the process engine report
the same ones); the API adds its own for what only HTTP has: tokens, roles,
routes, media types. FastAPI's request validation errors are reshaped to the
same body, so a client parses one error format.
"""

from __future__ import annotations

import json
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from crmflow.aggregates.errors import (
    AggregateExistsError,
    AggregateNotFoundError,
    ConcurrencyConflictError,
    DomainError,
    IdempotencyKeyReusedError,
    IllegalTransitionError,
    InvalidCommandError,
    InvalidValueError,
    UnknownCommandError,
)
from crmflow.processes.registry import DefinitionVersionConflictError
from crmflow.workers.metrics import HTTP_METHODS

log = structlog.get_logger("crmflow.api")

# Most specific first: FrozenAggregateError is an IllegalTransitionError.
DOMAIN_STATUS: tuple[tuple[type[DomainError], int], ...] = (
    (AggregateNotFoundError, 404),
    (UnknownCommandError, 404),
    (IllegalTransitionError, 409),
    (ConcurrencyConflictError, 409),
    (IdempotencyKeyReusedError, 409),
    (AggregateExistsError, 409),
    (DefinitionVersionConflictError, 409),
    (InvalidValueError, 422),
    (InvalidCommandError, 422),
)
HTTP_CODES = {
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "oversize",
    415: "unsupported_media_type",
}


class ApiError(Exception):
    """A refusal that only the HTTP API makes (tokens, roles, media types, unknown reports)."""

    def __init__(
        self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None, **details: Any
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
        self.details = details


class ErrorBody(BaseModel):
    """The body of every error response."""

    error: str = Field(description="a stable machine-readable code, e.g. illegal_transition")
    message: str = Field(description="one sentence that names what was wrong and what is allowed")
    details: dict[str, Any] = Field(default_factory=dict, description="the code's particulars")


def status_of(error: DomainError) -> int:
    """A domain refusal's status; one the table does not know is a refusal of the input (422)."""
    return next((status for cls, status in DOMAIN_STATUS if isinstance(error, cls)), 422)


def error_response(
    status: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    # Details may hold UUIDs, decimals or dates: their text is what a client needs.
    body = json.loads(json.dumps({"error": code, "message": message, "details": details or {}}, default=str))
    return JSONResponse(body, status_code=status, headers=headers)


async def _api_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ApiError)
    return error_response(error.status, error.code, error.message, error.details, error.headers)


async def _domain_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, DomainError)
    return error_response(status_of(error), error.code, error.message, error.details)


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()]
    return error_response(
        422, "invalid_request", "the request is invalid: " + "; ".join(problems), {"errors": problems}
    )


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    if error.status_code == 400:
        # FastAPI's answer to a body it could not read as JSON (bytes that are no text in any encoding
        # it guesses): for the client the same as any unparsable body.
        return error_response(
            422, "invalid_request", f"the request body could not be read as JSON: {error.detail}"
        )
    code = HTTP_CODES.get(error.status_code, f"http_{error.status_code}")
    message = str(error.detail)
    headers = getattr(error, "headers", None)
    if error.status_code == 404:
        message = f"no route {request.method} {request.url.path}: /openapi.json lists every endpoint"
    elif error.status_code == 405:
        # A path the document does not list (a command name not in the catalogue): the route's own methods.
        own = [m.strip() for m in (headers or {}).get("Allow", "").split(",") if m.strip()]
        allowed = allowed_methods(request) or sorted(own)
        message = f"{request.method[:32]} is not allowed on {request.url.path}: use {', '.join(allowed)}"
        headers = {**(headers or {}), "Allow": ", ".join(allowed)}
        return error_response(405, code, message, {"allowed": allowed}, headers)
    return error_response(error.status_code, code, message, headers=headers)


def allowed_methods(request: Request) -> list[str]:
    """Every method the OpenAPI document lists for the path asked for (RFC 9110: Allow lists them all).

    Starlette's own 405 names only the methods of the first route whose path
    matches, and a path with GET and POST is two routes. The document is
    what clients are promised, and FastAPI builds it once."""
    path = request.url.path
    methods: set[str] = set()
    for template, operations in request.app.openapi().get("paths", {}).items():
        if compile_path(template)[0].match(path):
            methods |= {method.upper() for method in operations if method.upper() in HTTP_METHODS}
    return sorted(methods)


async def _unexpected(request: Request, error: Exception) -> JSONResponse:
    log.exception("http_request_failed", method=request.method, path=request.url.path)
    return error_response(500, "internal_error", "the server failed to answer; the error is logged")


def install_error_handlers(api: FastAPI) -> None:
    api.add_exception_handler(ApiError, _api_error)
    api.add_exception_handler(DomainError, _domain_error)
    api.add_exception_handler(RequestValidationError, _validation_error)
    api.add_exception_handler(StarletteHTTPException, _http_error)
    api.add_exception_handler(Exception, _unexpected)


ERROR_DESCRIPTIONS = {
    401: "no token, or one that is malformed, expired or not signed with this server's secret",
    403: "the token's role may not do this, or the request concerns another tenant",
    404: "unknown name or id (another tenant's ids are answered exactly like unknown ones)",
    409: "refused by the record's current state: illegal transition, frozen, conflict, key reused, taken id",
    413: "the body is over the message_bytes limit (docs/operations.md#limits)",
    415: "the body's content type is not one this endpoint reads",
    422: "the request is invalid: payload, value, YAML or event, or over a limit; every problem is named",
    503: "a dependency does not answer",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the errors an endpoint may answer, all with the one error body."""
    return {status: {"model": ErrorBody, "description": ERROR_DESCRIPTIONS[status]} for status in statuses}
