"""The `crmflow` command: one sub-command module per area, each with --help and an example."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from crmflow.aggregates.errors import DomainError
from crmflow.workers.cli import demo, domain, kafka, process, relay, reports, serve, store
from crmflow.workers.cli.output import fail
from crmflow.workers.config import Settings
from crmflow.workers.logging import configure_logging

MODULES = (demo, domain, kafka, process, relay, reports, serve, store)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crmflow",
        description="crmflow: an event-sourced business-process engine for CRM.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  crmflow demo\n  crmflow command lead.create --tenant acme --data '{\"name\": \"Ada\"}'",
    )
    parser.add_argument(
        "--database-url",
        help="event store: SQLite path or postgresql:// URL (default: $CRMFLOW_DATABASE_URL "
        "or ./.crmflow/crmflow.db)",
    )
    sub = parser.add_subparsers(dest="command_name", metavar="COMMAND", required=True)
    for module in MODULES:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in error.errors())
        return fail(f"invalid configuration: {problems}", code=2)
    if args.database_url:
        settings = settings.model_copy(update={"database_url": args.database_url})
    configure_logging(settings.log_level)
    try:
        return int(args.run(args, settings) or 0)
    except DomainError as error:
        return fail(error.message)
    except KeyboardInterrupt:
        return 130


def entrypoint() -> None:
    sys.exit(main())
