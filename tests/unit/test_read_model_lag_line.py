"""What a report says under its table about its read models, from the two counts."""

from __future__ import annotations

from crmflow.workers.read_model_lag import Lag, lag_line

RUN = "run 'crmflow worker projection' or 'crmflow projections rebuild'"


def test_read_models_that_have_applied_everything_say_nothing() -> None:
    assert lag_line("pipeline", Lag(stored=1204, applied=1204)) is None
    assert lag_line("pipeline", Lag(stored=0, applied=0)) is None
    assert lag_line("pipeline", None) is None, "a store that cannot be counted: no guess"


def test_read_models_behind_say_by_how_many_events_in_thousands() -> None:
    assert lag_line("pipeline", Lag(stored=2408, applied=1204)) == (
        f"pipeline: read models are 1,204 events behind the store; {RUN}"
    )
    assert lag_line("sla", Lag(stored=8, applied=7)) == f"sla: read models are 1 event behind the store; {RUN}"


def test_read_models_never_built_say_so_with_what_the_store_holds() -> None:
    assert lag_line("funnel", Lag(stored=7, applied=0)) == (
        f"funnel: the read models were never built: the store holds 7 events they have not applied; {RUN}"
    )


def test_more_applied_than_counted_is_not_behind() -> None:
    # Events of types chosen at run time (what a process emits) may be applied but are not counted.
    lag = Lag(stored=5, applied=6)
    assert (lag.behind, lag_line("pipeline", lag)) == (0, None)
