"""The `crmflow` command: one sub-command module per area, each with --help and an example.

Only the chosen verb's module is imported (VERBS): the others stand in the parser as their name and
help line, so `crmflow --help` and a SQLite `crmflow command` do not import the demo, Kafka, the API or
the runner (seconds of start-up on a busy machine). tests/unit/test_cli_verbs.py keeps VERBS in step
with the modules.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import threading
from collections.abc import Sequence

from crmflow.workers.cli.output import fail

# Each verb: the module under crmflow.workers.cli that registers it, and its help line in `crmflow --help`.
VERBS: dict[str, tuple[str, str]] = {
    "demo": ("demo", "run the whole service locally on a generated workload, then print the reports"),
    "catalog": ("domain", "list every command and event type with its JSON Schema"),
    "command": ("domain", "run one command and print the events it stored"),
    "explain": ("domain", "an aggregate's history, each event with what caused it"),
    "worker": ("kafka", "run a long-running worker (stops gracefully on SIGTERM)"),
    "broker": ("kafka", "run the bundled local Kafka-compatible broker and create the topics"),
    "publish": ("kafka", "publish CloudEvents (JSON lines) to the inbound topic, as another service would"),
    "deadletter": ("kafka", "see what failed and why, and send it back"),
    "process": ("process", "design processes: validate, schema"),
    "relay": ("relay", "look after the relay: the events it parked instead of publishing"),
    "query": ("reports", "print a report from the read models"),
    "projections": ("reports", "rebuild the read models from the event store, or show how far they are"),
    "serve": ("serve", "run the HTTP API (commands, events, reports, histories, process definitions)"),
    "token": ("serve", "issue bearer tokens for the HTTP API"),
    "store": ("store", "look after the event store: migrate what an older release wrote"),
    "segments": ("segments", "place accounts in the tenant's segments and record the placements that changed"),
}
MODULES = tuple(dict.fromkeys(module for module, _ in VERBS.values()))
# Options of the top-level parser that take a value: the verb is the first other word.
VALUED_OPTIONS = ("--database-url",)


def build_parser(modules: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser with ``modules`` registered in full (default: every one) and the other verbs as stubs."""
    parser = argparse.ArgumentParser(
        prog="crmflow",
        description="crmflow: an event-sourced business-process engine for CRM.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  crmflow demo\n  crmflow command lead.create --tenant acme --data '{\"name\": \"Ada\"}'\n\n"
               "exit codes: 0 done; 1 refused (a domain rule, bad input, a failed worker); 2 a mistake in the "
               "call or the setup (usage, settings, a database or broker that is not there)",
    )  # fmt: skip
    parser.add_argument(
        "--database-url",
        help="event store: SQLite path or postgresql:// URL (default: $CRMFLOW_DATABASE_URL "
        "or ./.crmflow/crmflow.db)",
    )
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error, not just its line")
    sub = parser.add_subparsers(dest="command_name", metavar="COMMAND", required=True)
    chosen = MODULES if modules is None else tuple(modules)
    for verb, (module, help_line) in VERBS.items():
        if module not in chosen:
            sub.add_parser(verb, help=help_line)  # parsing stops at the verb's module, which is not loaded
    for module in chosen:
        importlib.import_module(f"crmflow.workers.cli.{module}").register(sub)
    from crmflow.workers.cli.needs import add_flags

    add_flags(parser)
    return parser


def chosen_verb(argv: Sequence[str]) -> str | None:
    """The verb in ``argv`` (the first word that is not a top-level option or its value), if any."""
    words = iter(argv)
    for word in words:
        if word in VALUED_OPTIONS:
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


# Verbs that run until stopped: a SIGTERM before their own handler is in place (while the checks run)
# means "stop", and there is nothing to finish yet.
LONG_RUNNING = ("worker", "serve", "broker")


def _stopped_before_start(signum: int, _frame: object) -> None:
    raise SystemExit(0)


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    verb = chosen_verb(argv)
    if verb in LONG_RUNNING and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _stopped_before_start)
    parser = build_parser([VERBS[verb][0]] if verb in VERBS else [])
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):  # a stub: only when the verb table and the modules disagree
        parser.error(f"{args.command_name}: not registered by crmflow.workers.cli.{VERBS[args.command_name][0]}")
    try:
        return _run(args)
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        if args.debug:
            raise
        # One line, not a traceback: the cause is in the message; --debug shows where it came from.
        return fail(f"{type(error).__name__}: {' '.join(str(error).split())} (--debug shows the traceback)")


def _run(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from crmflow.aggregates.errors import DomainError
    from crmflow.workers.cli.needs import check, store_access
    from crmflow.workers.config import Settings
    from crmflow.workers.logging import configure_logging
    from crmflow.workers.preflight import Unavailable

    try:
        settings = Settings()
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in error.errors())
        return fail(f"invalid configuration: {problems}", code=2)
    if args.database_url:
        settings = settings.model_copy(update={"database_url": args.database_url})
    configure_logging(settings.log_level)
    try:
        check(args, settings)
    except Unavailable as error:
        if args.debug:
            raise
        return fail(str(error), code=2)
    try:
        with store_access(args):
            return int(args.run(args, settings) or 0)
    except DomainError as error:
        return fail(error.message)


def entrypoint() -> None:
    sys.exit(main())
