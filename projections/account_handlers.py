"""rm_contacts: who works at each account, for the profile report's contacts count (registered in HANDLERS by
importing this module). A contact created by a lead's conversion is a ContactCreated like any other."""

from __future__ import annotations

from typing import Any

from crmflow.projections.db import Cursor
from crmflow.projections.handlers import _insert, on


@on("ContactCreated")
def contact_created(cur: Cursor, p: str, e: dict[str, Any]) -> None:
    d = e["data"]
    _insert(
        cur,
        p,
        "contacts",
        {
            "tenant": e["tenantid"],
            "contact_id": e["subject"],
            "account_id": str(d["account_id"]),
            "created_at": e["time"],
        },
    )
