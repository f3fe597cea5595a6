"""Fair share at the intake: a tenant flooding the inbound topic holds back no other and loses nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY

from crmflow.aggregates.application import CrmApplication
from crmflow.aggregates.inbound import inbound_id
from crmflow.workers.inbound_checks import InboundPolicy
from crmflow.workers.kafka import deadletters
from crmflow.workers.kafka.clients import KafkaClients
from crmflow.workers.kafka.intake import Intake
from crmflow.workers.kafka.intake_rate_limit import IntakeRateLimit
from crmflow.workers.rate_limits import Rate, TenantBuckets
from tests.conftest import Seconds
from tests.integration.test_intake import drain
from tests.waiting import wait_until

POLICY = InboundPolicy(tenants=frozenset({"acme", "globex"}))
RATE = Rate(per_s=5, burst=10)


@pytest.fixture
def intake(app: CrmApplication, kafka: KafkaClients, seconds: Seconds) -> Iterator[Intake]:
    running = Intake(app, kafka, POLICY, IntakeRateLimit(TenantBuckets(RATE, clock=seconds)))
    yield running
    running.close()


def form(event_id: str, tenant: str) -> bytes:
    return json.dumps({"specversion": "1.0", "id": event_id, "source": "/web/forms", "type": "FormSubmitted",
                       "tenantid": tenant, "data": {"email": "ada@ae.example"}}).encode()  # fmt: skip


def publish(kafka: KafkaClients, values: list[bytes]) -> None:
    for value in values:  # one key: one partition, so globex's forms queue behind acme's flood
        kafka.producer.send(kafka.topics.inbound, key=b"web-forms", value=value)
    kafka.producer.flush()


def redrive_rate_limited(kafka: KafkaClients, expected: int) -> list[deadletters.DeadLetter]:
    """What an operator runs: `crmflow deadletter redrive --error rate_limited` (until all are back)."""
    sent: list[deadletters.DeadLetter] = []

    def all_sent() -> bool:
        sent.extend(deadletters.redrive(kafka, error="rate_limited"))
        return len(sent) >= expected

    wait_until(all_sent, 30, what=f"{expected} rate-limited dead letters to be redriven")
    return sent


def stored(app: CrmApplication, tenant: str, event_id: str) -> list[str]:
    return [h.type for h in app.history(inbound_id(tenant, "/web/forms", event_id), tenant)]


def rate_limited_so_far(tenant: str) -> float:
    return (
        REGISTRY.get_sample_value("crmflow_rate_limited_total", {"entry": "intake", "tenant": tenant}) or 0.0
    )


def test_a_tenant_bursting_far_over_its_rate_does_not_hold_back_another_and_its_excess_is_redriven_in_full(
    app: CrmApplication, kafka: KafkaClients, intake: Intake, seconds: Seconds
) -> None:
    counted_before = rate_limited_so_far("acme"), rate_limited_so_far("globex")

    # Acme floods 50 forms; globex's 3 arrive behind them, on the same partition.
    publish(
        kafka,
        [form(f"acme-{n}", "acme") for n in range(50)] + [form(f"globex-{n}", "globex") for n in range(3)],
    )
    drain(intake, handled=53)

    # Globex's forms are stored in the same pass: its bucket (burst 10) is its own.
    assert all(stored(app, "globex", f"globex-{n}") == ["InboundEventAccepted"] for n in range(3))
    # Acme's burst of 10 is stored; the other 50 - 10 = 40 are dead-lettered, saying why and how to redrive.
    assert sum(bool(stored(app, "acme", f"acme-{n}")) for n in range(50)) == 10
    letters = deadletters.list_dead_letters(kafka)
    assert len(letters) == 40 and {d.error for d in letters} == {"rate_limited"}
    assert (
        "tenant acme is over the intake's limit of 5 per second (burst 10)"
        in letters[0].headers["crmflow-reason"]
    )
    assert "crmflow deadletter redrive --error rate_limited" in letters[0].headers["crmflow-reason"]

    # The operator redrives after the flood. Between rounds 2 s pass: 2 s × 5/s = 10 tokens, a full burst,
    # so each round brings 10 more in and dead-letters the rest again: 40 → 30 → 20 → 10 → 0.
    pending, rounds = 40, 0
    while pending:
        seconds.now += 2
        sent = redrive_rate_limited(kafka, expected=pending)
        assert len(sent) == pending and {int(d.headers["crmflow-attempts"]) for d in sent} == {rounds + 1}
        drain(intake, handled=pending)
        pending -= RATE.burst
        rounds += 1
    assert rounds == 4

    # Nothing lost, nothing twice: all 50 of acme's and 3 of globex's are stored, each once.
    assert all(stored(app, "acme", f"acme-{n}") == ["InboundEventAccepted"] for n in range(50))
    assert (intake.counts["accepted"], intake.counts["duplicate"]) == (53, 0)
    # Refusals counted per tenant: 40 + 30 + 20 + 10 = 100 for acme, none for globex.
    assert rate_limited_so_far("acme") - counted_before[0] == 100
    assert rate_limited_so_far("globex") == counted_before[1]
