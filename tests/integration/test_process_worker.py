"""The engine, live: deployed definitions react to stored events through Kafka, durably."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crmflow.aggregates.application import CommandRequest, CrmApplication
from crmflow.processes.loader import load_files, parse_documents
from crmflow.processes.registry import DefinitionRegistry
from crmflow.processes.runtime import ProcessRuntime, ServiceCommands
from crmflow.workers.explanation import explain
from crmflow.workers.kafka.clients import KafkaClients
from crmflow.workers.kafka.relay import Relay
from crmflow.workers.run.process_worker import ProcessWorker, TimerWorker
from crmflow.workers.shutdown import StopSignal
from tests.conftest import Clock
from tests.waiting import read_topic, wait_until

DEFINITIONS = Path(__file__).parents[2] / "processes" / "definitions"


@pytest.fixture
def deployed(app: CrmApplication) -> DefinitionRegistry:
    registry = DefinitionRegistry(app)
    registry.deploy(load_files(sorted(DEFINITIONS.glob("*.yaml"))), "ada")
    return registry


@pytest.fixture
def worker(app: CrmApplication, kafka: KafkaClients, clock: Clock, deployed: DefinitionRegistry) -> Iterator[ProcessWorker]:
    running = ProcessWorker(app, kafka, ProcessRuntime(app, clock))
    yield running
    running.close()


def relay(app: CrmApplication, kafka: KafkaClients) -> None:
    Relay(app, kafka).run(StopSignal(), until_caught_up=True)


def new_web_lead(app: CrmApplication, name: str = "Ada") -> str:
    return str(app.execute(CommandRequest("lead.create", "acme", {"name": name, "source": "web"}, caller="web-form")).aggregate_id)


def owner(app: CrmApplication, lead: str) -> Any:
    return app.state(lead, "acme")["owner"]


def test_a_web_lead_is_routed_by_the_deployed_process_and_explain_says_why(
    app: CrmApplication, kafka: KafkaClients, worker: ProcessWorker
) -> None:
    lead = new_web_lead(app)
    relay(app, kafka)

    wait_until(lambda: worker.poll_once() >= 0 and owner(app, lead) == "ana", 60, interval_s=0, what="the lead assigned")

    assigned = app.history(lead, "acme")[-1]
    assert assigned.type == "LeadAssigned"
    assert assigned.meta["caller"] == "process:web-lead-follow-up@3"
    assert explain(app, lead, "acme")[-1]["why"].startswith(
        f"process web-lead-follow-up v3 step assign ran lead.assign, on LeadCreated of {lead}")
    (instance,) = worker.runtime.instances.instances.values()
    assert (instance.status, instance.step) == ("waiting", "wait-contact")


def test_a_lead_nobody_works_is_escalated_once_by_the_timer_even_across_a_restart(
    app: CrmApplication, kafka: KafkaClients, worker: ProcessWorker, clock: Clock
) -> None:
    lead = new_web_lead(app)
    relay(app, kafka)
    wait_until(lambda: worker.poll_once() >= 0 and owner(app, lead) == "ana", 60, interval_s=0, what="routing")

    clock.advance(days=2, minutes=1)
    assert TimerWorker(app, ProcessRuntime(app, clock)).tick() > 0
    assert TimerWorker(app, ProcessRuntime(app, clock)).tick() == 0, "a restarted timer worker fires nothing twice"

    relay(app, kafka)
    overdue = [json.loads(r.value) for r in read_topic(kafka, kafka.topics.events, at_least=3)
               if json.loads(r.value)["type"] == "LeadFollowUpOverdue"]  # fmt: skip
    assert [(m["subject"], m["data"]) for m in overdue] == [(lead, {"lead_id": lead, "owner": "ana"})]


class CrashAfterCommand(ServiceCommands):
    """Stores the command (in its own transaction, as the one-by-one fallback does), then dies before
    the instance is saved: a worker killed mid-instance."""

    def execute(self, request: CommandRequest) -> None:
        self.unit = None  # the one-by-one path: the instance's start first, then the command on its own
        super().execute(request)
        raise SystemExit("killed between the command and saving the instance")


def test_a_worker_killed_mid_instance_resumes_without_repeating_the_command(app: CrmApplication, clock: Clock,
                                                                           deployed: DefinitionRegistry) -> None:  # fmt: skip
    lead = new_web_lead(app)
    (created,) = [e for e in app.history(lead, "acme")]
    event = {"specversion": "1.0", "id": "evt-1", "type": "LeadCreated", "subject": lead, "tenantid": "acme",
             "source": "/crmflow/acme/lead", "data": created.data}  # fmt: skip
    doomed = ProcessRuntime(app, clock, command_port=CrashAfterCommand)
    with pytest.raises(SystemExit):
        doomed.handle([event])

    ProcessRuntime(app, clock).handle([event])  # the restarted worker gets the same event again

    assert [h.type for h in app.history(lead, "acme")] == ["LeadCreated", "LeadAssigned"]
    assert ProcessRuntime(app, clock).handle([event])[0] == [], "and a third delivery does nothing"


def test_a_version_deployed_while_the_worker_runs_is_used_for_new_instances_only(
    app: CrmApplication, kafka: KafkaClients, worker: ProcessWorker, deployed: DefinitionRegistry
) -> None:
    first = new_web_lead(app, "First")
    relay(app, kafka)
    wait_until(lambda: worker.poll_once() >= 0 and owner(app, first) == "ana", 60, interval_s=0, what="first routed")

    v4 = (DEFINITIONS / "web-lead-follow-up.yaml").read_text().replace("version: 3", "version: 4") \
        .replace('round_robin(["ana", "ben", "chen"])', 'round_robin(["zoe"])')  # fmt: skip
    deployed.deploy(parse_documents(v4, "web-v4.yaml"), "ben")
    second = new_web_lead(app, "Second")
    relay(app, kafka)
    wait_until(lambda: worker.poll_once() >= 0 and owner(app, second) == "zoe", 60, interval_s=0, what="second routed by v4")

    versions = {i.key: i.version for i in worker.runtime.instances.instances.values()}
    assert versions == {first: 3, second: 4}


def test_an_instances_own_history_says_which_process_and_step_did_what(app: CrmApplication, clock: Clock,
                                                                      deployed: DefinitionRegistry) -> None:  # fmt: skip
    lead = new_web_lead(app)
    event = {"specversion": "1.0", "id": "evt-7", "type": "LeadCreated", "subject": lead, "tenantid": "acme",
             "source": "/crmflow/acme/lead", "data": {"source": "web", "name": "Ada"}}  # fmt: skip
    runtime = ProcessRuntime(app, clock)
    runtime.handle([event])
    (instance,) = runtime.instances.instances.values()

    # One record for the run: what it did, step by step, and where it left the instance.
    (run,) = app.history(instance.id, "acme")
    assert run.type == "ProcessInstanceStarted"
    assert (run.data["definition"], run.data["version"], run.data["status"], run.data["step"]) == (
        "web-lead-follow-up", 3, "waiting", "wait-contact")  # fmt: skip
    assert [(e["kind"], e["step"]) for e in run.data["effects"]] == [
        ("entered", "pick-owner"), ("entered", "assign"), ("command", "assign"), ("entered", "wait-contact"),
        ("waiting", "wait-contact")]  # fmt: skip
    assert run.data["effects"][2]["detail"]["args"] == {"lead_id": lead, "owner": "ana"}
    assert run.data["effects"][4]["detail"]["on"] == ["LeadStatusChanged"]
    assert (run.meta["caller"], run.meta["cause"]["process"]) == ("process:web-lead-follow-up@3", "web-lead-follow-up")
    assert app.history(instance.id, "globex") == []


class RacedRuntime(ProcessRuntime):
    """Lets a rival worker save between this worker's refresh and its save."""

    def __init__(self, app: CrmApplication, clock: Clock, rival: Any) -> None:
        super().__init__(app, clock)
        self.rivals = [rival]

    def save(self, effects: Any, unit: Any = None) -> None:
        if self.rivals and self.instances.dirty:
            self.rivals.pop()()
        super().save(effects, unit)


def test_two_workers_changing_one_instance_do_not_both_win(app: CrmApplication, clock: Clock,
                                                          deployed: DefinitionRegistry) -> None:  # fmt: skip
    lead = new_web_lead(app)
    created = {"specversion": "1.0", "id": "evt-1", "type": "LeadCreated", "subject": lead, "tenantid": "acme",
               "source": "/s", "data": {"source": "web"}}  # fmt: skip
    worked = {**created, "id": "evt-2", "type": "LeadStatusChanged", "data": {"status": "working"}}
    one = ProcessRuntime(app, clock)
    one.handle([created])
    two = RacedRuntime(app, clock, rival=lambda: one.handle([worked]))

    # The rival completes the instance between this worker's refresh and its save: the save collides
    # instead of overwriting it, and the batch is handled again at once on fresh state, where the
    # event was already handled.
    assert two.handle([worked]) == ([], [worked])
    assert not two.rivals, "the rival did save first"


    fresh = ProcessRuntime(app, clock)
    fresh.refresh()
    assert [i.status for i in fresh.instances.instances.values()] == ["completed"]
    instance_id = next(iter(fresh.instances.instances))
    runs = app.history(instance_id, "acme")
    assert [h.type for h in runs] == ["ProcessInstanceStarted", "ProcessInstanceRan"], "one run each, not two"
    assert [e["kind"] for e in runs[1].data["effects"]].count("completed") == 1


def lead_created(app: CrmApplication, lead: str) -> dict[str, Any]:
    created = app.history(lead, "acme")[0]
    return {"specversion": "1.0", "id": f"created-{lead}", "type": "LeadCreated", "subject": lead,
            "tenantid": "acme", "source": "/crmflow/acme/lead", "data": created.data}  # fmt: skip


def test_two_process_workers_share_one_round_robin_order(app: CrmApplication, clock: Clock,
                                                          deployed: DefinitionRegistry) -> None:  # fmt: skip
    one, two = ProcessRuntime(app, clock), ProcessRuntime(app, clock)
    leads = [new_web_lead(app, name) for name in ("Ada", "Ben", "Cy", "Dee", "Eve")]

    # The copies take the leads in turns, as two consumers of different partitions would. Turn 0
    # goes to the first seller of ["ana", "ben", "chen"], turn 1 to the second, and so on.
    two.handle([lead_created(app, leads[0])])  # turn 0: ana
    one.handle([lead_created(app, leads[1])])  # turn 1: ben (one finds turn 0 taken in the store)
    # `two` still believes turn 1 is free: its save collides with one's turn 1, it looks again and
    # takes turn 2.
    two.handle([lead_created(app, leads[2])])  # turn 2: chen
    one.handle([lead_created(app, leads[3])])  # turn 3: ana again (collides on turn 2 first)
    one.handle([lead_created(app, leads[4])])  # turn 4: ben

    assert [owner(app, lead) for lead in leads] == ["ana", "ben", "chen", "ana", "ben"]
    # Handling every event again, on either copy, changes nobody's owner and assigns nobody twice.
    for runtime in (one, two, ProcessRuntime(app, clock)):
        runtime.handle([lead_created(app, lead) for lead in leads])
    assert [owner(app, lead) for lead in leads] == ["ana", "ben", "chen", "ana", "ben"]
    assert all([h.type for h in app.history(lead, "acme")].count("LeadAssigned") == 1 for lead in leads)


def test_a_restarted_process_worker_continues_the_rotation_where_it_stood(
    app: CrmApplication, clock: Clock, deployed: DefinitionRegistry
) -> None:
    leads = [new_web_lead(app, name) for name in ("Ada", "Ben", "Cy", "Dee")]
    ProcessRuntime(app, clock).handle([lead_created(app, lead) for lead in leads[:2]])  # ana, ben
    ProcessRuntime(app, clock).handle([lead_created(app, lead) for lead in leads[2:]])  # chen, ana
    # Before turns were stored, a restarted worker began the rotation again at ana.
    assert [owner(app, lead) for lead in leads] == ["ana", "ben", "chen", "ana"]


def test_a_routed_web_lead_is_four_stored_records_and_three_published_events(
    app: CrmApplication, clock: Clock, deployed: DefinitionRegistry
) -> None:
    from crmflow.aggregates.publication import is_published

    before = app.recorder.max_notification_id() or 0
    lead = new_web_lead(app)
    ProcessRuntime(app, clock).handle([lead_created(app, lead)])

    stored = app.recorder.select_notifications(start=before + 1, limit=100)
    # The lead's LeadCreated and LeadAssigned, the instance's one record of its run, and the rotation's
    # turn; the command's idempotency is the instance's own state, stored with it.
    assert sorted(n.topic.rsplit(".", 1)[-1] for n in stored) == [
        "LeadAssigned", "LeadCreated", "ProcessInstanceStarted", "RotationTurnTaken"]  # fmt: skip
    assert sorted(n.topic.rsplit(".", 1)[-1] for n in stored if is_published(n.topic)) == [
        "LeadAssigned", "LeadCreated", "ProcessInstanceStarted"]  # fmt: skip
