"""Throughput of the process engine, and the cost of one condition.

What it measures (all in memory, commands recorded rather than executed, so
the figures are the engine's own cost; the live worker adds the store):

- events/s through ``Engine.handle`` with 10, 100 and 1,000 deployed
  definitions. The definitions look like real ones: triggered by one of the
  common event types, with a selective ``when``, then a ``set``, a ``do``
  and a ``wait_for`` on the instance's lead. A service grows by tenants, so
  each tenant has about 20 definitions of its own and 5 platform definitions
  apply to all (10 definitions: 1 tenant; 1,000: 50 tenants). The event
  stream mixes creations (some start instances), status changes (some wake
  waiting instances) and events nothing listens to, spread over the tenants.
  A last row puts all 1,000 definitions in one tenant: the worst case, where
  every event has 200 candidate definitions (no target).
- a bare baseline in the same run: the same events, only converting each
  event into a CEL context and evaluating the trigger condition of every
  definition indexed for it: the unavoidable CEL work, without the engine's
  bookkeeping (instances, waits, commands).
- one condition: ``event.data.source in [...] && event.data.score >= N``
  against a prebuilt context, in µs, next to evaluating it with a plain dict
  (which converts the context on every call).

Targets: at least 5,000 events/s with 100 definitions on 2 cores, at least
80% of that with 1,000, one condition at most 15 µs.

    python benchmarks/engine.py                 # defaults: 20,000 events, 3 rounds
    python benchmarks/engine.py --events 5000 --json
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import cel
from rich.console import Console
from rich.table import Table

from crmflow.processes.compiled import CompiledProcess
from crmflow.processes.engine import Engine, MemoryInstances
from crmflow.processes.expressions import Scope
from crmflow.processes.schema import ProcessDefinition
from crmflow.processes.simulation import RecordingCommands, RecordingEmits

# A multi-tenant deployment grows by tenants: each has about 20 definitions of
# its own, and 5 platform definitions apply to all tenants ("*").
DEFINITIONS_PER_TENANT = 20
PLATFORM_DEFINITIONS = 5
TRIGGERS = ("LeadCreated", "CaseOpened", "OpportunityStageChanged", "FormSubmitted", "WebinarAttended")
SOURCES = ("web", "webinar", "email", "event", "referral", "partner")
START = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
TARGET_100 = 5_000
TARGET_RATIO_1000 = 0.80
TARGET_CONDITION_US = 15.0


def tenants_for(count: int) -> tuple[str, ...]:
    return tuple(f"tenant-{i:03d}" for i in range(max(1, count // DEFINITIONS_PER_TENANT)))


def definition(n: int, rng: random.Random, tenants: tuple[str, ...]) -> ProcessDefinition:
    """A realistic definition: selective trigger, a set, a command, a correlated wait."""
    trigger = TRIGGERS[n % len(TRIGGERS)]
    sources = rng.sample(SOURCES, 1)
    threshold = rng.randint(50, 99)
    return ProcessDefinition.model_validate({
        "apiVersion": "crmflow/v1", "kind": "Process", "name": f"process-{n}", "version": 1,
        "tenant": "*" if n < PLATFORM_DEFINITIONS else tenants[n % len(tenants)],
        "trigger": {"on": [trigger], "when": f"event.data.source in {json.dumps(sources)} && event.data.score >= {threshold}"},
        "vars": {"lead": "event.subject"},
        "steps": [
            {"id": "note", "set": {"hot": "event.data.score >= 80"}},
            {"id": "assign", "do": "lead.assign", "args": {"lead_id": "vars.lead", "owner": f'"team-{n % 7}"'}},
            {"id": "wait", "wait_for": {"on": ["LeadStatusChanged"], "when": "event.subject == vars.lead"}, "timeout": "P2D"},
        ],
    })  # fmt: skip


def events(count: int, rng: random.Random, tenants: tuple[str, ...]) -> list[dict[str, Any]]:
    subjects = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(max(1, count // 4))]
    out = []
    for i in range(count):
        roll = rng.random()
        event_type = rng.choice(TRIGGERS) if roll < 0.6 else ("LeadStatusChanged" if roll < 0.8 else "AccountCostRecorded")
        out.append({
            "specversion": "1.0", "id": f"e-{i}", "source": "/bench", "type": event_type,
            "subject": rng.choice(subjects), "tenantid": rng.choice(tenants), "time": START.isoformat(),
            "data": {"source": rng.choice(SOURCES), "score": rng.randint(0, 100), "status": "working",
                     "name": f"Lead {i}", "company": "Acme", "email": f"lead{i}@example.com"},
        })  # fmt: skip
    return out


def engine_run(definitions: list[ProcessDefinition], stream: list[dict[str, Any]]) -> tuple[float, int, int]:
    commands = RecordingCommands()
    engine = Engine([CompiledProcess(d) for d in definitions], MemoryInstances(), commands, RecordingEmits())
    started = time.perf_counter()
    for i, event in enumerate(stream):
        engine.handle(event, START + timedelta(seconds=i))
    seconds = time.perf_counter() - started
    return len(stream) / seconds, len(commands.issued), len(engine.instances.instances)  # type: ignore[attr-defined]


def bare_run(definitions: list[ProcessDefinition], stream: list[dict[str, Any]]) -> float:
    """Only the CEL work: one context per event, every indexed trigger condition evaluated."""
    index: dict[tuple[str, str], list[Any]] = {}
    for d in definitions:
        for event_type in d.trigger.on:
            index.setdefault((d.tenant, event_type), []).append(cel.compile(d.trigger.when or "true"))
    started = time.perf_counter()
    for i, event in enumerate(stream):
        context = Scope(event, START + timedelta(seconds=i), event["tenantid"]).context
        for program in index.get((event["tenantid"], event["type"]), []) + index.get(("*", event["type"]), []):
            program.execute(context)
    return len(stream) / (time.perf_counter() - started)


def condition_cost(repeats: int = 50_000) -> dict[str, float]:
    program = cel.compile('event.data.source in ["web", "webinar"] && event.data.score >= 40')
    event = events(1, random.Random(1), ("acme",))[0]
    scope = Scope(event, START, "acme")
    started = time.perf_counter()
    for _ in range(repeats):
        program.execute(scope.context)
    prebuilt = (time.perf_counter() - started) / repeats * 1e6
    plain = {"event": event, "vars": {}, "now": START, "tenant": "acme"}
    started = time.perf_counter()
    for _ in range(repeats // 10):
        program.execute(plain)
    per_dict = (time.perf_counter() - started) / (repeats // 10) * 1e6
    started = time.perf_counter()
    for _ in range(repeats // 10):
        Scope(event, START, "acme")
    context_build = (time.perf_counter() - started) / (repeats // 10) * 1e6
    return {"condition_us": prebuilt, "condition_with_dict_us": per_dict, "context_build_us": context_build}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--definitions", default="10,100,1000")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    console = Console(stderr=args.json)
    rows = []
    # (label, definitions, tenants): growth by tenants, and the worst case of one tenant holding them all.
    scenarios = [(f"{c:,}", c, tenants_for(c)) for c in (int(x) for x in args.definitions.split(","))]
    scenarios.append(("1,000 in one tenant", 1000, ("tenant-000",)))
    for label, count, tenants in scenarios:
        stream = events(args.events, random.Random(42), tenants)
        definitions = [definition(n, random.Random(n), tenants) for n in range(count)]
        engine_rates, bare_rates = [], []
        for _ in range(args.rounds):
            rate, issued, instances = engine_run(definitions, stream)
            engine_rates.append(rate)
            bare_rates.append(bare_run(definitions, stream))
        row = {"scenario": label, "definitions": count, "tenants": len(tenants),
               "engine_events_per_s": statistics.median(engine_rates),
               "bare_events_per_s": statistics.median(bare_rates), "commands": issued, "instances": instances}  # fmt: skip
        rows.append(row)
        console.log(f"{label:>20}: {row['engine_events_per_s']:9,.0f} events/s (bare {row['bare_events_per_s']:,.0f}), "
                    f"{issued} commands, {instances} instances")  # fmt: skip
    costs = condition_cost()
    by_count = {r["definitions"]: r["engine_events_per_s"] for r in rows if r["tenants"] > 1 or r["definitions"] < 1000}
    checks = {
        "100 definitions ≥ 5,000 events/s": by_count.get(100, 0) >= TARGET_100 if 100 in by_count else None,
        "1,000 definitions ≥ 80% of 100": (by_count[1000] / by_count[100] >= TARGET_RATIO_1000) if {100, 1000} <= set(by_count) else None,
        "one condition ≤ 15 µs": costs["condition_us"] <= TARGET_CONDITION_US,
    }  # fmt: skip
    report = {"date": datetime.now(timezone.utc).date().isoformat(),
              "events": args.events, "rounds": args.rounds, "rows": rows, "costs": costs, "checks": checks,
              "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}  # fmt: skip
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    table = Table(title=f"Process engine: {args.events:,} events, median of {args.rounds} rounds")
    for column in ("definitions", "tenants", "engine events/s", "bare CEL events/s", "engine/bare", "commands", "instances"):
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(r["scenario"], f"{r['tenants']:,}", f"{r['engine_events_per_s']:,.0f}", f"{r['bare_events_per_s']:,.0f}",
                      f"{r['engine_events_per_s'] / r['bare_events_per_s']:.0%}", f"{r['commands']:,}", f"{r['instances']:,}")  # fmt: skip
    console.print(table)
    console.print(f"one condition: {costs['condition_us']:.2f} µs with a prebuilt context "
                  f"({costs['condition_with_dict_us']:.1f} µs converting a dict each time); "
                  f"building an event's context: {costs['context_build_us']:.1f} µs")  # fmt: skip
    for name, passed in checks.items():
        console.print(f"  {name}: {'[green]PASS[/]' if passed else '[red]FAIL[/]' if passed is False else '–'}")
    console.print(f"peak memory (ru_maxrss): {report['peak_rss_mib']:.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
