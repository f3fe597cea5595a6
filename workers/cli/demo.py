"""crmflow demo: the whole service on this machine, a generated workload, then the reports."""

from __future__ import annotations

import argparse
import os
import tempfile
from datetime import date
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from crmflow.projections.reports import REPORTS
from crmflow.workers.cli.output import fail, print_rows
from crmflow.workers.config import Settings
from crmflow.workers.demo.run import LOG_FILE, DemoError, DemoOptions, DemoResult, run_demo
from crmflow.workers.demo.workload import SIZES
from crmflow.workers.logging import configure_logging

RAW = argparse.RawDescriptionHelpFormatter
# What `crmflow demo` prints by default, in this order. A new report is shown by adding its name to the last
# line (as products, activities and duplicates were); e.g. "profile", "profitability", "segments".
SHOWN_REPORTS = (
    "pipeline", "forecast", "win-rate", "funnel", "campaigns", "sla", "faq", "accounts", "instances",
    "products", "activities", "duplicates", "profile", "profitability", "segments", "cross-sell",
)  # fmt: skip


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    demo = sub.add_parser(
        "demo", help="run the whole service locally on a generated workload, then print the reports",
        formatter_class=RAW,
        epilog="examples:\n  crmflow demo\n  crmflow demo --size small --seed 42\n"
               "  crmflow demo --data-dir ./demo-data   # keep it, then:\n"
               "  crmflow --database-url ./demo-data/crmflow.db query pipeline --tenant acme\n"
               "  crmflow demo --size small --serve   # then the web console on its data, with sign-in links\n"
               "  crmflow demo --bootstrap-servers 127.0.0.1:9092   # on Apache Kafka instead of the bundled broker\n\n"
               "sizes:\n" + "\n".join(f"  {name:7} {s.tenants} tenants, {s.days} simulated days, per tenant and day "
                                     f"~{s.leads_per_day:g} leads, ~{s.forms_per_day:g} web forms, "
                                     f"~{s.cases_per_day:g} cases" for name, s in SIZES.items()),
    )  # fmt: skip
    demo.add_argument("--size", choices=sorted(SIZES), default="medium", help="how much happens (default medium)")
    demo.add_argument("--seed", type=int, default=7, help="seed of the generated workload (default 7): "
                      "the same seed and start do the same work and print the same reports")  # fmt: skip
    demo.add_argument("--start", type=date.fromisoformat, metavar="YYYY-MM-DD",
                      help="first simulated day (UTC); default: the Monday that lets the simulated days "
                      "end before today")  # fmt: skip
    demo.add_argument("--data-dir", type=Path, help="keep the store and read models here (a new or empty "
                      "directory) for `crmflow query` afterwards; default: a temporary directory, removed")  # fmt: skip
    demo.add_argument("--days", type=int, help="simulated days (overrides the size)")
    demo.add_argument("--tenants", type=int, choices=range(1, 6), metavar="1-5", help="tenants (overrides the size)")
    demo.add_argument("--bootstrap-servers", metavar="HOST:PORT", help="use this Kafka cluster (e.g. Apache Kafka) "
                      "instead of starting the bundled broker; the demo creates topics of its own there")  # fmt: skip
    demo.add_argument("--reports", default="all", help="comma-separated reports to print for the first tenant "
                      f"(default all: {', '.join(SHOWN_REPORTS)}); 'none' for none")  # fmt: skip
    demo.add_argument("--serve", action="store_true", help="keep the data and serve the web console on it at the "
                      "end (crmflow serve; prints the address and sign-in links; Ctrl-C stops it)")  # fmt: skip
    demo.add_argument("--port", type=int, default=8000, help="the console's port with --serve (default 8000)")
    demo.set_defaults(run=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    wanted = SHOWN_REPORTS if args.reports == "all" else () if args.reports == "none" else tuple(args.reports.split(","))
    unknown = [name for name in wanted if name not in REPORTS]
    if unknown:
        return fail(f"unknown report(s) {', '.join(unknown)}; choose from {', '.join(SHOWN_REPORTS)}")
    if args.days is not None and args.days < 1:
        return fail("--days must be at least 1")
    err = Console(stderr=True, highlight=False)
    if args.serve and args.data_dir is None:  # the console needs the data after the run: keep it
        args.data_dir = Path(tempfile.mkdtemp(prefix="crmflow-demo-"))
    log_path = args.data_dir / LOG_FILE if args.data_dir else new_log_file()
    options = DemoOptions(size=args.size, seed=args.seed, data_dir=args.data_dir, days=args.days, tenants=args.tenants,
                          start=args.start, bootstrap_servers=args.bootstrap_servers)  # fmt: skip
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("hours"),
                        TimeElapsedColumn(), console=err, transient=False)  # fmt: skip
    task = progress.add_task("starting", total=None)

    def on_hour(done: int, total: int, now: object, stats: dict[str, int]) -> None:
        progress.update(task, completed=done, total=total, description=(
            f"{now:%a %d %b %H:%M} · {stats.get('commands', 0):,} commands · {stats.get('inbound', 0):,} inbound events"))

    with _log_file(log_path, settings.log_level), progress:
        try:
            result = run_demo(options, on_hour=on_hour, on_status=lambda m: progress.update(task, description=m))
        except DemoError as error:
            progress.stop()
            return fail(f"{error} (logs: {log_path})")
    _print_result(result, wanted, err)
    err.print(f"Logs (structlog JSON): {log_path}")
    if args.serve:
        from crmflow.workers.console.demo import serve_demo

        return serve_demo(result, settings, args.port, err)
    return 0


def new_log_file() -> Path:
    """A log file of this run's own in the temp directory, kept after the run (the temporary data directory
    is removed): two demos at once never write into one file, and a failed run's log is still there."""
    descriptor, name = tempfile.mkstemp(prefix="crmflow-demo-", suffix=".log")
    os.close(descriptor)
    return Path(name)


class _log_file:
    """JSON logs go to a file while the progress bar owns the terminal."""

    def __init__(self, path: Path, level: str) -> None:
        self.path = path
        self.level = level

    def __enter__(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.stream = self.path.open("a", encoding="utf-8")
        configure_logging(self.level, self.stream)

    def __exit__(self, *exc: object) -> None:
        configure_logging(self.level)
        self.stream.close()


def _print_result(result: DemoResult, wanted: tuple[str, ...], err: Console) -> None:
    stats = result.stats
    err.print(
        f"[bold green]done[/]: {len(result.tenants)} tenants ({', '.join(result.tenants)}), {result.simulated_hours} "
        f"simulated hours in {result.seconds:.1f} s; {stats.get('commands', 0):,} commands by users "
        f"({stats.get('refused', 0):,} refused by the domain), {stats.get('inbound', 0):,} events from other "
        f"services, {result.stored_events:,} events stored in all"
    )  # fmt: skip
    first = result.tenants[0]
    for name in wanted:
        report = REPORTS[name]
        print_rows(result.reports[first][name], report.columns, "table", title=f"{name} · {first}: {report.summary}")
    if result.kept:
        err.print(f"The data is kept in {result.directory}. Query it, for example:\n"
                  f"  crmflow --database-url {result.database_url} query sla --tenant {result.tenants[-1]}")  # fmt: skip
    else:
        err.print("The data was in a temporary directory and is gone; keep it next time with --data-dir DIR.")
