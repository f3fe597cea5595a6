"""Events through the process engine with 10, 100 and 1,000 deployed definitions (and 1,000 in one tenant), and the cost of one condition.

In memory, commands recorded, not executed; next to the engine without its trigger index (every
condition evaluated) and a bare loop doing only the unavoidable CEL work.

    python benchmarks/engine.py --events 5000 --rounds 1   # quick
"""

from __future__ import annotations

import json
import random
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import cel
import harness
from harness import Clock, Figures, Run
from rich.console import Console

from crmflow.processes.compiled import CompiledProcess
from crmflow.processes.engine import Engine, MemoryInstances
from crmflow.processes.event_reads import NOTHING, EventReads
from crmflow.processes.expressions import Scope, compile_expression
from crmflow.processes.schema import ProcessDefinition
from crmflow.processes.simulation import RecordingCommands, RecordingEmits

# A multi-tenant deployment grows by tenants: each has about 20 definitions of its own, 5 apply to all ("*").
DEFINITIONS_PER_TENANT = 20
PLATFORM_DEFINITIONS = 5
TRIGGERS = ("LeadCreated", "CaseOpened", "OpportunityStageChanged", "FormSubmitted", "WebinarAttended")
SOURCES = ("web", "webinar", "email", "event", "referral", "partner")
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TARGET_100, TARGET_RATIO_1000, TARGET_CONDITION_US, TARGET_ONE_TENANT = 5_000, 0.80, 15.0, 5_000
ONE_TENANT = "1,000 in one tenant"


class EveryTrigger(Engine):
    """The engine without its trigger index: every condition of the event's type evaluated (the "before")."""

    def _candidates(self, slot: tuple[str, str], event: dict[str, Any]) -> list[CompiledProcess]:
        return list(self.triggers.get(slot, []))


def definition(n: int, rng: random.Random, tenants: tuple[str, ...]) -> ProcessDefinition:
    """A realistic definition: selective trigger, a set, a command, a correlated wait."""
    when = f"event.data.source in {json.dumps(rng.sample(SOURCES, 1))} && event.data.score >= {rng.randint(50, 99)}"
    return ProcessDefinition.model_validate({
        "apiVersion": "crmflow/v1", "kind": "Process", "name": f"process-{n}", "version": 1,
        "tenant": "*" if n < PLATFORM_DEFINITIONS else tenants[n % len(tenants)],
        "trigger": {"on": [TRIGGERS[n % len(TRIGGERS)]], "when": when},
        "vars": {"lead": "event.subject"},
        "steps": [
            {"id": "note", "set": {"hot": "event.data.score >= 80"}},
            {"id": "assign", "do": "lead.assign", "args": {"lead_id": "vars.lead", "owner": f'"team-{n % 7}"'}},
            {"id": "wait", "wait_for": {"on": ["LeadStatusChanged"], "when": "event.subject == vars.lead"},
             "timeout": "P2D"},
        ],
    })  # fmt: skip

def events(count: int, rng: random.Random, tenants: tuple[str, ...]) -> list[dict[str, Any]]:
    """Creations (some start instances), status changes (some wake instances), events nothing listens to."""
    subjects, out = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(max(1, count // 4))], []
    for i in range(count):
        roll = rng.random()
        event_type = rng.choice(TRIGGERS) if roll < 0.6 else "LeadStatusChanged" if roll < 0.8 else "AccountCostRecorded"
        out.append({
            "specversion": "1.0", "id": f"e-{i}", "source": "/bench", "type": event_type,
            "subject": rng.choice(subjects), "tenantid": rng.choice(tenants), "time": START.isoformat(),
            "data": {"source": rng.choice(SOURCES), "score": rng.randint(0, 100), "status": "working",
                     "name": f"Lead {i}", "company": "Acme", "email": f"lead{i}@example.com"},
        })  # fmt: skip
    return out

def engine_run(definitions: list[ProcessDefinition], stream: list[dict[str, Any]],
               kind: type[Engine] = Engine) -> Run:  # fmt: skip
    commands = RecordingCommands()
    engine = kind([CompiledProcess(d) for d in definitions], MemoryInstances(), commands, RecordingEmits())
    clock = Clock()
    for i, event in enumerate(stream):
        engine.handle(event, START + timedelta(seconds=i))
    return clock.run(len(stream), extra={"commands": len(commands.issued),
                                         "instances": len(engine.instances.instances)})  # type: ignore[attr-defined]

def bare_run(definitions: list[ProcessDefinition], stream: list[dict[str, Any]]) -> Run:
    """Only the CEL work: one context per event (of the fields the conditions read), every trigger condition
    indexed for it evaluated."""
    index: dict[tuple[str, str], list[Any]] = {}
    reads: dict[str, EventReads] = {}
    for d in definitions:
        for event_type in d.trigger.on:
            index.setdefault((d.tenant, event_type), []).append(cel.compile(d.trigger.when or "true"))
            reads[event_type] = reads.get(event_type, NOTHING) | compile_expression(d.trigger.when or "true").event_fields
    clock = Clock()
    for i, event in enumerate(stream):
        view = reads.get(event["type"], NOTHING)
        context = Scope(event, START + timedelta(seconds=i), event["tenantid"], reads=view).context
        for program in index.get((event["tenantid"], event["type"]), []) + index.get(("*", event["type"]), []):
            program.execute(context)
    return clock.run(len(stream))

def condition_cost(repeats: int = 50_000) -> dict[str, float]:
    """µs of one condition on a prebuilt context, on a plain dict (converted every call), and of a context."""
    program = cel.compile('event.data.source in ["web", "webinar"] && event.data.score >= 40')
    event = events(1, random.Random(1), ("acme",))[0]
    scope, plain = Scope(event, START, "acme"), {"event": event, "vars": {}, "now": START, "tenant": "acme"}

    def us(fn: Any, times: int) -> float:
        started = time.perf_counter()
        for _ in range(times):
            fn()
        return (time.perf_counter() - started) / times * 1e6

    return {"condition_us": us(lambda: program.execute(scope.context), repeats),
            "condition_with_dict_us": us(lambda: program.execute(plain), repeats // 10),
            "context_build_us": us(lambda: Scope(event, START, "acme"), repeats // 10)}  # fmt: skip

def benchmark(args: Any, progress: Console) -> dict[str, Any]:
    report: dict[str, Any] = {"machine": harness.machine("common-expression-language"), "options": vars(args),
                              "figures": []}  # fmt: skip
    # Growth by tenants, and the worst case: one tenant holding all 1,000 (about 200 candidates per event).
    scenarios = [(f"{c:,}", c, tuple(f"tenant-{i:03d}" for i in range(max(1, c // DEFINITIONS_PER_TENANT))))
                 for c in (int(x) for x in args.definitions.split(","))]  # fmt: skip
    scenarios.append((ONE_TENANT, 1000, ("tenant-000",)))
    for label, count, tenants in scenarios:
        stream = events(args.events, random.Random(42), tenants)
        definitions = [definition(n, random.Random(n), tenants) for n in range(count)]
        figs = [Figures({"definitions": label, "tenants": str(len(tenants)), "impl": impl})
                for impl in ("engine", "engine, no trigger index", "bare CEL")]  # fmt: skip
        for _ in range(args.rounds):
            figs[0].add(engine_run(definitions, stream), progress)
            figs[1].add(engine_run(definitions, stream, EveryTrigger), progress)
            figs[2].add(bare_run(definitions, stream), progress)
        report["figures"] += [f.as_dict() for f in figs]
    report["costs"] = costs = condition_cost()
    report["versus"] = harness.versus(report["figures"], [("engine", "bare CEL"),
                                                          ("engine, no trigger index", "bare CEL")])
    rate = {f["definitions"]: f["per_s"] for f in report["figures"] if f["impl"] == "engine"}
    report["checks"] = [
        (f"100 definitions ≥ {TARGET_100:,} events/s", rate["100"] >= TARGET_100 if "100" in rate else None),
        (f"1,000 definitions ≥ {TARGET_RATIO_1000:.0%} of 100",
         rate["1,000"] / rate["100"] >= TARGET_RATIO_1000 if {"100", "1,000"} <= set(rate) else None),
        (f"{ONE_TENANT} ≥ {TARGET_ONE_TENANT:,} events/s", rate[ONE_TENANT] >= TARGET_ONE_TENANT),
        (f"one condition ≤ {TARGET_CONDITION_US:.0f} µs", costs["condition_us"] <= TARGET_CONDITION_US),
    ]  # fmt: skip
    return report

def show(report: dict[str, Any], console: Console) -> None:
    o, c = report["options"], report["costs"]
    harness.header(console, "crmflow process engine benchmark", report,
                   f"{o['events']:,} events per run, median of {o['rounds']} rounds")
    harness.figures_table(console, "Process engine (commands recorded, not executed)", report["figures"])
    harness.versus_table(console, "The engine vs the bare CEL work", report["versus"])
    console.print(f"One condition: {c['condition_us']:.2f} µs with a prebuilt context "
                  f"({c['condition_with_dict_us']:.1f} µs converting a dict each time); "
                  f"building an event's context: {c['context_build_us']:.1f} µs")  # fmt: skip

def main(argv: list[str] | None = None) -> int:
    p = harness.parser(__doc__, stores=False)
    p.add_argument("--events", type=int, default=20_000, help="events per run (default 20000)")
    p.add_argument("--rounds", type=harness.at_least(1), default=3, help="rounds; median (default 3)")
    p.add_argument("--definitions", default="10,100,1000", help="deployed definitions per scenario (default 10,100,1000)")
    args = p.parse_args(argv)
    return harness.main(args, benchmark, show)

if __name__ == "__main__":
    sys.exit(main())
