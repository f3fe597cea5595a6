"""Other services publish to the inbound topic; the intake stores what is good and dead-letters the rest."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from crmflow.aggregates.application import CrmApplication
from crmflow.aggregates.inbound import inbound_id
from crmflow.workers.inbound_checks import InboundPolicy
from crmflow.workers.kafka import deadletters
from crmflow.workers.kafka.clients import KafkaClients
from crmflow.workers.kafka.intake import Intake
from tests.unit.test_inbound_checks import BAD_MESSAGES
from tests.waiting import read_topic, wait_until

POLICY = InboundPolicy(tenants=frozenset({"acme", "globex"}), max_bytes=2048)


def form(event_id: str, tenant: str = "acme", **data: Any) -> bytes:
    return json.dumps({"specversion": "1.0", "id": event_id, "source": "/web/forms", "type": "FormSubmitted",
                       "tenantid": tenant, "data": {"email": "ada@ae.example", **data}}).encode()  # fmt: skip


def publish(kafka: KafkaClients, *values: bytes) -> None:
    for value in values:
        kafka.producer.send(kafka.topics.inbound, key=b"k", value=value)
    kafka.producer.flush()


def drain(intake: Intake, handled: int) -> None:
    """Poll until the intake has handled this many messages in all."""
    total = [0]

    def done() -> bool:
        total[0] += intake.poll_once()
        return total[0] >= handled

    wait_until(done, 60, interval_s=0, what=f"the intake to handle {handled} messages")


@pytest.fixture
def intake(app: CrmApplication, kafka: KafkaClients) -> Iterator[Intake]:
    yield Intake(app, kafka, POLICY)


def stored_inbound(app: CrmApplication, tenant: str, event_id: str) -> list[str]:
    return [h.type for h in app.history(inbound_id(tenant, "/web/forms", event_id), tenant)]


def test_bad_messages_are_dead_lettered_with_the_reason_and_good_ones_stored_once(
    app: CrmApplication, kafka: KafkaClients, intake: Intake
) -> None:
    # Not every bad kind needs a schema; these are the ones this policy can see.
    bad = [(code, message) for code, message, _ in BAD_MESSAGES if code != "schema_violation"]
    publish(kafka, form("ok-1"), *[m for _, m in bad], form("ok-2", tenant="globex"), form("ok-1"))

    drain(intake, handled=len(bad) + 3)

    # Good events are stored; the repeated one only once.
    assert stored_inbound(app, "acme", "ok-1") == ["InboundEventAccepted"]
    assert stored_inbound(app, "globex", "ok-2") == ["InboundEventAccepted"]
    assert (intake.counts["accepted"], intake.counts["duplicate"]) == (2, 1)
    # Every bad message is on the dead-letter topic, as it was sent, with why and where from.
    letters = deadletters.list_dead_letters(kafka)
    assert sorted(d.error for d in letters) == sorted(code for code, _ in bad)
    originals = {m for _, m in bad}
    for letter in letters:
        assert letter.value in originals or letter.value == b""
        assert letter.headers["crmflow-original-topic"] == kafka.topics.inbound
        assert letter.headers["crmflow-attempts"] == "1"
        assert letter.headers["crmflow-error-class"] == "Rejected"
        assert letter.headers["crmflow-reason"]
        assert int(letter.headers["crmflow-original-offset"]) >= 0
    # The worker is still going: a later good event is taken too.
    publish(kafka, form("ok-3"))
    drain(intake, handled=1)
    assert stored_inbound(app, "acme", "ok-3") == ["InboundEventAccepted"]


def test_a_dead_letter_is_redriven_once_after_the_cause_is_fixed(app: CrmApplication, kafka: KafkaClients) -> None:
    # Initech is not a tenant yet: its form is dead-lettered.
    first = Intake(app, kafka, POLICY)
    publish(kafka, form("init-1", tenant="initech"))
    drain(first, handled=1)
    (letter,) = deadletters.list_dead_letters(kafka)
    assert letter.error == "unknown_tenant"

    # Onboarding adds the tenant: the intake restarts with it, and the operator
    # redrives what failed for that reason.
    first.close()
    onboarded = Intake(app, kafka, InboundPolicy(tenants=frozenset({"acme", "initech"})))
    assert [d.position for d in deadletters.redrive(kafka, error="unknown_tenant", dry_run=True)] == [letter.position]
    assert len(deadletters.redrive(kafka, error="unknown_tenant")) == 1
    drain(onboarded, handled=1)

    assert stored_inbound(app, "initech", "init-1") == ["InboundEventAccepted"]
    assert deadletters.redrive(kafka) == [], "a dead letter is redriven once"
    redriven = read_topic(kafka, kafka.topics.inbound, at_least=2)[-1]
    assert dict(redriven.headers)["crmflow-attempts"] == b"1"
