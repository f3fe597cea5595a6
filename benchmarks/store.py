"""Write throughput of crmflow's command path (execute, execute_batch) next to the bare eventsourcing library.

crmflow, the library (bare) and the library writing crmflow's metadata (bare+meta) make the same writes with the
same Lead class on fresh stores. What is timed, the targets and the latest figures: benchmarks/README.md.

    python benchmarks/store.py --backends sqlite --commands 900 --batch-commands 4000 --rounds 1   # quick
"""

from __future__ import annotations

import sys
from typing import Any
from uuid import uuid4

import harness
from eventsourcing.application import Application
from harness import CALLER, Clock, Figures, each, rotate
from rich.console import Console

from crmflow.aggregates.application import CommandRequest, CrmApplication
from crmflow.aggregates.lead import Lead
from crmflow.aggregates.store import persistence_env

TENANT = "bench"
SQLITE_TARGETS = {"single": 1_500, "batch": 10_000}  # single commands/s, batched events/s
MIN_RATIO = 0.80  # of the library writing the same rows
MODES = ("single", "batch-create", "batch-create-assign")
IMPLS = ("crmflow", "bare", "bare+meta")

def lead_fields(i: int) -> dict[str, Any]:
    return {"name": f"Lead {i}", "company": f"Company {i % 997}", "source": "web"}

def request(name: str, data: dict[str, Any]) -> CommandRequest:
    return CommandRequest(name, TENANT, data, caller=CALLER)

class Crm:
    """crmflow's command path: one execute (one transaction) per command, or execute_batch."""

    def __init__(self, url: str) -> None:
        self.app = CrmApplication(url)
        self.batch = self.app.execute_batch

    def creates(self, n: int) -> list[Any]:
        return [request("lead.create", lead_fields(i)) for i in range(n)]

    def create(self, r: CommandRequest) -> str:
        return str(self.app.execute(r).aggregate_id)

    def assign(self, lead: tuple[str, str]) -> None:
        self.app.execute(request("lead.assign", {"lead_id": lead[0], "owner": lead[1]}))

    def work(self, lead_id: str) -> None:
        self.app.execute(request("lead.work", {"lead_id": lead_id}))

    def batches(self, count: int, size: int, assign: bool) -> list[Any]:
        if not assign:
            return [[request("lead.create", lead_fields(b * size + i)) for i in range(size)] for b in range(count)]
        out, half = [], max(1, size // 2)
        for b in range(count):  # the assigns name the leads: the creates choose their ids, as an idempotent caller
            ids = [str(uuid4()) for _ in range(half)]
            out.append([request("lead.create", {**lead_fields(b * half + i), "lead_id": x}) for i, x in enumerate(ids)]
                       + [request("lead.assign", {"lead_id": x, "owner": f"rep-{i % 25}"}) for i, x in enumerate(ids)])
        return out

class Bare(Crm):
    """The library doing the same writes and reads (one ``repository.get`` per assign and work).

    ``meta``: each event carries the metadata crmflow stores (tenant, command, command id, caller), so the rows
    are crmflow's and the ratio isolates crmflow's layer (validation, tenancy, unit of work, stamping)."""

    def __init__(self, url: str, meta: bool) -> None:
        self.app, self.meta = Application(env=persistence_env(url)), meta

    def stamp(self, lead: Lead, command: str) -> Lead:
        if self.meta:
            meta = {"tenant": TENANT, "command": command, "command_id": str(uuid4()), "caller": CALLER}
            for event in lead.pending_events:
                if "meta" not in vars(event):  # a batch's earlier command stamped its own
                    object.__setattr__(event, "meta", meta)
        return lead

    def creates(self, n: int) -> list[Any]:
        return [{"tenant_id": TENANT, **lead_fields(i), "email": None, "campaign_id": None, "owner": None,
                 "score": 0} for i in range(n)]  # fmt: skip

    def create(self, kwargs: dict[str, Any]) -> Any:
        self.app.save(lead := self.stamp(Lead(**kwargs), "lead.create"))
        return lead.id

    def assign(self, lead: tuple[Any, str]) -> None:
        (aggregate := self.app.repository.get(lead[0])).assign(lead[1])
        self.app.save(self.stamp(aggregate, "lead.assign"))

    def work(self, lead_id: Any) -> None:
        (aggregate := self.app.repository.get(lead_id)).start_working()
        self.app.save(self.stamp(aggregate, "lead.work"))

    def batches(self, count: int, size: int, assign: bool) -> list[Any]:
        per = max(1, size // 2) if assign else size  # the library's uuid4 ids need no "is this id free?" read
        return [(self.creates(per), assign) for _ in range(count)]

    def batch(self, item: tuple[list[dict[str, Any]], bool]) -> None:
        leads = [self.stamp(Lead(**kwargs), "lead.create") for kwargs in item[0]]
        for i, lead in enumerate(leads if item[1] else ()):
            lead.assign(f"rep-{i % 25}")
            self.stamp(lead, "lead.assign")
        self.app.save(*leads)

def workload(r: Crm, mode: str, n: int, size: int) -> harness.Run:
    """single: n/3 leads created, then each assigned, then each worked (separate passes, so that assign and work
    load leads from a table of n/3); batches: ``size`` creates, or size/2 creates and the same leads' assigns."""
    first = r.app.recorder.max_notification_id() or 0
    if mode == "single":
        inputs, ids = r.creates(max(1, n // 3)), []
        clock, lat = Clock(), {"create": each(inputs, lambda x: ids.append(r.create(x)))}
        lat["assign"] = each([(x, f"rep-{i % 25}") for i, x in enumerate(ids)], r.assign)
        lat["work"] = each(ids, r.work)
        count = 3 * len(ids)
    else:
        per = 2 * max(1, size // 2) if mode == "batch-create-assign" else size
        batches, clock = r.batches(max(1, n // per), size, mode == "batch-create-assign"), Clock()
        lat, count = {"batch": each(batches, r.batch)}, len(batches) * per
    return clock.run(count, events=(r.app.recorder.max_notification_id() or 0) - first, latencies=lat)

def timed_run(stores: harness.Stores, impl: str, mode: str, args: Any) -> harness.Run:
    """One fresh store, an untimed warm-up on it (first queries, caches, connections), the timed workload."""
    with stores.fresh() as url:
        r = Crm(url) if impl == "crmflow" else Bare(url, meta=impl == "bare+meta")
        try:
            workload(r, mode, args.warmup if mode == "single" else 2 * args.batch_size, args.batch_size)
            return workload(r, mode, args.commands if mode == "single" else args.batch_commands, args.batch_size)
        finally:
            r.app.close()  # before the database is dropped

def judge(row: dict[str, Any]) -> list[harness.Check]:
    """80% of the library writing the same rows (bare+meta); the absolute targets on SQLite."""
    if row["baseline"] != "bare+meta":
        return []
    target = SQLITE_TARGETS["single" if row["mode"] == "single" else "batch"] if row["backend"] == "sqlite" else None
    return [(f"≥ {MIN_RATIO:.0%}", row["ratio"] >= MIN_RATIO),
            *([(f"≥ {target:,}/s", row["per_s"] >= target)] if target else [])]  # fmt: skip

def benchmark(args: Any, progress: Console) -> dict[str, Any]:
    report: dict[str, Any] = {"machine": harness.machine("eventsourcing"), "options": vars(args), "figures": []}
    for s in harness.each_backend(args, report):
        for mode in args.modes:
            figs = [Figures({"backend": s.name, "mode": mode, "impl": impl}) for impl in IMPLS]
            for round_ in range(args.rounds):
                for f in rotate(figs, round_):
                    f.add(timed_run(s, f.key["impl"], mode, args), progress)
            report["figures"] += [f.as_dict() for f in figs]
    report["versus"] = harness.versus(report["figures"], [("crmflow", "bare"), ("crmflow", "bare+meta")], judge=judge)
    return report

def show(report: dict[str, Any], console: Console) -> None:
    o = report["options"]
    harness.header(console, "crmflow store benchmark", report, f"single: {o['commands']:,} commands/run; batched: "
                   f"{o['batch_commands']:,} commands/run in batches of {o['batch_size']}; {o['rounds']} rounds "
                   f"(median), warm-up {o['warmup']}; every command stores one event")  # fmt: skip
    harness.figures_table(console, "Throughput (median of rounds; latency per command, or per batch)",
                          report["figures"], unit="commands")  # fmt: skip
    harness.versus_table(console, "crmflow vs bare eventsourcing (bare+meta: the same rows), and targets",
                         report["versus"], unit="commands/s")  # fmt: skip

def main(argv: list[str] | None = None) -> int:
    p = harness.parser(__doc__)
    add = p.add_argument
    add("--commands", type=int, default=3000, help="single commands per run (default 3000)")
    add("--batch-commands", type=int, default=20000, help="batched commands per run (default 20000)")
    add("--batch-size", type=int, default=100, help="commands per execute_batch (default 100)")
    add("--rounds", type=harness.at_least(1), default=3, help="runs per implementation and mode; median (default 3)")
    add("--warmup", type=int, default=150, help="untimed single commands per run (default 150)")
    add("--modes", type=harness.csv(*MODES), default=",".join(MODES), help=f"comma-separated: {','.join(MODES)}")
    args = p.parse_args(argv)
    # crmflow logs every command at debug level: at info (as the CLI configures structlog) a no-op. Unconfigured,
    # structlog would print every command and the benchmark would time the terminal.
    return harness.main(args, benchmark, show, logging="info")

if __name__ == "__main__":
    sys.exit(main())
