"""crmflow catalog | command | explain: the domain from the command line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any
from uuid import UUID

from crmflow.workers.cli.output import fail, print_json, print_rows
from crmflow.workers.config import Settings

RAW = argparse.RawDescriptionHelpFormatter
# The generated reference page (tests/unit/test_docs.py compares it with the code) and how to remake it.
CATALOGUE_PAGE = "docs/catalog.md"
CATALOGUE_PAGE_COMMAND = f"crmflow catalog --format markdown > {CATALOGUE_PAGE}"


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    catalog = sub.add_parser(
        "catalog",
        help="list every command and event type with its JSON Schema",
        formatter_class=RAW,
        epilog=(
            "examples:\n"
            "  crmflow catalog\n"
            "  crmflow catalog --format json > catalog.json\n"
            f"  {CATALOGUE_PAGE_COMMAND}   # the generated reference page"
        ),
    )
    catalog.add_argument(
        "--format", choices=("table", "json", "markdown"), default="table",
        help="table: for people (default); json: with every JSON Schema; markdown: the docs page",
    )  # fmt: skip
    catalog.set_defaults(run=run_catalog)

    command = sub.add_parser(
        "command",
        help="run one command and print the events it stored",
        formatter_class=RAW,
        epilog=(
            "examples:\n"
            "  crmflow command lead.create --tenant acme --data '{\"name\": \"Ada\", \"source\": \"web\"}'\n"
            "  crmflow command lead.create --tenant acme --data @examples/lead.json --idempotency-key web-form-17"
        ),
    )
    command.add_argument("name", help="command name, e.g. lead.create (see `crmflow catalog`)")
    command.add_argument("--tenant", required=True, help="tenant id the command acts for")
    command.add_argument("--data", default="{}", help="payload as JSON, or @FILE to read it")
    command.add_argument("--caller", default=f"cli:{_os_user()}",
                         help="who runs the command, recorded with its events (default: cli:<login name>)")
    command.add_argument("--idempotency-key", help="the same key twice executes once")
    command.add_argument("--correlation-id")
    command.add_argument("--format", choices=("table", "json"), default="json")
    command.set_defaults(run=run_command)

    explain = sub.add_parser(
        "explain",
        help="an aggregate's history, each event with what caused it",
        formatter_class=RAW,
        epilog="example:\n  crmflow explain 3f2a9c1e-0b7d-4c55-9a4e-2f1d7c0b9e11 --tenant acme",
    )
    explain.add_argument("aggregate_id", help="id of a lead, opportunity, case, ...")
    explain.add_argument("--tenant", help="only show it if it belongs to this tenant")
    explain.add_argument("--format", choices=("table", "json"), default="table",
                         help="table: each event and why, in words (default); json: also full ids, data, and "
                              "caused_by as an object (command and caller, or process, step and trigger)")
    explain.set_defaults(run=run_explain)


def run_catalog(args: argparse.Namespace, settings: Settings) -> int:
    from crmflow.aggregates.catalog import catalogue

    data = catalogue()
    if args.format == "json":
        print_json(data)
    elif args.format == "markdown":
        sys.stdout.write(catalogue_markdown(data))
    else:
        print_rows(
            [{**c, "emits": ", ".join(c["emits"]), "fields": _fields(c["schema"])} for c in data["commands"]],
            ("name", "fields", "emits", "summary"),
            "table",
            title="Commands",
        )
        print_rows(
            [{**e, "fields": _fields(e["schema"])} for e in data["events"]],
            ("type", "aggregate", "fields"),
            "table",
            title="Events",
        )
    return 0


def run_command(args: argparse.Namespace, settings: Settings) -> int:
    from crmflow.aggregates.application import CommandRequest
    from crmflow.aggregates.envelope import version_of
    from crmflow.aggregates.limits import LimitExceeded, parse_json
    from crmflow.workers.bootstrap import build_application

    raw = args.data
    if raw.startswith("@"):
        path = Path(raw[1:])
        try:
            raw = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return fail(f"--data @{path}: no such file")
        except IsADirectoryError:
            return fail(f"--data @{path}: is a folder, not a file")
        except (OSError, UnicodeDecodeError) as error:
            return fail(f"--data @{path}: cannot read the file: {getattr(error, 'strerror', None) or error}")
    where = f"--data @{args.data[1:]}" if args.data.startswith("@") else "--data"
    try:
        data = parse_json(raw)  # within the limits every entry enforces
    except LimitExceeded as error:
        return fail(f"{where} is over a limit: {error}")
    except ValueError as error:
        return fail(f"{where} is not valid JSON: {error}")
    if not isinstance(data, dict):
        return fail("--data must be a JSON object")
    app = build_application(settings)
    result = app.execute(
        CommandRequest(
            args.name, args.tenant, data, caller=args.caller,
            correlation_id=args.correlation_id, idempotency_key=args.idempotency_key,
        )
    )  # fmt: skip
    if args.format == "json":
        print_json({"aggregate_id": str(result.aggregate_id), "replayed": result.replayed,
                    "events": result.events})  # fmt: skip
    else:
        print_rows(
            [{"type": e["type"], "subject": e["subject"], "sequence": version_of(e["sequence"]),
              "data": json.dumps(e["data"])} for e in result.events],
            ("type", "subject", "sequence", "data"),
            "table",
        )  # fmt: skip
    return 0


def run_explain(args: argparse.Namespace, settings: Settings) -> int:
    from crmflow.workers.bootstrap import build_application
    from crmflow.workers.explanation import explain

    try:
        aggregate_id = UUID(args.aggregate_id)
    except ValueError:
        return fail(f"{args.aggregate_id!r} is not an aggregate id (a UUID)")
    entries = explain(build_application(settings), aggregate_id, args.tenant)
    if not entries:
        scope = f" in tenant {args.tenant}" if args.tenant else ""
        return fail(f"no aggregate {aggregate_id}{scope}")
    if args.format == "json":
        print_json(entries)  # full ids; data and caused_by as objects
    else:
        rows = [{**e, "data": json.dumps(e["data"])} for e in entries]
        print_rows(rows, ("version", "time", "event", "why", "data"), "table", title=str(aggregate_id))
    return 0


def _os_user() -> str:
    """Who runs the CLI, for the caller each command records ($USER is unset under cron, in containers)."""
    import getpass
    import os

    if os.environ.get("USER"):
        return os.environ["USER"]
    try:
        return getpass.getuser()  # LOGNAME, USERNAME, then the passwd entry of the uid
    except (OSError, KeyError):  # none of them
        return "unknown"


def catalogue_markdown(data: dict[str, Any] | None = None) -> str:
    """The catalogue as the Markdown page docs/catalog.md (ends with a newline; pure: no I/O)."""
    from crmflow.aggregates.catalog import catalogue

    data = catalogue() if data is None else data
    commands, events = data["commands"], data["events"]
    lines = [
        "# Catalogue: commands and event types",
        "",
        "<!-- GENERATED by `crmflow catalog --format markdown`: do not edit by hand. -->",
        "",
        "Generated by `crmflow catalog --format markdown` from the code; do not edit it by hand.",
        f"After changing a command or an event, regenerate it: `{CATALOGUE_PAGE_COMMAND}`",
        "(`tests/unit/test_docs.py` fails while this page differs from the code).",
        "",
        f"{len(commands)} commands and {len(events)} event types. Fields marked `*` are required.",
        "`crmflow catalog --format json` prints each payload's and each event's JSON Schema;",
        "`crmflow catalog` prints these tables in the terminal.",
        "",
        "## Commands",
        "",
        "| command | payload fields (* required) | emits | what it does |",
        "|---|---|---|---|",
    ]
    for c in commands:
        lines.append(f"| `{c['name']}` | {_cell(_fields(c['schema']))} | {_cell(', '.join(c['emits']))} "
                     f"| {_cell(c['summary'])} |")  # fmt: skip
    lines += [
        "", "## Event types", "",
        "An event's data field without `*` was added to its type later: events stored before then lack it.",
        "`OpportunityStageChanged` and `OpportunityReopened` carry the deal's `amount` (a decimal string,",
        "`\"120000.00\"`) and `currency` at the change, for processes that route on the deal's size;",
        "`crmflow process validate` checks every `event.data.FIELD` a definition reads against these fields",
        "([process language](process-language.md#what-validate-checks-in-event-data)).",
        "", "| event type | aggregate | data fields |", "|---|---|---|",
    ]  # fmt: skip
    for e in events:
        lines.append(f"| `{e['type']}` | {_cell(e['aggregate'])} | {_cell(_fields(e['schema']))} |")
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    """Text that stays inside one Markdown table cell."""
    return " ".join(text.replace("|", "\\|").split())


def _fields(schema: dict[str, Any]) -> str:
    required = set(schema.get("required", ()))
    return ", ".join(f"{name}{'*' if name in required else ''}" for name in schema.get("properties", {}))
