"""Definitions that would loop forever are refused before deployment; loops that let time pass are not."""

from __future__ import annotations

from crmflow.processes.loader import DocumentsInvalid, parse_documents
from crmflow.processes.validation import validate


def definition(steps: str, *, name: str = "p", tenant: str = "acme", on: str = "LeadCreated") -> str:
    return (f"apiVersion: crmflow/v1\nkind: Process\nname: {name}\nversion: 1\ntenant: '{tenant}'\n"
            f"trigger: {{on: [{on}]}}\nvars: {{lead: event.subject}}\nsteps:\n{steps}")  # fmt: skip


def problems(text: str, deployed: str = "") -> list[str]:
    try:
        context = parse_documents(deployed, "deployed.yaml") if deployed else []
        issues = validate(parse_documents(text, "p.yaml"), context)
    except DocumentsInvalid as invalid:
        issues = invalid.issues
    return [str(issue) for issue in issues]


def test_a_zero_wait_looping_to_itself_is_refused() -> None:
    assert problems(definition("  - {id: tick, wait: PT0S, next: tick}\n")) == [
        (
            "p.yaml:9: steps[0].id: steps tick loop without time passing (every wait in the loop is "
            "zero-length), so the loop never ends; give one of its waits a positive duration"
        )
    ]


def test_a_cycle_of_waits_whose_timeouts_are_zero_is_refused() -> None:
    steps = """\
  - id: listen
    wait_for: {on: [LeadStatusChanged]}
    timeout: PT0S
    on_timeout: pause
  - id: pause
    wait: {business: PT0S, calendar: office}
    next: listen
"""
    calendar = (
        "apiVersion: crmflow/v1\nkind: Calendar\nname: office\ntimezone: UTC\nhours: {mon: ['09:00-17:00']}\n"
    )
    (loop,) = problems(definition(steps) + "---\n" + calendar)
    assert "steps[0].id: steps listen → pause loop without time passing" in loop


def test_a_loop_through_a_positive_wait_is_accepted() -> None:
    steps = """\
  - id: remind
    do: lead.score
    args: {lead_id: vars.lead, points: '1', reason: '"still open"'}
  - {id: later, wait: P1D, next: remind}
"""
    assert problems(definition(steps)) == []


def test_a_loop_through_a_wait_for_an_event_is_accepted_even_with_a_zero_timeout_elsewhere() -> None:
    steps = """\
  - id: listen
    wait_for: {on: [LeadStatusChanged]}
    timeout: PT0S
    on_timeout: end
    next: listen
"""
    assert problems(definition(steps)) == []


def test_a_counted_choice_loop_without_waits_is_left_to_the_run_time_step_budget() -> None:
    steps = """\
  - {id: start, set: {n: '0'}}
  - {id: count, set: {n: 'vars.n + 1'}}
  - id: again
    choice: [{when: 'vars.n < 3', next: count}]
"""
    assert problems(definition(steps)) == []


def test_a_definition_that_triggers_on_what_it_emits_is_refused_and_so_is_its_fan_out_of_two() -> None:
    once = "  - {id: again, emit: LeadPinged}\n"
    twice = once + "  - {id: twice, emit: LeadPinged}\n"
    for steps in (once, twice):
        assert problems(definition(steps, on="LeadPinged")) == [
            (
                "p.yaml:6: trigger.on[0]: the process emits LeadPinged and triggers on it, so every instance "
                "starts another, forever; trigger on a type it does not emit"
            )
        ]


def test_two_definitions_of_a_tenant_that_trigger_each_other_are_refused_against_what_is_deployed() -> None:
    deployed = definition("  - {id: pong, emit: Pong}\n", name="b", on="Ping")
    proposed = definition("  - {id: ping, emit: Ping}\n", name="a", on="Pong")
    (ring,) = problems(proposed, deployed)
    assert ring == (
        "p.yaml:6: trigger.on: triggers in a ring with b (a emits Ping; b emits Pong, and each triggers "
        "on what another emits): their events would trigger each other forever; break the ring"
    )
    assert problems(proposed + "---\n" + deployed) == [
        ring,
        ring.replace("p.yaml:6", "p.yaml:16").replace("with b", "with a"),
    ]


def test_a_new_version_that_breaks_the_ring_replaces_the_deployed_one() -> None:
    deployed = definition("  - {id: ping, emit: Ping}\n", name="a", on="Pong") + "---\n"
    deployed += definition("  - {id: pong, emit: Pong}\n", name="b", on="Ping").replace(
        "version: 1", "version: 1"
    )
    fixed_b = definition("  - {id: pong, emit: Pong}\n", name="b", on="LeadCreated").replace(
        "version: 1", "version: 2"
    )
    assert problems(fixed_b, deployed) == []


def test_definitions_of_different_tenants_never_trigger_each_other() -> None:
    acme = definition("  - {id: ping, emit: Ping}\n", name="a", on="Pong", tenant="acme")
    globex = definition("  - {id: pong, emit: Pong}\n", name="b", on="Ping", tenant="globex")
    assert problems(acme + "---\n" + globex) == []


def test_a_platform_wide_definition_rings_with_a_tenants_own() -> None:
    acme = definition("  - {id: ping, emit: Ping}\n", name="a", on="Pong", tenant="acme")
    everyone = definition("  - {id: pong, emit: Pong}\n", name="b", on="Ping", tenant="*")
    assert len(problems(acme + "---\n" + everyone)) == 2
