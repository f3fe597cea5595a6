"""The process instances one by one, behind a row of the ``instances`` report: what an operator opens to
read each instance's story (``/v1/processes/instances/each``, the console's drill-down).

The report counts instances per definition, version, state and step; this lists them, with the key they
follow, the error of a failed one and their times, newest activity first, so the one that just failed is
on top.
"""

from __future__ import annotations

from typing import Any

from crmflow.projections.db import Database
from crmflow.projections.figures import iso

COLUMNS = ("instance_id", "definition", "version", "key", "status", "step", "stuck", "error", "waiting_on",
           "due_at", "started_at", "updated_at")  # fmt: skip
LIMIT = 500  # the most one answer lists: a page for a person, not an export
TIMES = ("due_at", "started_at", "updated_at")


def instance_rows(
    db: Database, tenant: str, *, definition: str | None = None, version: int | None = None,
    status: str | None = None, step: str | None = None, limit: int = 100,
) -> list[dict[str, Any]]:  # fmt: skip
    """The tenant's instances matching every filter given (``step`` "" matches instances at no step)."""
    where = ["tenant = %(tenant)s"]
    if definition is not None:
        where.append("definition = %(definition)s")
    if version is not None:
        where.append("version = %(version)s")
    if status is not None:
        where.append("status = %(status)s")
    if step is not None:
        where.append("COALESCE(step, '') = %(step)s")
    rows = db.query(
        "SELECT instance_id, definition, version, key, status, COALESCE(step, '') AS step, "
        "CASE WHEN status = 'waiting' AND due_at IS NULL AND waiting_on IS NULL THEN 1 ELSE 0 END AS stuck, "
        "error, waiting_on, due_at, started_at, updated_at "
        f"FROM rm_instances WHERE {' AND '.join(where)} "
        "ORDER BY updated_at DESC, instance_id LIMIT %(limit)s",
        {"tenant": tenant, "definition": definition, "version": version, "status": status, "step": step,
         "limit": min(limit, LIMIT)},
    )  # fmt: skip
    return [{c: iso(row.get(c)) if c in TIMES else row.get(c) for c in COLUMNS} for row in rows]
