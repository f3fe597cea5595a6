"""Write throughput of crmflow's command path, against the bare eventsourcing library.

What it measures, per backend (SQLite in a fresh temp-dir file, PostgreSQL in a
fresh ``crmflow_bench_<random>`` database that is dropped afterwards):

- single: N separate ``CrmApplication.execute`` calls, each its own transaction.
  A realistic lead mix: N/3 ``lead.create``, then ``lead.assign`` and
  ``lead.work`` for each of those leads. Commands/s, events/s, p50/p99 latency.
- batch-create: ``execute_batch`` with batches of 100 (``--batch-size``) ``lead.create``.
- batch-create-assign: batches of 50 ``lead.create`` (caller-chosen ids, so
  that the assigns can name them) followed by 50 ``lead.assign`` of the same
  leads, in one transaction.

Each mode is also run on a plain ``eventsourcing.application.Application`` with
the same persistence settings and the same ``aggregates.lead.Lead`` class, doing
the same writes (and the same reads: one ``repository.get`` per assign/work;
batches are ``app.save(*leads)``). The ratio crmflow/bare is the cost of
crmflow's layer (validation, tenancy, metadata stamping, CloudEvent results) on
top of the library.

Every run gets a fresh SQLite file or PostgreSQL database and an untimed
warm-up; crmflow and bare runs alternate (crmflow first, then bare first, ...)
for ``--rounds`` rounds and the median is reported. Peak memory is the
process's ru_maxrss. Logging is configured as the CLI does (structlog at info).

Targets (marked PASS/FAIL): on SQLite at least 1,500 single commands/s and
10,000 events/s batched; on every backend crmflow at >= 80% of the bare library.

Run it from the repository root, with the project installed:

    python benchmarks/store.py                         # both backends, default sizes
    python benchmarks/store.py --commands 900 --batch-commands 2000 --backends sqlite
    python benchmarks/store.py --json                  # figures as JSON on stdout
    python benchmarks/store.py --profile --backends sqlite   # + cProfile of crmflow's paths

PostgreSQL is reached through ``--postgres-url`` (an admin connection, default
``postgresql://postgres@127.0.0.1:5432/postgres``); the user must be allowed to
create databases.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import os
import platform
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.application import Application
from rich.console import Console
from rich.table import Table

from crmflow.aggregates.application import CommandRequest, CrmApplication
from crmflow.aggregates.lead import Lead
from crmflow.aggregates.store import persistence_env
from common import PostgresStores, SqliteStores, consoles, peak_rss_mib, percentile, verdict
from crmflow.workers.logging import configure_logging

TENANT = "bench"
CALLER = "bench"
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"

# Targets from the performance brief. Absolute ones apply to SQLite only.
SQLITE_SINGLE_COMMANDS_PER_S = 1_500
SQLITE_BATCH_EVENTS_PER_S = 10_000
MIN_RATIO = 0.80

MODES = ("single", "batch-create", "batch-create-assign")


# Figures.


@dataclass
class Run:
    """One timed run of one workload on one fresh store."""

    commands: int
    events: int
    seconds: float
    # Per-command (single) or per-batch (batched) latencies, by command kind.
    latencies: dict[str, list[float]] = field(default_factory=dict)

    @property
    def commands_per_s(self) -> float:
        return self.commands / self.seconds

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds

    def all_latencies(self) -> list[float]:
        return [x for values in self.latencies.values() for x in values]


@dataclass
class Figures:
    """The rounds of one (backend, mode, implementation), summarised by their median."""

    backend: str
    mode: str
    impl: str
    runs: list[Run] = field(default_factory=list)

    @property
    def commands_per_s(self) -> float:
        return statistics.median(r.commands_per_s for r in self.runs)

    @property
    def events_per_s(self) -> float:
        return statistics.median(r.events_per_s for r in self.runs)

    def percentile_ms(self, q: float, kind: str | None = None) -> float:
        values = [x for r in self.runs for x in (r.latencies.get(kind, []) if kind else r.all_latencies())]
        return percentile(values, q) * 1000

    def as_dict(self) -> dict[str, Any]:
        kinds = sorted({k for r in self.runs for k in r.latencies})
        return {
            "backend": self.backend,
            "mode": self.mode,
            "impl": self.impl,
            "rounds": len(self.runs),
            "commands_per_run": self.runs[0].commands,
            "events_per_run": self.runs[0].events,
            "commands_per_s": round(self.commands_per_s, 1),
            "events_per_s": round(self.events_per_s, 1),
            "commands_per_s_rounds": [round(r.commands_per_s, 1) for r in self.runs],
            "latency_ms": {
                "p50": round(self.percentile_ms(0.50), 3),
                "p99": round(self.percentile_ms(0.99), 3),
                "p50_by_kind": {k: round(self.percentile_ms(0.50, k), 3) for k in kinds},
            },
        }


# Inputs, built before the clock starts: they are what a caller sends, not work.


def lead_fields(i: int) -> dict[str, Any]:
    return {"name": f"Lead {i}", "company": f"Company {i % 997}", "source": "web"}


def owner_of(i: int) -> str:
    return f"rep-{i % 25}"


# crmflow workloads.


def crm_single(app: CrmApplication, n: int) -> Run:
    """n/3 leads: create each, then assign each, then start working each."""
    leads = max(1, n // 3)
    creates = [CommandRequest("lead.create", TENANT, lead_fields(i), caller=CALLER) for i in range(leads)]
    latencies: dict[str, list[float]] = {"create": [], "assign": [], "work": []}
    ids: list[str] = []
    events = 0
    clock = time.perf_counter
    start = clock()
    for request in creates:
        t0 = clock()
        result = app.execute(request)
        latencies["create"].append(clock() - t0)
        ids.append(str(result.aggregate_id))
        events += len(result.stored_events)
    # Separate passes, so that assign and work load leads from a table of N/3
    # leads rather than the one just written.
    for i, lead_id in enumerate(ids):
        t0 = clock()
        result = app.execute(
            CommandRequest("lead.assign", TENANT, {"lead_id": lead_id, "owner": owner_of(i)}, caller=CALLER)
        )
        latencies["assign"].append(clock() - t0)
        events += len(result.stored_events)
    for lead_id in ids:
        t0 = clock()
        result = app.execute(CommandRequest("lead.work", TENANT, {"lead_id": lead_id}, caller=CALLER))
        latencies["work"].append(clock() - t0)
        events += len(result.stored_events)
    seconds = clock() - start
    return Run(3 * leads, events, seconds, latencies)


def crm_batch_create(app: CrmApplication, n: int, batch_size: int) -> Run:
    batches = [
        [CommandRequest("lead.create", TENANT, lead_fields(b * batch_size + i), caller=CALLER)
         for i in range(batch_size)]
        for b in range(max(1, n // batch_size))
    ]  # fmt: skip
    return _time_crm_batches(app, batches, "batch")


def crm_batch_create_assign(app: CrmApplication, n: int, batch_size: int) -> Run:
    """Each batch creates batch_size/2 leads and assigns the same leads.

    The assigns must name the leads, so the creates choose their ids
    (``lead_id``), as a caller creating idempotently would.
    """
    half = max(1, batch_size // 2)
    batches = []
    for b in range(max(1, n // (2 * half))):
        ids = [str(uuid4()) for _ in range(half)]
        creates = [
            CommandRequest("lead.create", TENANT, {**lead_fields(b * half + i), "lead_id": lead_id},
                           caller=CALLER)
            for i, lead_id in enumerate(ids)
        ]  # fmt: skip
        assigns = [
            CommandRequest("lead.assign", TENANT, {"lead_id": lead_id, "owner": owner_of(i)}, caller=CALLER)
            for i, lead_id in enumerate(ids)
        ]
        batches.append(creates + assigns)
    return _time_crm_batches(app, batches, "batch")


def _time_crm_batches(app: CrmApplication, batches: list[list[CommandRequest]], kind: str) -> Run:
    latencies: list[float] = []
    events = 0
    clock = time.perf_counter
    start = clock()
    for batch in batches:
        t0 = clock()
        results = app.execute_batch(batch)
        latencies.append(clock() - t0)
        events += sum(len(r.stored_events) for r in results)
    seconds = clock() - start
    return Run(sum(len(b) for b in batches), events, seconds, {kind: latencies})


# Bare eventsourcing workloads: the same writes with the same aggregate class.


class Bare(Application):
    """The library with nothing added: the baseline crmflow is compared with."""


def lead_kwargs(i: int) -> dict[str, Any]:
    fields = lead_fields(i)
    return {"tenant_id": TENANT, **fields, "email": None, "campaign_id": None, "owner": None, "score": 0}


def stamp_like_crmflow(aggregate: Lead, command: str, stamp: bool) -> Lead:
    """The "same writes" baseline: the metadata crmflow stores with every event.

    The issue asks for each stored event to carry its metadata, so the rows
    crmflow writes are larger than the library's plain events. Stamping the
    same metadata here makes the bare library write identical rows, which
    isolates the cost of crmflow's own layer from the cost of storing more.
    """
    if stamp:
        meta = {"tenant": TENANT, "command": command, "command_id": str(uuid4()), "caller": CALLER}
        for event in aggregate.pending_events:
            if "meta" not in vars(event):  # a batch's earlier command stamped its own
                object.__setattr__(event, "meta", meta)
    return aggregate


def bare_single(app: Bare, n: int, stamp: bool = False) -> Run:
    leads = max(1, n // 3)
    inputs = [lead_kwargs(i) for i in range(leads)]
    latencies: dict[str, list[float]] = {"create": [], "assign": [], "work": []}
    ids: list[UUID] = []
    clock = time.perf_counter
    start = clock()
    for kwargs in inputs:
        t0 = clock()
        lead = stamp_like_crmflow(Lead(**kwargs), "lead.create", stamp)
        app.save(lead)
        latencies["create"].append(clock() - t0)
        ids.append(lead.id)
    # Reload for both assign and work: each crmflow command loads its lead,
    # so the baseline does the same reads.
    for i, lead_id in enumerate(ids):
        t0 = clock()
        lead = app.repository.get(lead_id)
        lead.assign(owner_of(i))
        app.save(stamp_like_crmflow(lead, "lead.assign", stamp))
        latencies["assign"].append(clock() - t0)
    for lead_id in ids:
        t0 = clock()
        lead = app.repository.get(lead_id)
        lead.start_working()
        app.save(stamp_like_crmflow(lead, "lead.work", stamp))
        latencies["work"].append(clock() - t0)
    seconds = clock() - start
    return Run(3 * leads, 3 * leads, seconds, latencies)


def bare_batch_create(app: Bare, n: int, batch_size: int, stamp: bool = False) -> Run:
    batches = [
        [lead_kwargs(b * batch_size + i) for i in range(batch_size)] for b in range(max(1, n // batch_size))
    ]
    return _time_bare_batches(app, batches, assign=False, stamp=stamp)


def bare_batch_create_assign(app: Bare, n: int, batch_size: int, stamp: bool = False) -> Run:
    # The same events as crmflow's batch: a LeadCreated and a LeadAssigned per
    # lead. The library's own uuid4 ids need no "is this id free?" read.
    half = max(1, batch_size // 2)
    batches = [[lead_kwargs(b * half + i) for i in range(half)] for b in range(max(1, n // (2 * half)))]
    return _time_bare_batches(app, batches, assign=True, stamp=stamp)


def _time_bare_batches(app: Bare, batches: list[list[dict[str, Any]]], *, assign: bool, stamp: bool) -> Run:
    latencies: list[float] = []
    clock = time.perf_counter
    start = clock()
    for batch in batches:
        t0 = clock()
        leads = [stamp_like_crmflow(Lead(**kwargs), "lead.create", stamp) for kwargs in batch]
        if assign:
            for i, lead in enumerate(leads):
                lead.assign(owner_of(i))
                stamp_like_crmflow(lead, "lead.assign", stamp)
        app.save(*leads)
        latencies.append(clock() - t0)
    seconds = clock() - start
    per_lead = 2 if assign else 1
    total = sum(len(b) for b in batches) * per_lead
    return Run(total, total, seconds, {"batch": latencies})


WORKLOADS: dict[tuple[str, str], Callable[..., Run]] = {
    ("crmflow", "single"): crm_single,
    ("crmflow", "batch-create"): crm_batch_create,
    ("crmflow", "batch-create-assign"): crm_batch_create_assign,
    ("bare", "single"): bare_single,
    ("bare", "batch-create"): bare_batch_create,
    ("bare", "batch-create-assign"): bare_batch_create_assign,
    ("bare+meta", "single"): partial(bare_single, stamp=True),
    ("bare+meta", "batch-create"): partial(bare_batch_create, stamp=True),
    ("bare+meta", "batch-create-assign"): partial(bare_batch_create_assign, stamp=True),
}
IMPLS = ("crmflow", "bare", "bare+meta")


# Stores: every run gets a fresh one, so that crmflow and bare write into tables
# of the same size, and no run pays for another's leftovers.


def open_app(impl: str, url: str) -> Application:
    if impl == "crmflow":
        return CrmApplication(url)
    return Bare(env=persistence_env(url))  # bare and bare+meta


def timed_run(stores: Any, impl: str, mode: str, n: int, batch_size: int, warmup: int) -> Run:
    """One fresh store, a warm-up on it, then the timed workload."""
    workload = WORKLOADS[(impl, mode)]
    args = () if mode == "single" else (batch_size,)
    with stores.fresh() as url:
        app = open_app(impl, url)
        try:
            # Warm-up: first queries, prepared statements, pydantic and
            # eventsourcing caches, connection set-up; not timed.
            workload(app, warmup if mode == "single" else 2 * batch_size, *args)
            # Garbage from earlier runs is collected now, not on this run's clock.
            gc.collect()
            return workload(app, n, *args)
        finally:
            # Close before the database is dropped.
            app.close()


# The benchmark.


@dataclass
class Options:
    commands: int
    batch_commands: int
    batch_size: int
    rounds: int
    warmup: int
    backends: list[str]
    modes: list[str]
    postgres_url: str


def run_backend(stores: Any, opts: Options, progress: Console) -> list[Figures]:
    figures = []
    for mode in opts.modes:
        n = opts.commands if mode == "single" else opts.batch_commands
        impls = [Figures(stores.name, mode, impl) for impl in IMPLS]
        for round_ in range(opts.rounds):
            # Rotate who goes first, so that none always runs right after
            # another's disk writes (WAL, checkpoints) or on a warmer cache.
            order = impls[round_ % len(impls):] + impls[: round_ % len(impls)]
            for fig in order:
                run = timed_run(stores, fig.impl, mode, n, opts.batch_size, opts.warmup)
                fig.runs.append(run)
                progress.log(
                    f"{stores.name:8} {mode:20} {fig.impl:9} round {round_ + 1}: "
                    f"{run.commands_per_s:9,.0f} cmd/s {run.events_per_s:9,.0f} ev/s ({run.seconds:.2f}s)"
                )
        figures += impls
    return figures


def benchmark(opts: Options, progress: Console) -> dict[str, Any]:
    figures: list[Figures] = []
    stores_seen: dict[str, str] = {}
    rss_after: dict[str, float] = {}
    for backend in opts.backends:
        if backend == "sqlite":
            with tempfile.TemporaryDirectory(prefix="crmflow-bench-") as tmp:
                stores: Any = SqliteStores(Path(tmp))
                stores_seen[backend] = stores.describe()
                figures += run_backend(stores, opts, progress)
        elif backend == "postgres":
            stores = PostgresStores(opts.postgres_url)
            try:
                stores_seen[backend] = stores.describe()
                figures += run_backend(stores, opts, progress)
            finally:
                stores.close()
        rss_after[backend] = round(peak_rss_mib(), 1)
    return {
        "date": datetime.now(timezone.utc).date().isoformat(),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "eventsourcing": version("eventsourcing"),
            "stores": stores_seen,
        },
        "options": {
            "commands": opts.commands,
            "batch_commands": opts.batch_commands,
            "batch_size": opts.batch_size,
            "rounds": opts.rounds,
            "warmup": opts.warmup,
        },
        "figures": [f.as_dict() for f in figures],
        "comparisons": comparisons(figures),
        "peak_rss_mib": round(peak_rss_mib(), 1),
        "peak_rss_mib_after_backend": rss_after,
    }


def comparisons(figures: list[Figures]) -> list[dict[str, Any]]:
    """crmflow against bare and against the targets, per backend and mode."""
    by_key = {(f.backend, f.mode, f.impl): f for f in figures}
    rows = []
    for f in figures:
        if f.impl != "crmflow":
            continue
        bare = by_key[(f.backend, f.mode, "bare")]
        same_writes = by_key[(f.backend, f.mode, "bare+meta")]
        # Single commands are judged by commands/s, batches by events/s (what
        # a batch is for). The ratio is the same either way for single.
        metric = "commands_per_s" if f.mode == "single" else "events_per_s"
        crm_value = getattr(f, metric)
        bare_value, same_value = getattr(bare, metric), getattr(same_writes, metric)
        target = None
        if f.backend == "sqlite":
            target = SQLITE_SINGLE_COMMANDS_PER_S if f.mode == "single" else SQLITE_BATCH_EVENTS_PER_S
        # The 80% check is against the library writing the same rows
        # (bare+meta); the ratio to plain events is shown beside it.
        ratio = crm_value / same_value
        rows.append({
            "backend": f.backend,
            "mode": f.mode,
            "metric": metric,
            "crmflow": round(crm_value, 1),
            "bare": round(bare_value, 1),
            "bare_meta": round(same_value, 1),
            "ratio_plain": round(crm_value / bare_value, 4),
            "ratio": round(ratio, 4),
            "target": target,
            "target_pass": None if target is None else crm_value >= target,
            "ratio_pass": ratio >= MIN_RATIO,
        })  # fmt: skip
    return rows


# Output.


def print_report(report: dict[str, Any], console: Console) -> None:
    m, o = report["machine"], report["options"]
    console.print(
        f"[bold]crmflow store benchmark[/bold]  {report['date']}  {m['cpus']} CPUs  Python {m['python']}  "
        f"eventsourcing {m['eventsourcing']}\n"
        + "".join(f"  {name}: {desc}\n" for name, desc in m["stores"].items())
        + f"  single: {o['commands']} commands/run; batched: {o['batch_commands']} commands/run "
        f"in batches of {o['batch_size']}; {o['rounds']} rounds (median), warm-up {o['warmup']}"
    )

    throughput = Table(title="Throughput (median of rounds)")
    cols = ("backend", "mode", "impl", "commands/s", "rounds min–max", "events/s", "p50 ms", "p99 ms",
            "p50 create/assign/work ms")  # fmt: skip
    for col in cols:
        throughput.add_column(col, justify="right" if col[0] in "cerp" else "left")
    for f in report["figures"]:
        lat = f["latency_ms"]
        kinds = lat["p50_by_kind"]
        by_kind = " / ".join(f"{kinds[k]:.2f}" for k in ("create", "assign", "work") if k in kinds)
        rounds = f["commands_per_s_rounds"]
        throughput.add_row(
            f["backend"], f["mode"], f["impl"], f"{f['commands_per_s']:,.0f}",
            f"{min(rounds):,.0f}–{max(rounds):,.0f}", f"{f['events_per_s']:,.0f}",
            f"{lat['p50']:.2f}", f"{lat['p99']:.2f}", by_kind or "(per batch)",
        )  # fmt: skip
    console.print(throughput)

    checks = Table(title="crmflow vs bare eventsourcing (bare+meta: the same rows), and targets")
    cols = ("backend", "mode", "metric", "crmflow", "bare", "bare+meta", "crmflow/bare", "crmflow/bare+meta",
            "ratio ≥ 80%", "target", "target")  # fmt: skip
    for col in cols:
        checks.add_column(col, justify="right" if col[0] in "cb" else "left")
    for c in report["comparisons"]:
        checks.add_row(
            c["backend"], c["mode"], c["metric"].replace("_per_s", "/s"), f"{c['crmflow']:,.0f}",
            f"{c['bare']:,.0f}", f"{c['bare_meta']:,.0f}", f"{c['ratio_plain']:.1%}", f"{c['ratio']:.1%}",
            verdict(c["ratio_pass"]),
            f"≥ {c['target']:,}" if c["target"] else "none", verdict(c["target_pass"]),
        )  # fmt: skip
    console.print(checks)
    rss = ", ".join(f"after {b}: {v:.0f} MiB" for b, v in report["peak_rss_mib_after_backend"].items())
    console.print(f"Peak memory (ru_maxrss): {report['peak_rss_mib']:.0f} MiB ({rss})")


def profile_paths(opts: Options, console: Console) -> None:
    """cProfile of crmflow's single-command and batch paths on SQLite: where the time goes."""
    paths = [
        (f"single commands ({opts.commands})", lambda app, n: crm_single(app, n), opts.commands, opts.warmup),
        (f"execute_batch, {opts.batch_size} lead.create per batch ({opts.batch_commands // 4} commands)",
         lambda app, n: crm_batch_create(app, n, opts.batch_size), opts.batch_commands // 4,
         2 * opts.batch_size),
    ]  # fmt: skip
    for title, workload, n, warmup in paths:
        with tempfile.TemporaryDirectory(prefix="crmflow-bench-") as tmp:
            app = CrmApplication(str(Path(tmp) / "profile.db"))
            try:
                workload(app, warmup)
                profiler = cProfile.Profile()
                profiler.enable()
                workload(app, n)
                profiler.disable()
            finally:
                app.close()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(15)
        console.print(f"[bold]cProfile, crmflow on SQLite: {title}, top 15 cumulative[/bold]")
        console.print(out.getvalue(), markup=False, highlight=False)


def parse_args(argv: list[str] | None) -> tuple[Options, argparse.Namespace]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--commands", type=int, default=3000, help="single commands per run (default 3000)")
    add("--batch-commands", type=int, default=20000, help="batched commands per run (default 20000)")
    add("--batch-size", type=int, default=100, help="commands per execute_batch (default 100)")
    add("--rounds", type=int, default=3, help="runs per implementation and mode; median (default 3)")
    add("--warmup", type=int, default=150, help="untimed single commands per run (default 150)")
    add("--backends", default="sqlite,postgres", help="comma-separated: sqlite,postgres")
    add("--modes", default=",".join(MODES), help=f"comma-separated: {','.join(MODES)}")
    add("--postgres-url", default=os.environ.get("CRMFLOW_BENCH_POSTGRES_URL", DEFAULT_ADMIN_URL),
        help="admin connection used to create and drop the benchmark databases")  # fmt: skip
    add("--json", action="store_true", help="print the figures as JSON instead of tables")
    add("--profile", action="store_true", help="also cProfile the single and batch paths on SQLite")
    add("--strict", action="store_true", help="exit with status 1 if any check fails")
    args = parser.parse_args(argv)
    modes = [m for m in args.modes.split(",") if m]
    if unknown := set(modes) - set(MODES):
        parser.error(f"unknown mode(s) {', '.join(sorted(unknown))}")
    backends = [b for b in args.backends.split(",") if b]
    if unknown := set(backends) - {"sqlite", "postgres"}:
        parser.error(f"unknown backend(s) {', '.join(sorted(unknown))}: use sqlite and/or postgres")
    opts = Options(
        commands=args.commands, batch_commands=args.batch_commands, batch_size=args.batch_size,
        rounds=max(1, args.rounds), warmup=args.warmup, backends=backends,
        modes=modes, postgres_url=args.postgres_url,
    )  # fmt: skip
    return opts, args


def main(argv: list[str] | None = None) -> int:
    opts, args = parse_args(argv)
    # crmflow logs every command at debug level; the CLI configures structlog
    # at info, which turns that call into a no-op. Unconfigured, structlog
    # would print every command to stdout and the benchmark would time the terminal.
    configure_logging("info")
    console, progress = consoles()
    report = benchmark(opts, progress)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report, console)
    if args.profile:
        profile_paths(opts, progress if args.json else console)
    failed = any(c["ratio_pass"] is False or c["target_pass"] is False for c in report["comparisons"])
    return 1 if args.strict and failed else 0


if __name__ == "__main__":
    sys.exit(main())
