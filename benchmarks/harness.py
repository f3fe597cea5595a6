"""What the benchmark scripts share: timing, rounds, fresh stores, the machine line, side-by-side tables, JSON."""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import math
import os
import platform
import pstats
import resource
import secrets
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from psycopg import sql
from rich.console import Console
from rich.table import Table

from crmflow.aggregates.application import CrmApplication
from crmflow.workers.logging import configure_logging

REPO = Path(__file__).resolve().parent.parent
CALLER = "bench"
PARTITIONS = 6  # crmflow's default for the topics it creates
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
Check = tuple[str, bool | None]  # what is judged, and PASS / FAIL / not judged

# Measuring.

def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile: no interpolation, so p99 is a latency that happened."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))] if ordered else float("nan")

def latency_ms(values: Sequence[float], *qs: float) -> dict[str, float]:
    """Percentiles (and the max) of latencies in seconds, as ms to 0.1 ms."""
    out = {f"p{round(q * 100)}_ms": round(percentile(values, q) * 1000, 1) for q in qs}
    return {**out, "max_ms": round(max(values, default=float("nan")) * 1000, 1)}

def peak_rss_mib() -> float:
    # ru_maxrss is in KiB on Linux (bytes on macOS); the peak only ever grows.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024)

@dataclass
class Run:
    """One timed pass: ``count`` things (commands, events, messages) in ``seconds``."""

    count: int
    seconds: float
    cpu_seconds: float = 0.0  # this process, every thread
    events: int | None = None  # events written, where they differ from what is counted
    latencies: dict[str, list[float]] = field(default_factory=dict)  # seconds, by kind (per command, batch...)
    extra: dict[str, float] = field(default_factory=dict)  # reported beside, e.g. a group join

    @property
    def per_s(self) -> float:
        return self.count / self.seconds

    def describe(self) -> str:
        return (f"{self.count:,} in {self.seconds:.2f}s = {self.per_s:,.0f}/s (CPU {self.cpu_seconds / self.seconds:.0%})"
                + "".join(f", {k} {v:.2f}" for k, v in self.extra.items()))  # fmt: skip

class Clock:
    """Wall and CPU time of one timed section; garbage is collected first, not on the section's clock."""

    def __init__(self) -> None:
        gc.collect()
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def stop(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall, time.process_time() - self.cpu

    def run(self, count: int, **kwargs: Any) -> Run:
        return Run(count, *self.stop(), **kwargs)

def each(items: Iterable[Any], fn: Callable[[Any], Any]) -> list[float]:
    """``fn`` of every item, and the seconds each call took."""
    clock, out = time.perf_counter, []
    for item in items:
        t0 = clock()
        fn(item)
        out.append(clock() - t0)
    return out

def paced(items: Sequence[Any], rate: float, fn: Callable[[Any], Any]) -> tuple[list[tuple[float, float]], float]:
    """``fn`` of every item at ``rate`` a second: (monotonic time before, after) per call, and the seconds taken."""
    monotonic, times = time.monotonic, []
    t0 = monotonic() + 0.01
    for i, item in enumerate(items):
        if (delay := t0 + i / rate - monotonic()) > 0:
            time.sleep(delay)
        before = monotonic()
        fn(item)
        times.append((before, monotonic()))
    return times, monotonic() - t0

def wait_until(done: Callable[[], bool], timeout_s: float, check: Callable[[], Any] | None = None) -> bool:
    """Whether ``done()`` came true within ``timeout_s``; ``check()``, between tries, raises to give up early."""
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            return False
        if check is not None:
            check()
        time.sleep(0.02)
    return True

def rotate(items: Sequence[Any], round_: int) -> list[Any]:
    """Who goes first changes every round: none always runs on a warmer cache or right after another's writes."""
    k = round_ % len(items)
    return [*items[k:], *items[:k]]

@dataclass
class Figures:
    """The rounds of one measure (``key``: backend, mode ... and last ``impl``), summarised by their median."""

    key: dict[str, str]
    runs: list[Run] = field(default_factory=list)

    def add(self, run: Run, progress: Console) -> Run:
        self.runs.append(run)
        progress.log(f"{' '.join(self.key.values())} round {len(self.runs)}: {run.describe()}")
        return run

    def as_dict(self) -> dict[str, Any]:
        runs, median, lat = self.runs, statistics.median, {}
        for r in runs:
            for kind, values in r.latencies.items():
                lat.setdefault(kind, []).extend(values)
        every = [x for v in lat.values() for x in v]
        out: dict[str, Any] = {
            **self.key, "rounds": len(runs), "count": runs[0].count, "seconds": round(median(r.seconds for r in runs), 3),
            "per_s": round(median(r.per_s for r in runs), 1), "per_s_rounds": [round(r.per_s, 1) for r in runs],
            "cpu_share": round(median(r.cpu_seconds / r.seconds for r in runs), 3),
        }  # fmt: skip
        if runs[0].events is not None:
            out["events_per_s"] = round(median((r.events or 0) / r.seconds for r in runs), 1)
        if every:
            out["latency_ms"] = {"p50": round(percentile(every, 0.5) * 1000, 3), "count": len(every),
                                 "p99": round(percentile(every, 0.99) * 1000, 3),
                                 **({f"p50 {k}": round(percentile(v, 0.5) * 1000, 3) for k, v in lat.items()}
                                    if len(lat) > 1 else {})}  # fmt: skip
        for k in dict.fromkeys(k for r in runs for k in r.extra):
            out[k] = round(median(r.extra[k] for r in runs if k in r.extra), 3)
        return out

def versus(figures: list[dict[str, Any]], pairs: Sequence[tuple[str, str]], metric: str = "per_s",
           judge: Callable[[dict[str, Any]], list[Check]] | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """Side by side: each measure next to its baseline in the same group (the key but ``impl``), and its checks."""
    by_key, rows = {tuple(v for v in f.values() if isinstance(v, str)): f for f in figures}, []
    for f in figures:
        group = {k: v for k, v in f.items() if isinstance(v, str) and k != "impl"}
        for mine, base in pairs:
            if f["impl"] == mine and (other := by_key.get((*group.values(), base))) is not None:
                row = {**group, "impl": mine, "baseline": base, "per_s": f[metric], "base_per_s": other[metric],
                       "ratio": round(f[metric] / other[metric], 4), "count": f["count"]}  # fmt: skip
                rows.append({**row, "checks": judge(row) if judge else []})
    return rows

# Fresh stores: every run gets its own, so that no run pays for another's leftovers.

class Stores:
    """Fresh databases of one backend: SQLite files in a temp dir, or PostgreSQL databases created and dropped."""

    def __init__(self, name: str, directory: Path, admin_url: str) -> None:
        self.name, self.directory, self.admin_url, self.count = name, directory, admin_url, 0
        # Autocommit: CREATE/DROP DATABASE refuse a transaction. The user must be allowed to create databases.
        self.admin = psycopg.connect(admin_url, autocommit=True) if name == "postgres" else None

    @contextmanager
    def fresh(self) -> Iterator[str]:
        self.count += 1
        if self.admin is None:
            path = self.directory / f"bench-{self.count}.db"
            try:
                yield str(path)
            finally:
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)
            return
        name = sql.Identifier(dbname := f"crmflow_bench_{secrets.token_hex(6)}")
        self.admin.execute(sql.SQL("CREATE DATABASE {}").format(name))
        try:
            self.settle()
            yield urlunsplit(urlsplit(self.admin_url)._replace(path=f"/{dbname}", query=""))
        finally:  # FORCE: a connection a pool failed to close must not leave the database behind
            self.admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))

    @contextmanager
    def app(self) -> Iterator[CrmApplication]:
        """A CrmApplication on a fresh store, closed before the store goes."""
        with self.fresh() as url:
            app = CrmApplication(url)
            try:
                yield app
            finally:
                app.close()

    def settle(self) -> None:
        """Before a timed run: earlier garbage collected; on PostgreSQL, the pages the last run and CREATE DATABASE
        dirtied written now (CHECKPOINT needs superuser or pg_checkpoint; without, runs are just noisier)."""
        if self.admin is not None:
            with suppress(psycopg.errors.InsufficientPrivilege):
                self.admin.execute("CHECKPOINT")
        gc.collect()

    def round_trip_us(self) -> float:
        """PostgreSQL: median µs of a ``SELECT 1``, what every statement pays (crmflow's and a baseline's alike)."""
        return round(statistics.median(each(range(1000), lambda _: self.admin.execute("SELECT 1"))) * 1e6, 1)

    def describe(self, trip_before: float | None) -> str:
        if self.admin is None:
            return f"SQLite {sqlite3.sqlite_version} (file in {self.directory})"
        parts, version_ = urlsplit(self.admin_url), self.admin.execute("SHOW server_version").fetchone()[0]
        return (f"PostgreSQL {version_} at {parts.hostname}:{parts.port or 5432}; SELECT 1 round trip {trip_before} µs "
                f"before its runs, {self.round_trip_us()} µs after")  # fmt: skip

def each_backend(args: argparse.Namespace, report: dict[str, Any]) -> Iterator[Stores]:
    """The stores of each of --backends, described in the report (PostgreSQL with its SELECT 1 round trip
    before and after its runs), and the peak memory after each."""
    report.update(stores={}, peak_rss_mib_after={})
    with tempfile.TemporaryDirectory(prefix="crmflow-bench-") as tmp:
        for name in args.backends:
            s = Stores(name, Path(tmp), args.postgres_url)
            try:
                trip = s.round_trip_us() if s.admin else None
                yield s
                report["stores"][name], report["peak_rss_mib_after"][name] = s.describe(trip), round(peak_rss_mib(), 1)
            finally:
                if s.admin is not None:
                    s.admin.close()

# Observers: processes of their own (as an analyst's query, or another service's consumer), taking no GIL from
# the driver, noting when things arrive.

class Observer:
    """Runs ``target(*args, started, halt, counts, pipe)`` in a process: it counts in shared values as it goes,
    and sends back what it noted when halted (``finish``)."""

    def __init__(self, spawn: Any, target: Callable[..., None], *args: Any, counters: int = 2) -> None:
        self.started, self.halt, self.pipe = spawn.Event(), spawn.Event(), spawn.Pipe(duplex=False)
        self.counts = [spawn.Value("q", 0, lock=False) for _ in range(counters)]
        self.process = spawn.Process(target=target, daemon=True,
                                     args=(*args, self.started, self.halt, self.counts, self.pipe[1]))  # fmt: skip
        self.process.start()
        if not self.started.wait(60):
            raise RuntimeError(f"{target.__name__} did not start within 60 s")

    def wait_for(self, count: int, timeout_s: float, check: Callable[[], Any] | None = None, counter: int = 0) -> bool:
        """Until ``counts[counter]`` reaches ``count``; ``check`` raises if something it depends on died."""
        return wait_until(lambda: self.counts[counter].value >= count, timeout_s, check)

    def finish(self, default: Any = None) -> Any:
        self.halt.set()
        noted = self.pipe[0].recv() if self.pipe[0].poll(60) else default  # read before joining: a child blocks
        self.process.join(10)  # until its (large) message is read
        self.process.terminate()
        return noted

def watch_rows(path: str, table: str, key: str, after: int, poll_s: float, owner_poll_s: float | None, started: Any,
               halt: Any, counts: list[Any], pipe: Any) -> None:  # fmt: skip
    """Note when each row of ``table`` after rowid ``after`` appears (by ``key``) and, with ``owner_poll_s``, when it
    shows an owner. Counts: rows visible, rows assigned."""
    connection = sqlite3.connect(path, isolation_level=None)
    visible, assigned, pending = {}, {}, {}  # pending: rowid → key of the rows seen without an owner, in rowid order
    last, polls, next_owner_poll = after, 0, 0.0
    new_rows = f"SELECT rowid, {key}, {'owner' if owner_poll_s else 'NULL'} FROM {table} WHERE rowid > ? ORDER BY rowid"
    owned = f"SELECT rowid FROM {table} WHERE rowid BETWEEN ? AND ? AND owner IS NOT NULL"
    started.set()
    while not halt.is_set():
        rows = connection.execute(new_rows, (last,)).fetchall()
        now, polls = time.monotonic(), polls + 1
        for rowid, name, owner in rows:
            visible[name], last = now, rowid
            if owner is not None:
                assigned[name] = now
            elif owner_poll_s:
                pending[rowid] = name
        if pending and now >= next_owner_poll:
            found, now = connection.execute(owned, (next(iter(pending)), last)).fetchall(), time.monotonic()
            for (rowid,) in found:
                if (name := pending.pop(rowid, None)) is not None:
                    assigned[name] = now
            next_owner_poll = now + (owner_poll_s or 0)
        counts[0].value, counts[1].value = len(visible), len(assigned)
        time.sleep(poll_s)
    connection.close()
    pipe.send({"visible": visible, "assigned": assigned, "polls": polls})

def watcher(spawn: Any, path: str, table: str, key: str, poll_s: float, owner_poll_s: float | None = None) -> Observer:
    """An Observer of the rows added to a reports table from now on."""
    with sqlite3.connect(path) as connection:
        after = connection.execute(f"SELECT COALESCE(MAX(rowid), 0) FROM {table}").fetchone()[0]
    return Observer(spawn, watch_rows, path, table, key, after, poll_s, owner_poll_s)

# Kafka, bare: what the baselines need beside crmflow's own producer_config and consumer_config.

def create_topic(bootstrap_servers: str, topic: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)])
    finally:
        admin.close()

def topic_reader(bootstrap_servers: str, topic: str, **options: Any) -> KafkaConsumer:
    """A consumer of every partition of ``topic`` from the beginning, in no group (so no join to wait for)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False, **options)
    partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    return consumer

# The machine line, the command line, the output.

def machine(*packages: str, **more: Any) -> dict[str, Any]:
    """Where, and on what code, the figures are measured; taken before the run, so the load average is others'."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout
    try:  # a shared working tree is rarely clean: the product files changed since the commit are named
        commit, changed = git("rev-parse", "--short", "HEAD").strip(), [line[3:] for line in git(
            "status", "--porcelain", "--", "aggregates", "processes", "projections", "workers", "crmflow").splitlines()]
    except (OSError, subprocess.CalledProcessError):
        commit, changed = None, []
    return {"date": datetime.now(UTC).isoformat(timespec="seconds"), "cpus": os.cpu_count(),
            "load_average": [round(x, 2) for x in os.getloadavg()], "python": platform.python_version(),
            "platform": platform.platform(), "sqlite": sqlite3.sqlite_version, "commit": commit, "changed": changed,
            "versions": {p: version(p) for p in packages}, **more}  # fmt: skip

def header(console: Console, title: str, report: dict[str, Any], *lines: str) -> None:
    """The machine line, the code measured, the stores, and what was run."""
    m, c = report["machine"], report["machine"]["changed"]
    changes = f" + {len(c)} changed files ({', '.join(c[:4])}{', …' if len(c) > 4 else ''})" if c else ""
    console.print(f"[bold]{title}[/bold]  {m['date']}  {m['cpus']} CPUs, load average "
                  f"{', '.join(map(str, m['load_average']))}  Python {m['python']}  SQLite {m['sqlite']}  "
                  + "  ".join(f"{p} {v}" for p, v in m["versions"].items()) + f"\n  code: commit {m['commit']}{changes}"
                  + "".join(f"\n  {name}: {desc}" for name, desc in report.get("stores", {}).items())
                  + "".join(f"\n  {line}" for line in lines))  # fmt: skip

def csv(*choices: str) -> Callable[[str], list[str]]:
    """An argparse type: a comma-separated list of some of ``choices``."""
    def parse(text: str) -> list[str]:
        if unknown := set(items := [x for x in text.split(",") if x]) - set(choices):
            raise argparse.ArgumentTypeError(f"unknown {', '.join(sorted(unknown))}: use {', '.join(choices)}")
        return items
    return parse

def at_least(low: int) -> Callable[[str], int]:
    """An argparse type: a whole number, raised to ``low`` if below."""
    return lambda text: max(low, int(text))

def parser(doc: str | None, *, stores: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    p.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH ('-': stdout, tables to stderr)")
    p.add_argument("--strict", action="store_true", help="exit with status 1 if a check or target fails")
    p.add_argument("--profile", action="store_true", help="cProfile the run (figures then run under the profiler): "
                   "crmflow's top 25 functions by cumulative time")  # fmt: skip
    if stores:
        p.add_argument("--backends", type=csv("sqlite", "postgres"), default="sqlite,postgres",
                       help="comma-separated: sqlite,postgres (default both)")  # fmt: skip
        p.add_argument("--postgres-url", default=os.environ.get("CRMFLOW_BENCH_POSTGRES_URL", DEFAULT_ADMIN_URL),
                       help="admin connection that creates and drops the benchmark databases")  # fmt: skip
    return p

def verdict(passed: bool | None) -> str:
    return "[dim]–[/dim]" if passed is None else "[bold green]PASS[/]" if passed else "[bold red]FAIL[/]"

def n(value: float | None, digits: int = 0) -> str:
    """A figure for a table; "–" for what was not measured."""
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:,.{digits}f}"

def table(console: Console, title: str, header: Sequence[str], rows: Iterable[Sequence[Any]], left: int = 1) -> None:
    """The first ``left`` columns are labels, left-aligned; the rest are figures."""
    t = Table(title=title)
    for i, col in enumerate(header):
        t.add_column(col, justify="left" if i < left else "right")
    for row in rows:
        t.add_row(*(str(c) for c in row))
    if t.row_count:
        console.print(t)

def figures_table(console: Console, title: str, figures: list[dict[str, Any]], unit: str = "events") -> None:
    """Every measure's median, its rounds' spread, CPU share, latency percentiles and extra figures."""
    if not figures:
        return
    labels = [k for k, v in figures[0].items() if isinstance(v, str)]
    lat = any("latency_ms" in f for f in figures)
    events = any("events_per_s" in f for f in figures)
    kinds = list(dict.fromkeys(k for f in figures for k in f.get("latency_ms", {}) if k.startswith("p50 ")))
    fixed = ("rounds", "count", "seconds", "per_s", "per_s_rounds", "cpu_share", "events_per_s", "latency_ms")
    extra = [k for k in dict.fromkeys(k for f in figures for k in f) if k not in (*labels, *fixed)]
    header = [*labels, unit, "seconds", f"{unit}/s", "rounds min–max", "µs each", "CPU",
              *(["p50 ms", "p99 ms"] if lat else []), *(["events/s"] if events else []), *kinds, *extra]  # fmt: skip
    rows = []
    for f in figures:
        la, r = f.get("latency_ms", {}), f["per_s_rounds"]
        rows.append([*(f[k] for k in labels), n(f["count"]), n(f["seconds"], 2), n(f["per_s"]),
                     f"{min(r):,.0f}–{max(r):,.0f}", n(1e6 / f["per_s"], 1), f"{f['cpu_share']:.0%}",
                     *([n(la.get("p50"), 2), n(la.get("p99"), 2)] if lat else []),
                     *([n(f.get("events_per_s"))] if events else []), *(n(la.get(k), 2) for k in kinds),
                     *(n(f.get(k), 0 if float(f.get(k) or 0).is_integer() else 2) for k in extra)])  # fmt: skip
    table(console, title, header, rows, left=len(labels))

def versus_table(console: Console, title: str, rows: list[dict[str, Any]], unit: str = "events/s") -> None:
    labels = [k for k, v in rows[0].items() if isinstance(v, str)] if rows else []
    table(console, title, [*labels, unit, f"baseline {unit}", "ratio", "µs each / baseline", "checks"],
          ([*(r[k] for k in labels), n(r["per_s"]), n(r["base_per_s"]), f"{r['ratio']:.1%}",
            f"{1e6 / r['per_s']:.1f} / {1e6 / r['base_per_s']:.1f}", checks_text(r["checks"])] for r in rows),
          left=len(labels))  # fmt: skip

def checks_text(checks: Iterable[Check]) -> str:
    return "; ".join(f"{name}: {verdict(ok)}" for name, ok in checks) or "–"

def main(args: argparse.Namespace, benchmark: Callable[[argparse.Namespace, Console], dict[str, Any]],
         show: Callable[[dict[str, Any], Console], None], *, logging: str = "warning", width: int = 180) -> int:
    """Run a benchmark (under cProfile with --profile), print its report (stderr if the JSON goes to stdout; piped,
    ``width`` wide), write its JSON where --json says. The exit status: with --strict, 1 if a check failed.

    Logging as the CLI configures structlog, at ``logging``: the workers' per-batch logs are debug (no-ops either
    way), their info lines would only interleave with the progress; retries and rejections still show."""
    configure_logging(logging)
    console, progress = Console(stderr=args.json == "-"), Console(stderr=True, log_path=False)
    for c in (console, progress):
        c.width = c.width if c.is_terminal else width
    profiler = cProfile.Profile() if args.profile else None
    with profiler or nullcontext():  # this thread only: not kafka-python's, nor other processes
        report = benchmark(args, progress)
    report["peak_rss_mib"] = round(peak_rss_mib(), 1)
    show(report, console)
    if report.get("checks"):
        console.print("Checks: " + checks_text(report["checks"]))
    after = "".join(f", after {b} {v:.0f} MiB" for b, v in report.get("peak_rss_mib_after", {}).items())
    console.print(f"Peak memory (ru_maxrss of the whole run): {report['peak_rss_mib']:.0f} MiB{after}")
    if args.json:
        text = json.dumps(report, indent=2, default=str) + "\n"
        sys.stdout.write(text) if args.json == "-" else Path(args.json).write_text(text)
    if profiler is not None:
        out = io.StringIO()  # crmflow's own functions: the product's folders, by path
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(r"/(aggregates|processes|projections|"
                                                                                 r"workers|crmflow)/", 25)  # fmt: skip
        console.print("[bold]cProfile of the run above (its figures were measured under the profiler)[/bold]\n"
                      + out.getvalue(), markup=False, highlight=False)  # fmt: skip
    checks = [*report.get("checks", []), *(c for r in report.get("versus", []) for c in r["checks"])]
    return 1 if args.strict and any(ok is False for _, ok in checks) else 0
