"""The worst definition validation lets through cannot wedge the process worker for another tenant."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from crmflow.aggregates.application import CommandRequest, CrmApplication
from crmflow.aggregates.limits import MAX_DEFINITION_COST, MAX_EXPRESSION_COST
from crmflow.processes.expressions import compile_expression
from crmflow.processes.loader import parse_documents
from crmflow.processes.registry import DefinitionRegistry
from crmflow.processes.runtime import ProcessRuntime
from crmflow.processes.validation import expression_sources, validate
from crmflow.workers.kafka.clients import KafkaClients
from crmflow.workers.kafka.relay import Relay
from crmflow.workers.run.process_worker import ProcessWorker
from crmflow.workers.shutdown import StopSignal
from tests.conftest import Clock
from tests.waiting import wait_until

CANARY = """\
apiVersion: crmflow/v1
kind: Process
name: canary-routing
version: 1
tenant: acme
trigger: {on: [LeadCreated]}
vars: {lead: event.subject}
steps:
  - id: assign
    do: lead.assign
    args: {lead_id: vars.lead, owner: '"ana"'}
"""
# Each branch maps a literal list of 990 items: 991 + 990 × 4 + 990² / 2 = 495,001 units; .size() 1,
# -n 2 and < 1 more: 495,005, within the per-expression budget; twenty of them are 9.9 M, within the
# definition's. None holds, so `otherwise` loops back for ever: only the run-time guards stop it.
HEAVY = "[" + ",".join(["1"] * 990) + "].map(x, x + 1).size() < {n}"
HOSTILE = (
    """\
apiVersion: crmflow/v1
kind: Process
name: spin
version: 1
tenant: hostile
trigger: {on: [LeadCreated]}
vars: {lead: event.subject}
steps:
  - id: spin
    choice:
"""
    + "".join(f"      - {{when: '{HEAVY.format(n=-n)}', next: end}}\n" for n in range(1, 21))
    + "    otherwise: spin\n"
)


@pytest.fixture
def deployed(app: CrmApplication) -> list[Any]:
    documents = parse_documents(CANARY + "---\n" + HOSTILE, "tenants.yaml")
    assert validate(documents) == [], "the hostile definition is the worst that still passes validation"
    DefinitionRegistry(app).deploy(documents, "ada")
    return documents


@pytest.fixture
def worker(
    app: CrmApplication, kafka: KafkaClients, clock: Clock, deployed: list[Any]
) -> Iterator[ProcessWorker]:
    running = ProcessWorker(app, kafka, ProcessRuntime(app, clock))
    yield running
    running.close()


def new_lead(app: CrmApplication, tenant: str, name: str) -> str:
    return str(
        app.execute(
            CommandRequest("lead.create", tenant, {"name": name, "source": "web"}, caller="web")
        ).aggregate_id
    )


def test_the_hostile_definition_is_within_every_static_budget_and_near_them(deployed: list[Any]) -> None:
    hostile = next(d.model for d in deployed if d.model.name == "spin")
    costs = [compile_expression(source).cost for source in expression_sources(hostile)]
    assert max(costs) == 495_005 and max(costs) <= MAX_EXPRESSION_COST
    assert 0.98 * MAX_DEFINITION_COST < sum(costs) <= MAX_DEFINITION_COST


def test_a_canary_lead_is_assigned_while_another_tenants_worst_definition_fails_its_instances(
    app: CrmApplication, kafka: KafkaClients, worker: ProcessWorker
) -> None:
    hostile_leads = [new_lead(app, "hostile", f"Spinner {n}") for n in range(3)]
    canary = new_lead(app, "acme", "Canary")
    Relay(app, kafka).run(StopSignal(), until_caught_up=True)
    started, cpu = time.monotonic(), time.process_time()

    def failed() -> dict[str, str | None]:
        instances = worker.runtime.instances.instances.values()
        return {i.key: i.error for i in instances if i.definition == "spin" and i.status == "failed"}

    with structlog.testing.capture_logs() as logs:
        wait_until(lambda: worker.poll_once() >= 0 and app.state(canary, "acme")["owner"] == "ana", 60,
                   interval_s=0, what="the canary lead assigned")  # fmt: skip
        waited_s, cpu_s = time.monotonic() - started, time.process_time() - cpu
        wait_until(lambda: worker.poll_once() >= 0 and len(failed()) == 3, 60, interval_s=0, what="3 failed")

    # Three hostile events, each stopped after the 1 s budget and at most one more step (about 1 s of
    # CEL, bounded by the definition's cost), before or beside the canary's: well under 20 s.
    assert waited_s < 20, f"the canary waited {waited_s:.1f} s ({cpu_s:.1f} CPU-s)"
    assert sorted(failed()) == sorted(hostile_leads)
    assert all(
        str(error).endswith("the limit is event_handling_ms (1,000 milliseconds)")
        for error in failed().values()
    )
    incidents = [line for line in logs if line["event"] == "process_failed"]
    assert len(incidents) == 3 and all("event_handling_ms" in line["reason"] for line in incidents)


def test_a_definition_deployed_before_the_limits_is_left_out_with_a_warning_and_the_others_run(
    app: CrmApplication, clock: Clock
) -> None:
    twelve_deep = "[1,2,3,4,5].map(a, a)"
    for variable in "bcdefghijkl":
        twelve_deep = f"[1,2,3,4,5].map({variable}, {twelve_deep})"
    wedging = HOSTILE.replace("name: spin", "name: wedge").split("  - id: spin")[0]
    wedging += f"  - id: wedge\n    set: {{x: '{twelve_deep}'}}\n"
    old = parse_documents(CANARY + "---\n" + wedging, "old.yaml")
    DefinitionRegistry(app).deploy(old, "before-the-limits")  # the registry stores what it is given

    with structlog.testing.capture_logs() as logs:
        runtime = ProcessRuntime(app, clock)
        runtime.refresh()

    assert sorted(name for name, _ in runtime.engine.versions) == ["canary-routing"]
    (refused,) = [line for line in logs if line["event"] == "definition_refused"]
    assert (
        "nests .map/.filter/.all/.exists 12 deep; the limit is comprehension_nesting (2 levels)"
        in refused["reason"]
    )


ECHO = """\
apiVersion: crmflow/v1
kind: Process
name: echo
version: 1
tenant: hostile
trigger: {on: [LeadCreated]}
steps:
  - id: again
    do: lead.create
    args: {name: '"Echo"', source: '"web"'}
"""


def test_a_definition_that_triggers_on_what_its_own_command_records_stops_at_the_hop_limit(
    app: CrmApplication, kafka: KafkaClients, clock: Clock
) -> None:
    documents = parse_documents(ECHO, "echo.yaml")
    assert validate(documents) == [], "validation cannot know which events lead.create records"
    DefinitionRegistry(app).deploy(documents, "mallory")
    worker = ProcessWorker(app, kafka, ProcessRuntime(app, clock))
    relay = Relay(app, kafka)
    new_lead(app, "hostile", "Mallory")

    def echo_failed() -> bool:
        relay.run(StopSignal(), until_caught_up=True)
        worker.poll_once()
        return any(
            i.definition == "echo" and i.status == "failed"
            for i in worker.runtime.instances.instances.values()
        )

    try:
        wait_until(echo_failed, 120, interval_s=0, what="the echo chain to stop")
    finally:
        worker.close()

    # Mallory's lead has hop 0; each echo's LeadCreated is one hop deeper, and the command that would make
    # the 17th hop fails: 1 + 16 = 17 leads, not one for ever.
    leads = [
        n for n in app.recorder.select_notifications(start=1, limit=10_000) if n.topic.endswith("LeadCreated")
    ]
    assert len(leads) == 1 + 16
    (failed,) = [i for i in worker.runtime.instances.instances.values() if i.status == "failed"]
    assert failed.error.startswith("lead.create would make the 17th process hop in a row")
