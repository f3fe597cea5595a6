"""State-changing forms: read the posted fields and check the CSRF token before anything else happens."""

from __future__ import annotations

from fastapi import Request

from crmflow.workers.api.errors import ApiError
from crmflow.workers.console.session import CSRF_FIELD, Session, csrf_matches

CSRF_REFUSED = (
    "the form was refused: its CSRF token is missing or does not match your session, so it may "
    "not come from this console; reload the page and send it again (nothing was changed)"
)


async def posted(request: Request) -> dict[str, str]:
    """The form's text fields (a file field is read as text too: the designer's upload)."""
    form = await request.form()
    fields: dict[str, str] = {}
    for key, value in form.multi_items():
        if isinstance(value, str):
            fields[key] = value
        else:
            data = await value.read()
            fields[key] = data.decode("utf-8", "surrogateescape") if data else fields.get(key, "")
    return fields


def check_csrf(session: Session, fields: dict[str, str]) -> None:
    if not csrf_matches(session, fields.get(CSRF_FIELD)):
        raise ApiError(403, "csrf_failed", CSRF_REFUSED)
