"""The engine runs definitions: every step kind, retries, failures, redelivery, versions, tenants, business time."""

from __future__ import annotations

import textwrap
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from crmflow.aggregates.errors import IllegalTransitionError
from crmflow.processes.compiled import CompiledProcess
from crmflow.processes.engine import Engine, MemoryInstances
from crmflow.processes.loader import parse_documents
from crmflow.processes.simulation import RecordingCommands, RecordingEmits, Simulation

MONDAY_9 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
LEAD = str(uuid.UUID(int=1))
CALENDAR = """\
apiVersion: crmflow/v1
kind: Calendar
name: office
timezone: UTC
hours: {mon: ["09:00-17:00"], tue: ["09:00-17:00"], wed: ["09:00-17:00"], thu: ["09:00-17:00"], fri: ["09:00-17:00"]}
holidays: [2026-03-03]
"""


def process(steps: str, *, name: str = "p", version: int = 1, tenant: str = "*", on: str = "LeadCreated",
            when: str | None = None, vars_: str = "lead: event.subject") -> str:  # fmt: skip
    trigger_when = f"\n  when: '{when}'" if when else ""
    return (f"apiVersion: crmflow/v1\nkind: Process\nname: {name}\nversion: {version}\ntenant: '{tenant}'\n"
            f"trigger:\n  on: [{on}]{trigger_when}\nvars:\n  {vars_}\nsteps:\n"
            + textwrap.indent(textwrap.dedent(steps), "  "))  # fmt: skip


def simulation(*documents: str) -> Simulation:
    return Simulation(parse_documents("\n---\n".join(documents), "test.yaml"), MONDAY_9)


def event(type_: str, subject: str = LEAD, tenant: str = "acme", event_id: str | None = None, **data: Any) -> dict[str, Any]:
    return {"specversion": "1.0", "id": event_id or str(uuid.uuid4()), "source": "/t", "type": type_,
            "subject": subject, "tenantid": tenant, "data": data}  # fmt: skip


def commands(sim: Simulation) -> list[tuple[str, dict[str, Any]]]:
    return [(c.name, dict(c.data)) for c in sim.commands.issued]


def only_instance(sim: Simulation) -> Any:
    (instance,) = sim.instances.instances.values()
    return instance


def test_do_set_choice_and_emit_run_in_order_until_the_end() -> None:
    sim = simulation(process("""\
        - id: score
          set: {hot: 'event.data.score >= 50'}
        - id: route
          choice:
            - {when: vars.hot, next: assign-senior}
          otherwise: assign-junior
        - id: assign-senior
          do: lead.assign
          args: {lead_id: vars.lead, owner: '"senior"'}
          next: announce
        - id: assign-junior
          do: lead.assign
          args: {lead_id: vars.lead, owner: '"junior"'}
        - id: announce
          emit: LeadRouted
          data: {lead_id: vars.lead, hot: vars.hot}
        """))
    sim.publish(event("LeadCreated", score=70))
    assert commands(sim) == [("lead.assign", {"lead_id": LEAD, "owner": "senior"})]
    assert [(e["type"], e["data"]) for e in sim.emits.emitted] == [("LeadRouted", {"lead_id": LEAD, "hot": True})]
    assert (only_instance(sim).status, only_instance(sim).vars) == ("completed", {"lead": LEAD, "hot": True})


def test_the_otherwise_branch_is_taken_when_no_condition_holds() -> None:
    sim = simulation(process("""\
        - id: route
          choice: [{when: 'event.data.score >= 50', next: end}]
          otherwise: junior
        - id: junior
          do: lead.assign
          args: {lead_id: vars.lead, owner: '"junior"'}
        """))
    sim.publish(event("LeadCreated", score=10))
    assert commands(sim) == [("lead.assign", {"lead_id": LEAD, "owner": "junior"})]


def test_a_wait_for_is_woken_only_by_its_own_instances_event() -> None:
    other = str(uuid.UUID(int=2))
    sim = simulation(process("""\
        - id: wait
          wait_for: {on: [LeadStatusChanged], when: 'event.subject == vars.lead && event.data.status == "working"'}
        - id: done
          emit: LeadContacted
        """))
    sim.publish(event("LeadCreated"))
    sim.publish(event("LeadStatusChanged", subject=other, status="working"))  # another lead
    sim.publish(event("LeadStatusChanged", status="qualified"))  # not the status we wait for
    assert only_instance(sim).status == "waiting"
    sim.publish(event("LeadStatusChanged", status="working"))
    assert only_instance(sim).status == "completed"


def test_without_a_condition_the_instance_key_correlates() -> None:
    sim = simulation(process("- id: wait\n  wait_for: {on: [LeadQualified]}\n"))
    sim.publish(event("LeadCreated"))
    sim.publish(event("LeadQualified", subject=str(uuid.UUID(int=9))))
    assert only_instance(sim).status == "waiting"
    sim.publish(event("LeadQualified"))
    assert only_instance(sim).status == "completed"


def test_a_timeout_without_on_timeout_fails_the_instance_visibly() -> None:
    sim = simulation(process("- id: wait\n  wait_for: {on: [LeadQualified]}\n  timeout: PT4H\n"))
    sim.publish(event("LeadCreated"))
    sim.advance(timedelta(hours=4))
    instance = only_instance(sim)
    assert (instance.status, instance.step, instance.error) == ("failed", "wait", "timed out waiting for LeadQualified")


def test_a_wait_in_business_time_skips_nights_weekends_and_holidays() -> None:
    sim = simulation(CALENDAR, process("""\
        - id: pause
          wait: {business: 10h, calendar: office}
        - id: remind
          emit: LeadReminder
        """))
    sim.publish(event("LeadCreated"))  # Monday 09:00; Tuesday is a holiday
    sim.advance_to(datetime(2026, 3, 4, 10, 59, tzinfo=timezone.utc))
    assert sim.emits.emitted == []
    sim.advance_to(datetime(2026, 3, 4, 11, 0, tzinfo=timezone.utc))  # 8h Monday + 2h Wednesday
    assert [e["type"] for e in sim.emits.emitted] == ["LeadReminder"]
    assert sim.emits.emitted[0]["time"] == "2026-03-04T11:00:00+00:00"


class RefusingCommands(RecordingCommands):
    """The domain refuses the first ``refusals`` commands, like a lead that is not ready yet."""

    def __init__(self, refusals: int) -> None:
        super().__init__()
        self.refusals = refusals

    def execute(self, request: Any) -> None:
        if self.refusals:
            self.refusals -= 1
            raise IllegalTransitionError(f"cannot qualify lead {LEAD[:8]} from new: allowed from working")
        super().execute(request)


def engine_with(commands: RecordingCommands, *documents: str) -> tuple[Engine, MemoryInstances]:
    parsed = parse_documents("\n---\n".join(documents), "t.yaml")
    instances = MemoryInstances()
    return Engine([CompiledProcess(d.model) for d in parsed], instances, commands, RecordingEmits()), instances  # type: ignore[arg-type]


QUALIFY = """\
- id: qualify
  do: lead.qualify
  args: {lead_id: vars.lead}
  retry: {max: 2, backoff: PT10M}
"""


def test_a_refused_command_is_retried_with_backoff_and_then_succeeds() -> None:
    commands = RefusingCommands(refusals=2)
    engine, instances = engine_with(commands, process(QUALIFY))
    effects = engine.handle(event("LeadCreated"), MONDAY_9)
    assert [e.kind for e in effects][-2:] == ["refused", "waiting"]
    (instance,) = instances.instances.values()
    assert instance.waiting.due == MONDAY_9 + timedelta(minutes=10)
    engine.fire_due(MONDAY_9 + timedelta(minutes=10))  # refused again; next wait doubles
    assert instance.waiting.due == MONDAY_9 + timedelta(minutes=30)
    engine.fire_due(MONDAY_9 + timedelta(minutes=30))
    assert (instance.status, [c.name for c in commands.issued]) == ("completed", ["lead.qualify"])


def test_a_command_refused_beyond_its_retries_fails_the_step_with_the_reason() -> None:
    engine, instances = engine_with(RefusingCommands(refusals=5), process(QUALIFY))
    engine.handle(event("LeadCreated"), MONDAY_9)
    engine.fire_due(MONDAY_9 + timedelta(minutes=10))
    engine.fire_due(MONDAY_9 + timedelta(minutes=30))
    (instance,) = instances.instances.values()
    assert (instance.status, instance.step) == ("failed", "qualify")
    assert instance.error == f"lead.qualify refused: cannot qualify lead {LEAD[:8]} from new: allowed from working"


def test_a_redelivered_event_acts_once() -> None:
    sim = simulation(process("""\
        - id: assign
          do: lead.assign
          args: {lead_id: vars.lead, owner: '"web"'}
        - id: wait
          wait_for: {on: [LeadStatusChanged], when: 'event.subject == vars.lead'}
        - id: bump
          do: lead.score
          args: {lead_id: vars.lead, points: '10', reason: '"contacted"'}
        """))
    created, worked = event("LeadCreated", event_id="e-1"), event("LeadStatusChanged", event_id="e-2", status="working")
    for delivery in (created, created, worked, worked, created):
        sim.publish(delivery)
    assert [name for name, _ in commands(sim)] == ["lead.assign", "lead.score"]


def test_commands_carry_an_idempotency_key_from_instance_step_and_event_and_the_cause() -> None:
    sim = simulation(process("- id: assign\n  do: lead.assign\n  args: {lead_id: vars.lead, owner: '\"web\"'}\n",
                             name="router", version=3))  # fmt: skip
    sim.publish(event("LeadCreated", event_id="e-42"))
    (request,) = sim.commands.issued
    instance = only_instance(sim)
    assert request.idempotency_key == f"process/{instance.id}/assign/e-42/1"
    assert request.caller == "process:router@3"
    assert (request.causation_id, request.cause["step"], request.cause["version"]) == ("e-42", "assign", 3)


def test_a_new_version_starts_new_instances_while_running_ones_finish_on_theirs() -> None:
    v1 = process("- id: wait\n  wait_for: {on: [LeadQualified]}\n- id: tell\n  emit: V1Done\n", version=1)
    v2 = process("- id: wait\n  wait_for: {on: [LeadQualified]}\n- id: tell\n  emit: V2Done\n", version=2)
    parsed = {d.model.version: d for d in parse_documents(v1 + "\n---\n" + v2, "t.yaml")}  # type: ignore[attr-defined]
    instances, emits = MemoryInstances(), RecordingEmits()
    engine = Engine([CompiledProcess(parsed[1].model)], instances, RecordingCommands(), emits)  # type: ignore[arg-type]
    old_lead, new_lead = str(uuid.UUID(int=10)), str(uuid.UUID(int=11))
    engine.handle(event("LeadCreated", subject=old_lead), MONDAY_9)

    engine.deploy(CompiledProcess(parsed[2].model))  # type: ignore[arg-type]
    engine.handle(event("LeadCreated", subject=new_lead), MONDAY_9)
    engine.handle(event("LeadQualified", subject=old_lead), MONDAY_9)
    engine.handle(event("LeadQualified", subject=new_lead), MONDAY_9)

    assert sorted(i.version for i in instances.instances.values()) == [1, 2]
    assert [(e["subject"], e["type"]) for e in emits.emitted] == [(old_lead, "V1Done"), (new_lead, "V2Done")]


def test_a_tenant_scoped_definition_never_sees_another_tenants_events() -> None:
    sim = simulation(process("- id: tell\n  emit: AcmeOnly\n", tenant="acme"))
    sim.publish(event("LeadCreated", tenant="globex"))
    assert sim.emits.emitted == [] and sim.instances.instances == {}
    sim.publish(event("LeadCreated", tenant="acme"))
    assert [e["tenantid"] for e in sim.emits.emitted] == ["acme"]


def test_waiting_instances_of_one_tenant_are_not_woken_by_another_tenant() -> None:
    sim = simulation(process("- id: wait\n  wait_for: {on: [LeadQualified]}\n"))
    sim.publish(event("LeadCreated", tenant="acme"))
    sim.publish(event("LeadQualified", tenant="globex"))  # same subject, other tenant
    assert only_instance(sim).status == "waiting"


def test_a_trigger_condition_filters_and_one_live_instance_per_key() -> None:
    sim = simulation(process("- id: wait\n  wait_for: {on: [LeadQualified]}\n", when='event.data.source == "web"'))
    sim.publish(event("LeadCreated", source="event"))
    sim.publish(event("LeadCreated", source="web"))
    sim.publish(event("LeadCreated", source="web"))  # same key, instance still waiting
    assert len(sim.instances.instances) == 1


def test_an_emitted_event_can_start_another_process() -> None:
    sim = simulation(
        process("- id: tell\n  emit: LeadNeedsCall\n  data: {lead_id: vars.lead}\n", name="first"),
        process("- id: call\n  do: lead.work\n  args: {lead_id: vars.lead}\n", name="second", on="LeadNeedsCall",
                vars_="lead: event.data.lead_id"),
    )  # fmt: skip
    sim.publish(event("LeadCreated"))
    assert commands(sim) == [("lead.work", {"lead_id": LEAD})]


def test_an_expression_that_fails_at_run_time_fails_the_instance_with_the_expression() -> None:
    sim = simulation(process("- id: bad\n  set: {x: 'event.data.missing + 1'}\n"))
    sim.publish(event("LeadCreated"))
    instance = only_instance(sim)
    assert instance.status == "failed" and "'event.data.missing + 1' failed" in instance.error
