"""crmflow query | projections: the analysts' reports and the read models behind them."""

from __future__ import annotations

import argparse

from rich.console import Console

from crmflow.projections.db import Database
from crmflow.projections.projector import rebuild
from crmflow.projections.reports import REPORTS
from crmflow.workers.bootstrap import build_application, build_kafka, build_reports_db
from crmflow.workers.cli.output import FORMATS, fail, print_rows
from crmflow.workers.config import Settings
from crmflow.workers.history import history_source
from crmflow.workers.run.projection_worker import ProjectionWorker, stored_positions

RAW = argparse.RawDescriptionHelpFormatter


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    query = sub.add_parser(
        "query", help="print a report from the read models", formatter_class=RAW,
        epilog="examples:\n  crmflow query pipeline --tenant acme\n  crmflow query win-rate --tenant acme --format csv "
               "--since 2026-01-01\n\nreports:\n" + "\n".join(f"  {r.name:10} {r.summary}" for r in REPORTS.values()),
    )  # fmt: skip
    query.add_argument("name", choices=sorted(REPORTS), metavar="NAME", help="a report (listed below)")
    query.add_argument("--tenant", required=True)
    query.add_argument("--format", choices=FORMATS, default="table")
    query.add_argument("--since", help="from this date or time (ISO 8601), on the report's own date column")
    query.add_argument("--until", help="before this date or time (ISO 8601)")
    query.set_defaults(run=run_query)

    projections = sub.add_parser(
        "projections", help="rebuild the read models from the event store, or show how far they are",
        formatter_class=RAW, epilog="examples:\n  crmflow projections rebuild\n  crmflow projections status",
    )  # fmt: skip
    actions = projections.add_subparsers(dest="action", required=True, metavar="ACTION")
    rebuild_parser = actions.add_parser(
        "rebuild", help="rebuild read models from the store, then swap them in at once", formatter_class=RAW,
        epilog="examples:\n  crmflow projections rebuild            # every read model\n"
               "  crmflow projections rebuild pipeline   # only the tables the pipeline report reads",
    )  # fmt: skip
    rebuild_parser.add_argument("name", nargs="?", choices=sorted(REPORTS), metavar="NAME",
                                help="only the tables this report reads (default: every read model)")  # fmt: skip
    rebuild_parser.set_defaults(run=run_rebuild)
    actions.add_parser(
        "status", help="each partition's stored position and lag", formatter_class=RAW,
        epilog="example:\n  KAFKA_BOOTSTRAP_SERVERS=kafka:9092 crmflow projections status",
    ).set_defaults(run=run_status)


def run_query(args: argparse.Namespace, settings: Settings) -> int:
    import structlog

    from crmflow.aggregates.application import CrmApplication
    from crmflow.processes.registry import DefinitionRegistry
    from crmflow.workers.read_model_lag import lag_line, read_model_lag
    from crmflow.workers.report_inputs import report_inputs

    report = REPORTS[args.name]
    db = _read_models_or_none_yet(settings)
    if isinstance(db, str):
        return fail(db, code=2)
    # Not build_application: the store serves courtesies here (the lag, the deployed segmentation), worth
    # waiting seconds for, not eventsourcing's 30.
    store: CrmApplication | None = None
    try:
        store = CrmApplication(settings.database_url, env={"POSTGRES_CONNECT_TIMEOUT": "3"})
    except Exception as error:  # noqa: BLE001 - an analyst may reach the read models but not the store
        structlog.get_logger("crmflow.query").debug("store_unavailable", error=str(error))
    documents = (lambda: DefinitionRegistry(store).documents()) if store is not None else None
    inputs = report_inputs(report, args.tenant, settings, documents)
    rows = report.run(db, args.tenant, since=args.since, until=args.until, **inputs)
    print_rows(rows, report.columns, args.format, title=f"{report.name} · {args.tenant}")
    # An empty or old report looks like a quiet business: say on stderr when the read models are behind.
    try:
        lag = read_model_lag(store, db) if store is not None else None
    except Exception as error:  # noqa: BLE001 - an analyst may reach the read models but not the store
        structlog.get_logger("crmflow.query").debug("read_model_lag_unknown", error=str(error))
        lag = None
    line = lag_line(report.name, lag)
    if line:
        Console(stderr=True, soft_wrap=True, highlight=False).print(line, markup=False)
    return 0


def _read_models_or_none_yet(settings: Settings) -> Database | str:
    """The read models; empty ones in memory when they were never built beside an existing store (the
    report then prints empty and says why, creating nothing); else the one line that says what is missing."""
    from crmflow.projections.projector import create_tables
    from crmflow.workers import preflight
    from crmflow.workers.cli.needs import READ_MODELS_MISSING, reports_database_url, store_table

    def check(url: str | None, what: str, table: str, missing: str) -> None:
        preflight.check_database(url, what=what, table=table, access="read", create=False,
                                 timeout_s=settings.connect_timeout_s, missing=missing)  # fmt: skip

    try:
        check(reports_database_url(settings), "read models", preflight.REPORTS_TABLE, READ_MODELS_MISSING)
    except preflight.Unavailable as missing:
        try:
            check(settings.database_url, "event store", store_table(settings), "is the path right?")
        except preflight.Unavailable:
            return str(missing)
        empty = Database(":memory:")
        create_tables(empty)
        return empty
    return build_reports_db(settings)


def run_rebuild(args: argparse.Namespace, settings: Settings) -> int:
    tables = REPORTS[args.name].tables if args.name else None
    what = f"the tables of {args.name} ({', '.join(tables)})" if tables else "every read model"
    with Console(stderr=True).status(f"rebuilding {what} from the event store"):
        applied = rebuild(build_reports_db(settings), history_source(build_application(settings)), tables)
    Console(stderr=True).print(f"rebuilt {what}: {applied} events applied; the new tables are in place")
    return 0


def run_status(args: argparse.Namespace, settings: Settings) -> int:
    db = build_reports_db(settings)
    with build_kafka(settings, "status") as kafka:
        try:
            worker = ProjectionWorker(db, kafka)
            lag = worker.lag()
        except Exception as error:  # noqa: BLE001 - Kafka unreachable: say so
            return fail(f"cannot read the topic positions from Kafka: {error}")
        positions = stored_positions(db, worker.topic)
    rows = [{"partition": p, "position": positions.get(p, 0), "lag": n} for p, n in sorted(lag.items())]
    print_rows(rows, ("partition", "position", "lag"), "table", title=f"projection lag: {sum(lag.values())} events behind")
    return 0
