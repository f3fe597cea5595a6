"""Definitions that would run forever: found before they are deployed.

Three shapes, each seen looping for good on a live worker:

* a cycle of steps with a zero-length wait and no positive one (``wait: PT0S``
  back to itself, or a ``wait_for`` whose zero timeout leads round again):
  each turn hands the instance to the timer and starts a fresh step budget,
  so the per-event step budget never stops it;
* a definition that triggers on a type it emits: each instance starts the
  next (two emits of that type double them every round);
* definitions of one tenant that trigger each other in a ring (A emits what
  B triggers on, B what A triggers on), checked at deploy across everything
  deployed for the tenant.

A cycle of ``choice`` and ``set`` steps alone is left to the run-time step
budget: a counted loop is legitimate, an endless one fails its instance.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from crmflow.processes.durations import parse_duration
from crmflow.processes.graph import END, successors
from crmflow.processes.schema import BusinessTime, EmitStep, ProcessDefinition, WaitForStep, WaitStep


def _positive(timeout: str | BusinessTime | None) -> bool:
    if timeout is None:
        return False
    duration = parse_duration(timeout.business if isinstance(timeout, BusinessTime) else timeout)
    return duration > timedelta(0)


def instant_edges(p: ProcessDefinition, i: int) -> list[str]:
    """Where step i leads without any time passing (an event awaited or a positive wait ends the edge)."""
    step = p.steps[i]
    following = successors(p, i)
    if isinstance(step, WaitStep):
        return [] if _positive(step.wait) else following[:1]
    if isinstance(step, WaitForStep):
        if step.on_timeout and step.timeout is not None and not _positive(step.timeout):
            return [step.on_timeout]
        return []
    return following


def zero_wait_cycles(p: ProcessDefinition) -> list[list[int]]:
    """Cycles of steps that pass a zero-length wait and no positive one (each as its step indexes)."""
    index = {step.id: i for i, step in enumerate(p.steps)}
    graph = {
        i: [index[t] for t in instant_edges(p, i) if t != END and t in index] for i in range(len(p.steps))
    }
    cycles = []
    for component in strongly_connected(graph):
        looping = len(component) > 1 or component[0] in graph[component[0]]
        if looping and any(isinstance(p.steps[i], (WaitStep, WaitForStep)) for i in component):
            cycles.append(sorted(component))
    return cycles


def strongly_connected(graph: dict[int, list[int]]) -> list[list[int]]:
    """Tarjan's algorithm with an explicit stack (a definition's size must not exhaust Python's)."""
    counter = 0
    number: dict[int, int] = {}
    low: dict[int, int] = {}
    on_stack: set[int] = set()
    stack: list[int] = []
    out: list[list[int]] = []
    for root in graph:
        if root in number:
            continue
        work: list[tuple[int, Iterator[int]]] = [(root, iter(graph[root]))]
        number[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in number:
                    number[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph[child])))
                elif child in on_stack:
                    low[node] = min(low[node], number[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == number[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                out.append(component)
    return out


def emitted_types(p: ProcessDefinition) -> set[str]:
    return {step.emit for step in p.steps if isinstance(step, EmitStep)}


def self_triggers(p: ProcessDefinition) -> list[str]:
    """Types the definition emits and also triggers on."""
    return sorted(emitted_types(p) & set(p.trigger.on))


def trigger_rings(processes: list[ProcessDefinition]) -> list[list[ProcessDefinition]]:
    """Definitions that trigger each other round within one tenant (A emits what B triggers on, and back).

    A definition for every tenant (``tenant: "*"``) takes part in each tenant's rings."""
    tenants = sorted({p.tenant for p in processes if p.tenant != "*"}) or ["*"]
    rings: dict[tuple[int, ...], list[ProcessDefinition]] = {}
    for tenant in tenants:
        group = [p for p in processes if p.tenant in ("*", tenant)]
        graph = {
            i: [j for j, b in enumerate(group) if j != i and emitted_types(a) & set(b.trigger.on)]
            for i, a in enumerate(group)
        }
        for component in strongly_connected(graph):
            if len(component) > 1:
                members = sorted((group[i] for i in component), key=lambda p: (p.name, p.tenant))
                rings.setdefault(tuple(sorted(id(m) for m in members)), members)
    return list(rings.values())
