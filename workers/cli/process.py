"""crmflow process validate | schema: the designers' tools."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

from rich.console import Console

from crmflow.processes.durations import parse_duration
from crmflow.processes.field_refs import field_report
from crmflow.processes.loader import Document, DocumentsInvalid, load_files
from crmflow.processes.registry import DefinitionRegistry, DeployedVersion
from crmflow.processes.schema_file import schema_text
from crmflow.processes.simulation import Simulation
from crmflow.processes.testing import run_tests
from crmflow.processes.validation import validate
from crmflow.processes.whatif import compare, replayed
from crmflow.workers.bootstrap import build_application
from crmflow.workers.cli.output import fail, print_json, print_rows
from crmflow.workers.config import Settings
from crmflow.workers.history import stored_history
from crmflow.workers.inbound_checks import load_schemas

RAW = argparse.RawDescriptionHelpFormatter


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    process = sub.add_parser(
        "process", help="design processes: validate, schema", formatter_class=RAW,
        epilog="examples:\n  crmflow process validate processes/definitions/*.yaml\n"
               "  crmflow process schema --output crmflow.schema.json",
    )  # fmt: skip
    actions = process.add_subparsers(dest="action", required=True, metavar="ACTION")
    check = actions.add_parser(
        "validate", help="check process, calendar and test documents; every error with file, line and field",
        formatter_class=RAW,
        epilog="examples:\n  crmflow process validate examples/hot-lead-alert.yaml processes/definitions/calendars.yaml\n"
               "  crmflow process validate processes/definitions   # every *.yaml and *.yml in the folder",
    )  # fmt: skip
    check.add_argument("files", nargs="+", type=Path, metavar="FILE_OR_FOLDER",
                       help="YAML files (several documents each, separated by ---), or folders: every *.yaml "
                            "and *.yml directly inside, in name order")  # fmt: skip
    check.set_defaults(run=run_validate)
    schema = actions.add_parser(
        "schema", help="write the JSON Schema of the process language (for editors); stdout without --output",
        formatter_class=RAW,
        epilog="example:\n  crmflow process schema --output crmflow.schema.json\n"
               "  # then, as the first line of each definition beside it:\n"
               "  # yaml-language-server: $schema=crmflow.schema.json",
    )  # fmt: skip
    schema.add_argument("--output", type=Path, metavar="FILE", help="write the schema to FILE (default: stdout)")
    schema.set_defaults(run=run_schema)

    deploy = actions.add_parser(
        "deploy", help="store new versions of processes and calendars; running workers pick them up",
        formatter_class=RAW, epilog="example:\n  crmflow process deploy processes/definitions/*.yaml --by ada",
    )  # fmt: skip
    deploy.add_argument("files", nargs="+", type=Path)
    deploy.add_argument("--by", default=f"cli:{os.environ.get('USER', 'unknown')}", help="who deploys (recorded)")
    deploy.set_defaults(run=run_deploy)

    listing = actions.add_parser(
        "list", help="the deployed definitions: name, scope, versions, who deployed them and when",
        formatter_class=RAW, epilog="example:\n  crmflow process list --all-versions",
    )  # fmt: skip
    listing.add_argument("--all-versions", action="store_true", help="every version, not just the latest")
    listing.add_argument("--format", choices=("table", "json", "csv"), default="table")
    listing.set_defaults(run=run_list)

    whatif = actions.add_parser(
        "whatif", help="replay stored history through a proposed definition and the deployed one; compare; write nothing",
        formatter_class=RAW, epilog="example:\n  crmflow process whatif examples/web-lead-follow-up-v4.yaml --since 2026-01-01",
    )  # fmt: skip
    whatif.add_argument("files", nargs="+", type=Path, help="the proposed definitions (and calendars)")
    whatif.add_argument("--since", type=datetime.fromisoformat, help="only history from this date (default: all)")
    whatif.add_argument("--tenant", help="only this tenant's history and the definitions it runs (default: all)")
    whatif.add_argument("--format", choices=("table", "json"), default="table")
    whatif.set_defaults(run=run_whatif)

    test = actions.add_parser(
        "test", help="run the ProcessTest documents in the files against the processes in them",
        formatter_class=RAW,
        epilog="examples:\n  crmflow process test processes/definitions/*.yaml\n"
               "  crmflow process test processes/definitions   # every *.yaml and *.yml in it (for CI)",
    )  # fmt: skip
    test.add_argument("files", nargs="+", type=Path, metavar="FILE_OR_FOLDER",
                      help="YAML files with processes, calendars and tests, or folders: every *.yaml and "
                           "*.yml directly inside, in name order")  # fmt: skip
    test.set_defaults(run=run_test)

    simulate = actions.add_parser(
        "simulate", help="replay events through definitions offline, timers included; print each step, write nothing",
        formatter_class=RAW,
        epilog="example:\n  crmflow process simulate processes/definitions/web-lead-follow-up.yaml --events examples/leads.jsonl --horizon P7D",
    )  # fmt: skip
    simulate.add_argument("files", nargs="+", type=Path, help="YAML files with the processes (and calendars)")
    simulate.add_argument("--events", type=Path, required=True, help="CloudEvents, one JSON object per line")
    simulate.add_argument("--start", type=datetime.fromisoformat, help="clock start (default: the first event's time)")
    simulate.add_argument("--horizon", default="P30D", help="after the last event, run the clock this much longer")
    simulate.add_argument("--format", choices=("table", "json"), default="table")
    simulate.set_defaults(run=run_simulate)


def run_validate(args: argparse.Namespace, settings: Settings) -> int:
    try:  # the inbound types' JSON Schemas: reads of their data fields are checked against them too
        inbound = {name: v.schema for name, v in load_schemas(settings.schema_dir).items()}
    except ValueError as error:
        return fail(str(error))
    files = yaml_files(args.files)
    if isinstance(files, str):
        return fail(files)
    documents = _load_valid(files, inbound=inbound, advise=True)
    if documents is None:
        return 1
    shown = ("Process", "Calendar", "ProcessTest") + (("Segmentation",) if any(d.kind == "Segmentation" for d in documents) else ())
    kinds = ", ".join(f"{sum(d.kind == k for d in documents)} {k}" for k in shown)
    Console(soft_wrap=True, highlight=False).print(f"valid: {len(files)} file(s), {kinds}")
    return 0


def _load_valid(files: list[Path], context: list[Document] = (),  # type: ignore[assignment]
                inbound: dict[str, object] | None = None, advise: bool = False) -> list[Document] | None:  # fmt: skip
    """The documents, or None after printing every problem (the caller exits 1).

    ``advise``: also print the warnings (which do not fail) and which event types' data went unchecked.
    """
    err = Console(stderr=True, soft_wrap=True, highlight=False)
    documents: list[Document] = []
    try:
        documents = load_files(files)
        issues = validate(documents, context, inbound)
    except DocumentsInvalid as invalid:
        issues = invalid.issues
    warnings, unchecked = [], set()
    if advise and documents:
        report = field_report(documents, context, inbound)
        warnings, unchecked = report.warnings, report.unchecked
    for issue in sorted([*issues, *warnings], key=lambda i: (i.file, i.line)):
        err.print(str(issue), markup=False)
    if unchecked:
        err.print(f"note: event.data of {', '.join(sorted(unchecked))} is not checked: no schema is registered "
                  "for these inbound types (CRMFLOW_SCHEMA_DIR)", markup=False)  # fmt: skip
    if not issues:
        return documents
    also = f", and {len(warnings)} warning(s)" if warnings else ""
    err.print(f"{len(issues)} problem(s) in {len({i.file for i in issues})} file(s){also}")
    return None


def run_deploy(args: argparse.Namespace, settings: Settings) -> int:
    registry = DefinitionRegistry(build_application(settings))
    documents = _load_valid(args.files, registry.documents())
    if documents is None:
        return 1
    outcomes = registry.deploy(documents, args.by)
    rows = [{"kind": o.kind, "name": o.name, "scope": o.scope, "version": o.version,
             "result": "deployed" if o.deployed else "unchanged (already deployed)"} for o in outcomes]  # fmt: skip
    print_rows(rows, ("kind", "name", "scope", "version", "result"), "table", title=f"deployed by {args.by}")
    return 0


def run_list(args: argparse.Namespace, settings: Settings) -> int:
    versions = DefinitionRegistry(build_application(settings)).versions()
    if not args.all_versions:
        latest: dict[tuple[str, str, str], DeployedVersion] = {}
        for v in versions:
            latest[(v.kind, v.scope, v.name)] = max(v, latest.get((v.kind, v.scope, v.name), v), key=lambda x: x.version)
        versions = sorted(latest.values(), key=lambda v: (v.kind, v.name))
    rows = [{"kind": v.kind, "name": v.name, "scope": v.scope, "version": v.version, "deployed_by": v.deployed_by,
             "deployed_at": v.deployed_at.isoformat(), "sha256": v.content_hash[:12]} for v in versions]  # fmt: skip
    print_rows(rows, ("kind", "name", "scope", "version", "deployed_by", "deployed_at", "sha256"), args.format,
               title="deployed definitions")  # fmt: skip
    return 0


def run_whatif(args: argparse.Namespace, settings: Settings) -> int:
    app = build_application(settings)
    registry = DefinitionRegistry(app)
    deployed = registry.documents()
    proposal = _load_valid(args.files, deployed)
    if proposal is None:
        return 1
    since = args.since.replace(tzinfo=args.since.tzinfo or timezone.utc) if args.since else None
    history, deployed = replayed(stored_history(app), deployed, since=since, tenant=args.tenant)
    result = compare(history, deployed, proposal, app.clock())
    if args.format == "json":
        print_json({"events": result.events, "changed": result.changed, "rows": result.rows(),
                    "running_now": dict(result.running_now)})  # fmt: skip
        return 0
    print_rows(result.rows(), ("measure", "deployed", "proposed", "change"), "table",
               title=f"what if {', '.join(result.changed)} changed: {result.events} stored events replayed, nothing written")  # fmt: skip
    console = Console(soft_wrap=True, highlight=False)
    if result.running_now:
        console.print("Instances running now keep the version they started on:")
        for where, count in sorted(result.running_now.items()):
            console.print(f"  {count} × {where}")
        console.print("New triggers after deployment start the proposed version.")
    else:
        console.print("No instance of the changed processes would be running now.")
    return 0


def yaml_files(paths: list[Path]) -> list[Path] | str:
    """The files named, a folder standing for the *.yaml and *.yml directly in it (sorted); or what is wrong.

    A designer's CI passes the definitions folder; a shell glob would also do, but not on every runner.
    Only the folder's own files: a nested folder may hold drafts or fixtures that are not meant together.
    """
    files: list[Path] = []
    for path in paths:
        if not path.is_dir():
            files.append(path)  # a missing file is reported by the loader, with the others' problems
            continue
        inside = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
        if not inside:
            return f"{path} is a folder with no .yaml or .yml file in it"
        files += inside
    # A file named and also inside a folder named is read once: twice would be two copies of each definition.
    first: dict[Path, Path] = {}
    for file in files:
        first.setdefault(file.resolve(), file)
    return list(first.values())


def run_test(args: argparse.Namespace, settings: Settings) -> int:
    files = yaml_files(args.files)
    if isinstance(files, str):
        return fail(files)
    documents = _load_valid(files)
    if documents is None:
        return 1
    results = run_tests(documents)
    console = Console(soft_wrap=True, highlight=False)
    for result in results:
        mark = "[green]PASS[/]" if result.passed else "[red]FAIL[/]"
        console.print(f"{mark} {result.name} ({result.file})")
        for failure in result.failures:
            console.print(f"     {failure}", markup=False)
    failed = sum(not r.passed for r in results)
    console.print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed or not results else 0


def run_simulate(args: argparse.Namespace, settings: Settings) -> int:
    documents = _load_valid(args.files)
    if documents is None:
        return 1
    try:
        events = [json.loads(line) for line in args.events.read_text().splitlines() if line.strip()]
    except (OSError, ValueError) as error:
        return fail(f"cannot read events from {args.events}: {error}")
    bad = [n for n, e in enumerate(events, 1) if not (isinstance(e, dict) and "type" in e)]
    if bad:
        return fail(f"{args.events}: line(s) {', '.join(map(str, bad[:10]))} are not events with a type")
    times = [datetime.fromisoformat(e["time"]) for e in events if e.get("time")]
    start = args.start or (min(times) if times else datetime.now(timezone.utc))
    sim = Simulation(documents, start if start.tzinfo else start.replace(tzinfo=timezone.utc))
    for n, event in enumerate(events):
        event = {"specversion": "1.0", "source": "/simulate", "id": f"sim-{n + 1}", "tenantid": "acme", **event}
        if event.get("time"):
            sim.advance_to(datetime.fromisoformat(event["time"]))
        sim.publish(event)
    sim.advance(parse_duration(args.horizon))
    rows = [{"time": at.isoformat(), "process": f"{e.process}@{e.version}", "instance": e.instance[:8], "step": e.step or "",
             "what": e.kind, "detail": json.dumps(e.detail, default=str)} for at, e in sim.effects]  # fmt: skip
    if args.format == "json":
        print_json(rows)
    else:
        print_rows(rows, ("time", "process", "instance", "step", "what", "detail"), "table",
                   title=f"{len(events)} events, {len(sim.commands.issued)} commands, {len(sim.emits.emitted)} emitted (nothing written)")  # fmt: skip
    return 0


def run_schema(args: argparse.Namespace, settings: Settings) -> int:
    if args.output is None:
        sys.stdout.write(schema_text())
        return 0
    try:
        args.output.write_text(schema_text(), encoding="utf-8")
    except OSError as error:
        return fail(f"cannot write the schema to {args.output}: {error}")
    return 0
