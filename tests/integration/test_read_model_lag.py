"""How far the read models are behind the store, counted on SQLite and PostgreSQL as a report says it."""

from __future__ import annotations

from crmflow.aggregates.application import CommandRequest, CrmApplication
from crmflow.projections.db import Database
from crmflow.projections.projector import apply_all, rebuild
from crmflow.workers.history import history_source, stored_history
from crmflow.workers.read_model_lag import read_model_lag


def test_the_lag_counts_what_the_projector_would_apply_and_falls_to_zero_after_a_rebuild(
    app: CrmApplication, reports: Database
) -> None:
    lead = app.execute(CommandRequest("lead.create", "acme", {"name": "Ada"})).aggregate_id
    app.execute(CommandRequest("lead.assign", "acme", {"lead_id": str(lead), "owner": "maria"}))
    app.accept_inbound([("acme", {"specversion": "1.0", "id": "w-1", "source": "/webinars", "type": "WebinarAttended",
                                  "data": {"email": "ada@example.com"}})])  # fmt: skip
    handled = sum(1 for e in stored_history(app) if e["type"].startswith("Lead"))
    lag = read_model_lag(app, reports)
    assert lag is not None and (lag.stored, lag.applied, lag.behind, lag.never_built) == (handled, 0, handled, True)

    rebuild(reports, history_source(app))
    lag = read_model_lag(app, reports)
    assert lag is not None and (lag.behind, lag.never_built) == (0, False)

    app.execute(CommandRequest("lead.work", "acme", {"lead_id": str(lead)}))
    lag = read_model_lag(app, reports)
    assert lag is not None and lag.behind == 1
    apply_all(reports, stored_history(app))  # the live projector catching up, duplicates and all
    lag = read_model_lag(app, reports)
    assert lag is not None and lag.behind == 0


def test_a_store_in_memory_is_not_counted(reports: Database) -> None:
    assert read_model_lag(CrmApplication("memory://"), reports) is None
