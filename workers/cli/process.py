"""crmflow process validate | schema: the designers' tools."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from processes.loader import DocumentsInvalid, load_files
from processes.schema import json_schema
from processes.validation import validate
from workers.cli.output import print_json
from workers.config import Settings

RAW = argparse.RawDescriptionHelpFormatter


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    process = sub.add_parser(
        "process", help="design processes: validate, schema", formatter_class=RAW,
        epilog="examples:\n  crmflow process validate processes/definitions/*.yaml\n"
               "  crmflow process schema > crmflow-process.schema.json",
    )  # fmt: skip
    actions = process.add_subparsers(dest="action", required=True, metavar="ACTION")
    check = actions.add_parser(
        "validate", help="check process, calendar and test documents; every error with file, line and field",
        formatter_class=RAW, epilog="example:\n  crmflow process validate web-lead.yaml calendars.yaml",
    )  # fmt: skip
    check.add_argument("files", nargs="+", type=Path, help="YAML files (several documents each, separated by ---)")
    check.set_defaults(run=run_validate)
    schema = actions.add_parser(
        "schema", help="print the JSON Schema of the process language (for editors)", formatter_class=RAW,
        epilog="example:\n  crmflow process schema > crmflow.schema.json\n"
               "  # then, first line of a definition: # yaml-language-server: $schema=crmflow.schema.json",
    )  # fmt: skip
    schema.set_defaults(run=run_schema)


def run_validate(args: argparse.Namespace, settings: Settings) -> int:
    out, err = Console(soft_wrap=True, highlight=False), Console(stderr=True, soft_wrap=True, highlight=False)
    try:
        documents = load_files(args.files)
    except DocumentsInvalid as invalid:
        issues = invalid.issues
    else:
        issues = validate(documents)
    if issues:
        for issue in sorted(issues, key=lambda i: (i.file, i.line)):
            err.print(str(issue), markup=False)
        err.print(f"{len(issues)} problem(s) in {len({i.file for i in issues})} file(s)")
        return 1
    kinds = ", ".join(f"{sum(d.kind == k for d in documents)} {k}" for k in ("Process", "Calendar", "ProcessTest"))
    out.print(f"valid: {len(args.files)} file(s), {kinds}")
    return 0


def run_schema(args: argparse.Namespace, settings: Settings) -> int:
    print_json(json_schema())
    return 0
