"""crmflow store: the event store itself (today: the one-time rewrite of release 0.1's topic names)."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn

from crmflow.aggregates.topics import migrate_stored_topics
from crmflow.workers.bootstrap import build_application
from crmflow.workers.cli.output import fail
from crmflow.workers.config import Settings

RAW = argparse.RawDescriptionHelpFormatter


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    store = sub.add_parser(
        "store", help="look after the event store: migrate what an older release wrote", formatter_class=RAW,
        epilog="examples:\n  crmflow store migrate --dry-run\n  crmflow --database-url postgresql://crm@db/crm store migrate",
    )  # fmt: skip
    actions = store.add_subparsers(dest="action", required=True, metavar="ACTION")
    migrate = actions.add_parser(
        "migrate", formatter_class=RAW,
        help="rewrite the topic names crmflow 0.1 stored (aggregates.lead:...) to the current ones (crmflow.aggregates...)",
        description="Rewrites, once, every stored event whose topic names a package of release 0.1, and the "
                    "aggregate topic a created event holds. Idempotent; safe while workers run (both names are "
                    "read until then). SQLite and PostgreSQL stores.",
        epilog="examples:\n  crmflow store migrate --dry-run   # count what would change\n  crmflow store migrate",
    )  # fmt: skip
    migrate.add_argument("--dry-run", action="store_true", help="count what would be rewritten, change nothing")
    migrate.set_defaults(run=run_migrate)


def run_migrate(args: argparse.Namespace, settings: Settings) -> int:
    app = build_application(settings)
    console = Console(stderr=True)
    with Progress(SpinnerColumn(), TextColumn("{task.description} {task.completed} events"), console=console,
                  transient=True) as progress:  # fmt: skip
        task = progress.add_task("counting" if args.dry_run else "rewriting", total=None)
        try:
            done = migrate_stored_topics(app, dry_run=args.dry_run, progress=lambda n: progress.advance(task, n))
        except ValueError as error:
            return fail(str(error))
    verb = "would rewrite" if args.dry_run else "rewrote"
    print(f"{verb} the topics of {done.events} stored events ({done.states} created events' aggregate topics too)"
          + ("" if done.events else ": the store uses the current names"))  # fmt: skip
    return 0
