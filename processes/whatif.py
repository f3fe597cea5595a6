"""`process whatif`: replay stored history through a proposed definition and the deployed one.

Both run on the simulated clock over the same events (commands recorded,
nothing written), in the order they happened: the store keeps them in the
order they were recorded, which is not always their time order (an import of
old data, an inbound event stamped by its producer). The report compares what
they would have done:
assignments and workload per owner, escalations, SLA breaches, commands and
emitted events, and where instances stand. Instances running now stay on
the version they started with; the report says which.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from crmflow.processes.event_time import occurred_at
from crmflow.processes.loader import Document
from crmflow.processes.simulation import Simulation

_UNKNOWN = datetime.min.replace(tzinfo=timezone.utc)  # told apart by identity: no event's time is this object

@dataclass
class Outcome:
    commands: Counter[str] = field(default_factory=Counter)
    workload: Counter[str] = field(default_factory=Counter)  # assignments per owner
    escalations: int = 0
    breaches: int = 0
    emitted: Counter[str] = field(default_factory=Counter)
    instances: Counter[str] = field(default_factory=Counter)  # "process@version status [step]"

    def metrics(self) -> dict[str, int]:
        rows = {"assignments": sum(self.workload.values()), "escalations": self.escalations, "SLA breaches": self.breaches}
        rows |= {f"workload {owner}": n for owner, n in self.workload.items()}
        rows |= {f"command {name}": n for name, n in self.commands.items()}
        rows |= {f"emitted {name}": n for name, n in self.emitted.items()}
        return rows


@dataclass
class WhatIf:
    deployed: Outcome
    proposed: Outcome
    events: int
    running_now: Counter[str]  # instances of changed processes that would be running now, by version and step
    changed: list[str]

    def rows(self) -> list[dict[str, Any]]:
        names = list(dict.fromkeys([*self.deployed.metrics(), *self.proposed.metrics()]))
        out = []
        for name in names:
            before, after = self.deployed.metrics().get(name, 0), self.proposed.metrics().get(name, 0)
            out.append({"measure": name, "deployed": before, "proposed": after, "change": f"{after - before:+d}"})
        return out


def replayed(history: Iterable[dict[str, Any]], deployed: list[Document], *, since: datetime | None = None,
             tenant: str | None = None) -> tuple[list[dict[str, Any]], list[Document]]:  # fmt: skip
    """What a what-if replays: the stored events from ``since`` (one without a readable time is kept: nothing
    puts it before since) and the deployed definitions; for a ``tenant``, only its own events and the
    definitions it runs (its own and the platform-wide ones), so no other tenant's history shows."""
    events = [e for e in history if since is None or occurred_at(e, since) >= since]
    if tenant is None:
        return events, deployed
    scopes = (tenant, "*")
    return ([e for e in events if e.get("tenantid") == tenant],
            [d for d in deployed if getattr(d.model, "tenant", "*") in scopes])  # fmt: skip


def replace_processes(deployed: list[Document], proposal: list[Document]) -> list[Document]:
    """The deployed set with the proposal's processes and calendars in place of the same names."""
    proposed_names = {(d.kind, d.model.name) for d in proposal}  # type: ignore[attr-defined]
    kept = [d for d in deployed if (d.kind, d.model.name) not in proposed_names]  # type: ignore[attr-defined]
    return kept + [d for d in proposal if d.kind in ("Process", "Calendar")]


def latest(documents: list[Document]) -> list[Document]:
    """Only the latest version of each process (whatif compares what new instances would do)."""
    best: dict[tuple[str, str], Document] = {}
    for d in documents:
        key = (d.kind, d.model.name)  # type: ignore[attr-defined]
        if key not in best or getattr(d.model, "version", 0) > getattr(best[key].model, "version", 0):
            best[key] = d
    return list(best.values())


def compare(history: list[dict[str, Any]], deployed: list[Document], proposal: list[Document], now: datetime) -> WhatIf:
    current = latest(deployed)
    proposed = replace_processes(current, proposal)
    changed = sorted({d.model.name for d in proposal if d.kind == "Process"})  # type: ignore[attr-defined]
    deployed_run, proposed_run = _replay(history, current, now), _replay(history, proposed, now)
    running = Counter(
        f"{i.definition}@{i.version} at {i.step}"
        for i in deployed_run.instances.instances.values()
        if i.definition in changed and i.status in ("running", "waiting")
    )
    return WhatIf(_outcome(deployed_run), _outcome(proposed_run), len(history), running, changed)


def in_time_order(history: list[dict[str, Any]], now: datetime) -> list[tuple[datetime, dict[str, Any]]]:
    """Each event with its time, sorted by it; ties, and events without a readable time, in stored order.

    An event without a time is taken to have happened with the one stored
    before it (the first ones: with the first that has a time), so the sort
    leaves it beside it, where the replay used to handle it.
    """
    times = [occurred_at(event, _UNKNOWN) for event in history]
    last = next((t for t in times if t is not _UNKNOWN), now)
    timed = []
    for moment, event in zip(times, history):
        last = last if moment is _UNKNOWN else moment
        timed.append((last, event))
    return sorted(timed, key=lambda pair: pair[0])  # sorted() is stable: ties keep their stored order


def _replay(history: list[dict[str, Any]], documents: list[Document], now: datetime) -> Simulation:
    ordered = in_time_order(history, now)
    sim = Simulation(documents, ordered[0][0] if ordered else now)
    for moment, event in ordered:
        sim.advance_to(moment)
        sim.publish(event)
    sim.advance_to(now)
    return sim


def _outcome(sim: Simulation) -> Outcome:
    outcome = Outcome()
    for request in sim.commands.issued:
        outcome.commands[request.name] += 1
        if request.name.endswith(".assign"):
            outcome.workload[str(request.data.get("owner"))] += 1
        if request.name == "case.escalate":
            outcome.escalations += 1
    for document in sim.emits.emitted:
        outcome.emitted[document["type"]] += 1
        if "Breach" in document["type"]:
            outcome.breaches += 1
        elif "Overdue" in document["type"] or "Escalat" in document["type"]:
            outcome.escalations += 1
    for instance in sim.instances.instances.values():
        outcome.instances[f"{instance.definition}@{instance.version} {instance.status}"] += 1
    return outcome
