"""crmflow segments apply: record the accounts whose segment or usage tier changed; workers.segments_apply."""

from __future__ import annotations

import argparse

from rich.console import Console

from crmflow.workers.cli.output import FORMATS, print_rows
from crmflow.workers.config import Settings

RAW = argparse.RawDescriptionHelpFormatter


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    segments = sub.add_parser(
        "segments",
        help="place accounts in the tenant's segments and record the placements that changed",
        formatter_class=RAW,
        epilog="example:\n  crmflow segments apply --tenant acme",
    )
    actions = segments.add_subparsers(dest="action", required=True, metavar="ACTION")
    apply = actions.add_parser(
        "apply",
        help="issue account.segment for each account whose placement changed (again: nothing)",
        formatter_class=RAW,
        epilog="example:\n  crmflow segments apply --tenant acme --format json",
    )
    apply.add_argument("--tenant", required=True)
    apply.add_argument("--format", choices=FORMATS, default="table")
    apply.set_defaults(run=run_apply)


def run_apply(args: argparse.Namespace, settings: Settings) -> int:
    from crmflow.workers.bootstrap import build_application, build_reports_db
    from crmflow.workers.segments_apply import COLUMNS, apply_segments

    changed = apply_segments(build_application(settings), build_reports_db(settings), args.tenant, settings)
    print_rows(changed, COLUMNS, args.format, title=f"accounts placed anew · {args.tenant}")
    if args.format == "table":
        Console(stderr=True).print(f"{len(changed)} account(s) placed anew; the others keep their placement")
    return 0
