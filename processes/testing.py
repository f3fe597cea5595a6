"""`kind: ProcessTest`: a designer's own test of a process, run on the simulated clock.

Each test sends events, moves the clock and checks what the process did since
the previous expectation: the commands it issued, the events it emitted, and
where its instance stands.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from crmflow.processes.durations import parse_duration
from crmflow.processes.loader import Document
from crmflow.processes.schema import Expectation, ProcessTest
from crmflow.processes.simulation import Simulation


@dataclass
class TestResult:
    name: str
    file: str
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


def run_tests(documents: list[Document]) -> list[TestResult]:
    tests = [d for d in documents if d.kind == "ProcessTest"]
    return [run_test(d, documents) for d in tests]


def run_test(test_document: Document, documents: list[Document]) -> TestResult:
    test: ProcessTest = test_document.model  # type: ignore[assignment]
    result = TestResult(test.name, test_document.file)
    sim = Simulation(documents, test.start)
    seen_commands, seen_emits = 0, 0
    for n, action in enumerate(test.steps):
        where = f"steps[{n}] (line {test_document.line_of(('steps', n))})"
        if action.event is not None:
            given = action.event
            sim.publish({"specversion": "1.0", "id": given.id or f"{test.name}-{n}", "source": given.source,
                         "type": given.type, "subject": given.subject, "tenantid": test.tenant,
                         "time": sim.now.isoformat(), "data": given.data})  # fmt: skip
        if action.advance is not None:
            sim.advance(parse_duration(action.advance))
        if action.expect is not None:
            commands = sim.commands.issued[seen_commands:]
            emits = sim.emits.emitted[seen_emits:]
            seen_commands, seen_emits = len(sim.commands.issued), len(sim.emits.emitted)
            result.failures += [f"{where}: {problem}" for problem in _check(action.expect, test, sim, commands, emits)]
    return result


def _check(expect: Expectation, test: ProcessTest, sim: Simulation, commands: list[Any], emits: list[dict[str, Any]]) -> list[str]:
    problems = []
    if expect.commands is not None:
        got = [{"do": c.name, "args": dict(c.data)} for c in commands]
        if not _matches(expect.commands, got, "do", "args"):
            problems.append(f"expected commands {expect.commands}, got {got}")
    if expect.emits is not None:
        got = [{"emit": e["type"], "data": e["data"]} for e in emits]
        if not _matches(expect.emits, got, "emit", "data"):
            problems.append(f"expected emits {expect.emits}, got {got}")
    if expect.state is not None or expect.step is not None or expect.vars is not None:
        instances = [i for i in sim.instances.instances.values() if i.definition == test.process and i.tenant == test.tenant]
        if not instances:
            return [*problems, f"expected an instance of {test.process}, but none was started"]
        instance = instances[-1]
        if expect.state is not None and instance.status != expect.state:
            problems.append(f"expected state {expect.state}, got {instance.status}" + (f" ({instance.error})" if instance.error else ""))
        if expect.step is not None and instance.step != expect.step:
            problems.append(f"expected step {expect.step}, got {instance.step}")
        if expect.vars is not None and any(instance.vars.get(k) != v for k, v in expect.vars.items()):
            problems.append(f"expected vars {expect.vars}, got {instance.vars}")
    return problems


def _matches(expected: list[dict[str, Any]], got: list[dict[str, Any]], name: str, payload: str) -> bool:
    """Same names in the same order; expected payload fields must match (others may be present)."""
    if len(expected) != len(got):
        return False
    for want, have in zip(expected, got):
        if want.get(name) != have[name]:
            return False
        if any(have[payload].get(k) != v for k, v in (want.get(payload) or {}).items()):
            return False
    return True
