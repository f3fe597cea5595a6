"""How activity events change rm_activities (registered in HANDLERS by importing this module).

Which activity justified a lead's qualification is written by the LeadQualified handler
(projections.handlers) into rm_lead_qualifications.
"""

from __future__ import annotations

from typing import Any

from crmflow.projections.db import Cursor
from crmflow.projections.handlers import _insert, _set, on


@on("ActivityCreated")
def activity_created(cur: Cursor, p: str, e: dict[str, Any]) -> None:
    d = e["data"]
    _insert(cur, p, "activities", {"tenant": e["tenantid"], "activity_id": e["subject"], "kind": d["activity_kind"],
                                   "related_kind": d["related_kind"], "related_id": d["related_id"],
                                   "owner": d["owner"], "subject": d["subject"], "status": d["status"],
                                   "due_at": d.get("due_at"), "created_at": e["time"],
                                   "completed_at": d.get("completed_at"), "outcome": d.get("outcome")})  # fmt: skip


@on("ActivityCompleted")
def activity_completed(cur: Cursor, p: str, e: dict[str, Any]) -> None:
    d = e["data"]
    _set(cur, p, "activities", "activity_id", e, status="completed", completed_at=d["completed_at"],
         outcome=d["outcome"])  # fmt: skip


@on("ActivityCancelled")
def activity_cancelled(cur: Cursor, p: str, e: dict[str, Any]) -> None:
    _set(cur, p, "activities", "activity_id", e, status="cancelled", cancelled_at=e["data"]["cancelled_at"])
