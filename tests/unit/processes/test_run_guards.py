"""At run time an instance over a guard fails with the reason, and the engine goes on with the next."""

from __future__ import annotations

import textwrap
import uuid
from datetime import datetime, timezone
from typing import Any

from crmflow.aggregates.limits import MAX_PROCESS_HOPS, MAX_STRING_CHARS
from crmflow.processes.compiled import CompiledProcess
from crmflow.processes.engine import HOPS, Engine, MemoryInstances
from crmflow.processes.loader import parse_documents
from crmflow.processes.simulation import RecordingCommands, RecordingEmits, Simulation

MONDAY_9 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def process(steps: str, *, name: str = "p", on: str = "LeadCreated", tenant: str = "*") -> str:
    return (f"apiVersion: crmflow/v1\nkind: Process\nname: {name}\nversion: 1\ntenant: '{tenant}'\n"
            f"trigger: {{on: [{on}]}}\nvars: {{lead: event.subject}}\nsteps:\n"
            + textwrap.indent(textwrap.dedent(steps), "  "))  # fmt: skip


def compiled(*texts: str) -> list[CompiledProcess]:
    # Straight from the parser, not validated: what a definition deployed before these checks may hold.
    return [CompiledProcess(d.model) for d in parse_documents("\n---\n".join(texts), "p.yaml")]  # type: ignore[arg-type]


def event(type_: str, tenant: str = "acme", **data: Any) -> dict[str, Any]:
    return {"specversion": "1.0", "id": str(uuid.uuid4()), "source": "/t", "type": type_,
            "subject": str(uuid.uuid4()), "tenantid": tenant, "data": data}  # fmt: skip


class Stopwatch:
    """A monotonic clock that moves ``step_s`` every time it is read."""

    def __init__(self, step_s: float) -> None:
        self.now, self.step_s = 0.0, step_s

    def __call__(self) -> float:
        self.now += self.step_s
        return self.now


SPIN = """\
- id: spin
  choice: [{when: 'true', next: spin}]
"""
ASSIGN = """\
- id: assign
  do: lead.assign
  args: {lead_id: vars.lead, owner: '"ana"'}
"""


def engine(*processes: CompiledProcess, **guards: Any) -> tuple[Engine, MemoryInstances, RecordingCommands]:
    instances, commands = MemoryInstances(), RecordingCommands()
    return Engine(processes, instances, commands, RecordingEmits(), **guards), instances, commands


def failures(instances: MemoryInstances) -> dict[str, str]:
    return {i.definition: i.error for i in instances.instances.values() if i.status == "failed"}  # type: ignore[misc]


def test_a_choice_loop_fails_its_instance_at_the_step_budget_and_the_next_event_is_handled() -> None:
    hostile, canary = compiled(
        process(SPIN, name="spin", tenant="hostile"), process(ASSIGN, name="canary", tenant="acme")
    )
    run, instances, commands = engine(hostile, canary)

    run.handle(event("LeadCreated", tenant="hostile"), MONDAY_9)
    run.handle(event("LeadCreated", tenant="acme"), MONDAY_9)

    assert failures(instances) == {
        "spin": "ran 500 steps for one event without waiting (a loop?); "
        "the limit is steps_per_event (500 steps)"
    }
    assert [c.name for c in commands.issued] == ["lead.assign"]


def test_an_instance_over_the_time_budget_fails_between_steps_and_the_next_event_is_handled() -> None:
    # Each read of the stopwatch moves it 300 ms. Read once when the run starts, then before each step:
    # 300, 600, 900 ms spent, three steps run; the next read finds 1,200 ms, over the 1,000 ms budget.
    hostile, canary = compiled(
        process(SPIN, name="spin", tenant="hostile"), process(ASSIGN, name="canary", tenant="acme")
    )
    run, instances, commands = engine(hostile, canary, monotonic=Stopwatch(0.3))

    effects = run.handle(event("LeadCreated", tenant="hostile"), MONDAY_9)
    run.handle(event("LeadCreated", tenant="acme"), MONDAY_9)

    assert sum(e.kind == "entered" for e in effects) == 3
    assert failures(instances) == {"spin": "spent 1,200 ms on one event, up to step 'spin'; "
                                           "the limit is event_handling_ms (1,000 milliseconds)"}  # fmt: skip
    assert [c.name for c in commands.issued] == ["lead.assign"]


def test_emitted_events_carry_their_hop_count_and_a_ring_stops_at_the_hop_limit() -> None:
    ping = process("- {id: ping, emit: Ping}\n", name="a", on="Pong")
    pong = process("- {id: pong, emit: Pong}\n", name="b", on="Ping")
    sim = Simulation(parse_documents(ping + "---\n" + pong, "p.yaml"), MONDAY_9)

    sim.publish(event("Ping"))  # from outside: no hops; b answers with hop 1, a with hop 2...

    assert [e[HOPS] for e in sim.emits.emitted] == list(range(1, MAX_PROCESS_HOPS + 1))
    (failed,) = [i for i in sim.instances.instances.values() if i.status == "failed"]
    assert failed.error == (
        "emitting Pong would make the 17th process emit in a row; the limit is process_hops (16 hops): "
        "do definitions trigger each other round?"
    )


def test_an_event_that_arrives_too_many_hops_deep_is_not_acted_on_and_says_why() -> None:
    run, instances, commands = engine(*compiled(process(ASSIGN)))
    deep = {**event("LeadCreated"), HOPS: MAX_PROCESS_HOPS + 1}

    (skipped,) = run.handle(deep, MONDAY_9)

    assert skipped.kind == "skipped" and not instances.instances and not commands.issued
    assert skipped.detail["error"] == (
        f"not acted on: event {deep['id']} was caused by 17 process hops in a row; "
        "the limit is process_hops (16 hops)"
    )


CREATE_LEAD = """\
- id: again
  do: lead.create
  args: {name: '"Echo"'}
"""


def test_a_command_carries_the_next_hop_and_one_that_would_be_past_the_limit_fails_its_step() -> None:
    # A definition that triggers on what its own command records (lead.create on LeadCreated): each
    # LeadCreated the command records arrives one hop deeper, so the chain stops after 16 commands.
    run, instances, commands = engine(*compiled(process(CREATE_LEAD, name="echo")))

    run.handle({**event("LeadCreated"), HOPS: MAX_PROCESS_HOPS - 1}, MONDAY_9)
    run.handle({**event("LeadCreated"), HOPS: MAX_PROCESS_HOPS}, MONDAY_9)

    (issued,) = commands.issued
    assert issued.cause["hops"] == MAX_PROCESS_HOPS  # 15 + 1: its LeadCreated goes out with processhops 16
    assert failures(instances) == {
        "echo": "lead.create would make the 17th process hop in a row; the limit is process_hops (16 hops): "
        "does a definition trigger on what its own commands record?"
    }


def test_an_emit_over_the_event_size_limit_fails_the_step_with_its_size() -> None:
    # Nine copies of a 60,000-character string: 540,000 characters of data, over the 524,288-byte limit.
    fields = ", ".join(f"f{i}: event.data.text" for i in range(9))
    run, instances, _ = engine(*compiled(process(f"- {{id: big, emit: LeadBig, data: {{{fields}}}}}\n")))
    emits = run.emits

    run.handle(event("LeadCreated", text="x" * 60_000), MONDAY_9)

    (instance,) = instances.instances.values()
    assert instance.status == "failed" and not emits.emitted  # type: ignore[attr-defined]
    assert instance.error.startswith("the emitted LeadBig would be 540,")  # type: ignore[union-attr]
    assert instance.error.endswith(" bytes; the limit is event_bytes (524,288 bytes)")  # type: ignore[union-attr]


def test_a_variable_doubled_in_a_loop_fails_at_the_string_limit_instead_of_eating_memory() -> None:
    doubling = """\
- {id: seed, set: {s: '"ab"'}}
- {id: double, set: {s: 'vars.s + vars.s'}}
- id: again
  choice: [{when: 'true', next: double}]
"""
    run, instances, _ = engine(*compiled(process(doubling)))

    run.handle(event("LeadCreated"), MONDAY_9)

    (instance,) = instances.instances.values()
    # "ab" doubled 15 times is 65,536 characters (the limit); the 16th doubling makes 131,072.
    assert MAX_STRING_CHARS == 2 * 2**15
    assert (instance.status, instance.step) == ("failed", "double")
    assert (
        instance.error
        == "the string at vars.s has 131,072 characters; the limit is string_chars (65,536 characters)"
    )


WAKE_THEN_SPIN = """\
- id: listen
  wait_for: {on: [LeadAssigned], when: 'vars.lead != ""'}
- id: spin
  choice: [{when: 'true', next: spin}]
"""


def test_one_event_waking_many_spinning_instances_stops_at_the_events_total_budget() -> None:
    # 300 ms a read, 2,500 ms for the event. The first woken instance is stopped by its own budget
    # (1,200 ms spent); the second when the event's instances reach 2,700 ms; the third at once.
    run, instances, _ = engine(*compiled(process(WAKE_THEN_SPIN)), total_ms=2_500, monotonic=Stopwatch(0.3))
    for _ in range(3):
        run.handle(event("LeadCreated"), MONDAY_9)

    run.handle(event("LeadAssigned"), MONDAY_9)

    reasons = [i.error or "" for i in instances.instances.values()]
    assert reasons[0].endswith("the limit is event_handling_ms (1,000 milliseconds)")
    assert reasons[1].startswith("this event's instances had spent 2,700 ms on it, up to step 'spin'")
    assert reasons[2].startswith("this event's instances had spent 3,300 ms on it, up to step 'spin'")
    assert all(r.endswith("the limit is event_total_ms (2,500 milliseconds)") for r in reasons[1:])


def test_timers_left_over_when_a_round_runs_out_of_time_fire_in_the_next_round() -> None:
    later_spin = "- {id: later, wait: PT1H}\n" + SPIN
    run, instances, _ = engine(*compiled(process(later_spin)), total_ms=2_500, monotonic=Stopwatch(0.3))
    for _ in range(3):
        run.handle(event("LeadCreated"), MONDAY_9)

    run.fire_due(MONDAY_9.replace(hour=11))
    assert sorted(i.status for i in instances.instances.values()) == ["failed", "failed", "waiting"]

    run.fire_due(MONDAY_9.replace(hour=11))
    assert sorted(i.status for i in instances.instances.values()) == ["failed", "failed", "failed"]
