"""How far the read models are behind the event store: for a report to say so under its table.

The projector records in ``rm_seen`` the id of every event it applied, and
applies only the events whose type has a handler (projections.handlers). So
"behind" is counted over those events alone:

    behind = (stored events of a handled type) - (rows in rm_seen)

The store side is one ``GROUP BY topic`` over the stored events (a topic names
the event class, and a class with the standard envelope is published under its
own name), the read-model side one ``COUNT(*)``: two scans, no event decoded,
cheap for the sizes crmflow runs at (a million events: well under a second on
SQLite). It is exact when the projection applied only events of this store. It
can only undercount, never raise a false alarm: events published under a type
chosen at run time (inbound events, what processes emit) are left out of the
store side, and the result is never below 0.

An empty ``rm_seen`` beside a store holding such events means the read models
were never built (no projection worker ran, no rebuild).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from eventsourcing.utils import resolve_topic

from crmflow.aggregates.application import CrmApplication
from crmflow.aggregates.base import TenantAggregate
from crmflow.projections.db import Database
from crmflow.projections.handlers import HANDLERS


@dataclass(frozen=True)
class Lag:
    stored: int  # stored events of a type the read models handle
    applied: int  # events the read models applied (rows in rm_seen)

    @property
    def behind(self) -> int:
        return max(0, self.stored - self.applied)

    @property
    def never_built(self) -> bool:
        return self.applied == 0 and self.stored > 0


def read_model_lag(app: CrmApplication, db: Database) -> Lag | None:
    """The lag, or None for a store that cannot be counted with SQL (memory://)."""
    stored = handled_stored_events(app)
    if stored is None:
        return None
    applied = int(db.query("SELECT COUNT(*) AS n FROM rm_seen")[0]["n"])
    return Lag(stored, applied)


def handled_stored_events(app: CrmApplication) -> int | None:
    """How many stored events have a type the read models handle; None if the store has no SQL table."""
    recorder = app.recorder
    module = type(recorder).__module__
    if module == "eventsourcing.sqlite":
        table = f'"{recorder.events_table_name}"'
    elif module == "eventsourcing.postgres":
        table = f'"{recorder.datastore.schema}"."{recorder.events_table_name}"'
    else:
        return None
    if not recorder.max_notification_id():
        return 0  # an empty store: no scan
    with recorder.datastore.transaction(commit=False) as cursor:
        cursor.execute(f"SELECT topic, COUNT(*) AS n FROM {table} GROUP BY topic")
        counts = [(row["topic"], int(row["n"])) for row in cursor.fetchall()]
    return sum(n for topic, n in counts if handled_topic(topic))


@lru_cache(maxsize=None)
def handled_topic(topic: str) -> bool:
    """Whether events stored under this topic reach the read models under a handled type."""
    try:
        cls = resolve_topic(topic)
    except Exception:  # noqa: BLE001 - a topic of a class this crmflow lacks: the projection cannot apply it
        return False
    standard = getattr(cls, "to_wire", None) is TenantAggregate.Event.to_wire
    published = getattr(cls, "published", False)
    return bool(published and standard and topic.rsplit(".", 1)[-1] in HANDLERS)


def lag_line(report: str, lag: Lag | None) -> str | None:
    """What a report says under its table when its read models are behind; None when they are not."""
    if lag is None or lag.behind == 0:
        return None
    run = "run 'crmflow worker projection' or 'crmflow projections rebuild'"
    if lag.never_built:
        return (f"{report}: the read models were never built: the store holds {_events(lag.stored)} "
                f"they have not applied; {run}")  # fmt: skip
    return f"{report}: read models are {_events(lag.behind)} behind the store; {run}"


def _events(n: int) -> str:
    return f"{n:,} event" if n == 1 else f"{n:,} events"
