"""Fair share per tenant: each tenant's token bucket, on a clock the test moves by hand."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from crmflow.workers.bootstrap import build_intake
from crmflow.workers.config import Settings
from crmflow.workers.inbound_checks import Rejected
from crmflow.workers.kafka.intake_rate_limit import IntakeRateLimit
from crmflow.workers.rate_limits import MAX_TRACKED_TENANTS, Rate, Refusal, TenantBuckets
from tests.conftest import Seconds


def charge_many(buckets: TenantBuckets, tenant: str, times: int) -> list[Refusal | None]:
    return [buckets.charge(tenant) for _ in range(times)]


def test_a_burst_passes_at_once_the_next_waits_a_tenth_of_a_second_and_half_a_second_refills_five() -> None:
    clock = Seconds(1_000.0)
    buckets = TenantBuckets(Rate(per_s=10, burst=20), clock=clock)

    # The bucket starts full: 20 pass at once.
    assert charge_many(buckets, "acme", 20) == [None] * 20
    # The 21st finds it empty; one token comes back every 1 / 10 s = 0.1 s.
    refusal = buckets.charge("acme")
    assert refusal is not None
    assert refusal.tenant == "acme" and refusal.retry_after_s == pytest.approx(0.1)
    assert refusal.retry_after_whole_s == 1, "Retry-After is whole seconds, rounded up"

    # 0.5 s later: 0.5 s × 10/s = 5 tokens, so five pass and the sixth is refused again.
    clock.advance(0.5)
    assert charge_many(buckets, "acme", 5) == [None] * 5
    assert buckets.charge("acme") is not None


def test_a_quiet_tenant_saves_up_no_more_than_its_burst() -> None:
    clock = Seconds(1_000.0)
    buckets = TenantBuckets(Rate(per_s=10, burst=20), clock=clock)
    charge_many(buckets, "acme", 20)

    # A minute at 10/s would be 600 tokens, but the bucket holds 20.
    clock.advance(60)
    outcomes = charge_many(buckets, "acme", 21)
    assert outcomes[:20] == [None] * 20
    assert outcomes[20] is not None


def test_one_tenant_over_its_rate_leaves_another_tenants_bucket_full() -> None:
    clock = Seconds(1_000.0)
    buckets = TenantBuckets(Rate(per_s=1, burst=3), clock=clock)

    assert [r is None for r in charge_many(buckets, "acme", 10)] == [True] * 3 + [False] * 7
    assert charge_many(buckets, "globex", 3) == [None] * 3, "globex has its own three"


def test_refused_attempts_do_not_push_the_next_token_further_away() -> None:
    clock = Seconds(1_000.0)
    buckets = TenantBuckets(Rate(per_s=2, burst=1), clock=clock)
    assert buckets.charge("acme") is None

    # Empty: one token every 1 / 2 s = 0.5 s. Retrying 0.1 s apart, the wait shrinks by 0.1 s each time.
    waits = []
    for _ in range(4):
        refusal = buckets.charge("acme")
        assert refusal is not None
        waits.append(round(refusal.retry_after_s, 6))
        clock.advance(0.1)
    assert waits == [0.5, 0.4, 0.3, 0.2]
    # 0.4 s have passed; 0.1 s more makes the whole token.
    clock.advance(0.1)
    assert buckets.charge("acme") is None


@pytest.mark.parametrize(
    ("per_s", "wait_s", "header"),
    [(10, 0.1, 1), (0.5, 2.0, 2), (0.3, 1 / 0.3, 4)],
    ids=["a tenth of a second is 1", "two seconds are 2", "3.33 seconds are 4"],
)
def test_retry_after_is_the_wait_rounded_up_to_whole_seconds(
    per_s: float, wait_s: float, header: int
) -> None:
    buckets = TenantBuckets(Rate(per_s=per_s, burst=1), clock=Seconds(1_000.0))
    buckets.charge("acme")
    refusal = buckets.charge("acme")
    assert refusal is not None
    assert refusal.retry_after_s == pytest.approx(wait_s)
    assert refusal.retry_after_whole_s == header


def test_a_rate_of_zero_is_unlimited() -> None:
    buckets = TenantBuckets(Rate(per_s=0, burst=1), clock=Seconds(1_000.0))
    assert charge_many(buckets, "acme", 10_000) == [None] * 10_000
    assert Rate(0, 1).describe() == "unlimited"


def test_tenants_whose_buckets_have_refilled_are_forgotten_so_many_tenants_do_not_grow_memory() -> None:
    clock = Seconds(1_000.0)
    buckets = TenantBuckets(Rate(per_s=10, burst=20), clock=clock)
    for n in range(MAX_TRACKED_TENANTS):
        buckets.charge(f"t{n}")
    # 2 s × 10/s refills every one of them (each spent 1 of 20); the next new tenant makes room.
    clock.advance(2)
    buckets.charge("newcomer")
    assert len(buckets) == 1
    # Forgetting a full bucket changes nothing: a forgotten tenant still has its whole burst.
    assert charge_many(buckets, "t0", 20) == [None] * 20


@pytest.mark.parametrize(
    ("rate", "message"),
    [((-1, 10), "a rate is 0 (unlimited) or a positive number per second, not -1"),
     ((5, 0), "a burst is at least 1 (one at a time), not 0")],
)  # fmt: skip
def test_a_rate_that_cannot_work_is_refused_saying_what_is_allowed(
    rate: tuple[float, int], message: str
) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Rate(*rate)


def test_the_limits_come_from_the_environment_and_the_defaults_are_generous(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    defaults = Settings()
    assert defaults.api_rate() == Rate(200, 1_000)
    assert defaults.intake_rate() == Rate(2_000, 50_000)

    monkeypatch.setenv("CRMFLOW_API_RATE_PER_S", "2.5")
    monkeypatch.setenv("CRMFLOW_API_BURST", "5")
    monkeypatch.setenv("CRMFLOW_INTAKE_RATE_PER_S", "0")
    configured = Settings()
    assert configured.api_rate() == Rate(2.5, 5)
    assert configured.intake_rate().unlimited


@pytest.mark.parametrize(("name", "value"), [("CRMFLOW_API_RATE_PER_S", "-1"), ("CRMFLOW_INTAKE_BURST", "0"),
                                             ("CRMFLOW_API_RATE_PER_S", "inf")])  # fmt: skip
def test_a_bad_limit_setting_is_refused_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=name.removeprefix("CRMFLOW_").lower()):
        Settings()


def test_the_intake_refuses_a_message_over_its_tenants_rate_as_rate_limited_naming_the_rate() -> None:
    clock = Seconds(1_000.0)
    limit = IntakeRateLimit(TenantBuckets(Rate(per_s=1, burst=2), clock=clock))
    limit("acme")
    limit("acme")

    with pytest.raises(Rejected) as refused:
        limit("acme")

    assert refused.value.code == "rate_limited"
    assert "tenant acme is over the intake's limit of 1 per second (burst 2)" in refused.value.reason
    assert "crmflow deadletter redrive --error rate_limited" in refused.value.reason
    limit("globex")  # another tenant is not refused


def test_the_intake_a_worker_builds_charges_tenants_at_the_configured_rate() -> None:
    settings = Settings(tenants=["acme"], intake_rate_per_s=3, intake_burst=4)
    intake = build_intake(settings, app=None, kafka=None)  # type: ignore[arg-type]  # built, never run
    assert isinstance(intake.rate_limit, IntakeRateLimit)
    assert intake.rate_limit.buckets.rate == Rate(3, 4)
