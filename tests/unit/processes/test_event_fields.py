"""A definition reads only event data fields its events carry: checked at validate, named when missing at run time."""

from __future__ import annotations

import textwrap
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from crmflow.aggregates.application import CommandRequest, CrmApplication
from crmflow.processes.field_refs import field_report, visible_types
from crmflow.processes.loader import load_files, parse_documents
from crmflow.processes.simulation import Simulation
from crmflow.processes.validation import validate
from crmflow.workers.history import stored_history

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
DEFINITIONS = Path(__file__).parents[3] / "processes" / "definitions"
STAGE_CHANGE_FIELDS = "stage, previous_stage, probability, amount, currency"


def definition(trigger: str, steps: str, *, vars_: str = "deal: event.subject", name: str = "p") -> str:
    return (f"apiVersion: crmflow/v1\nkind: Process\nname: {name}\nversion: 1\ntrigger:\n"
            + textwrap.indent(textwrap.dedent(trigger), "  ") + f"vars:\n  {vars_}\nsteps:\n"
            + textwrap.indent(textwrap.dedent(steps), "  "))  # fmt: skip


def problems(*texts: str, inbound: dict[str, Any] | None = None) -> list[str]:
    return [str(i) for i in validate(parse_documents("\n---\n".join(texts), "p.yaml"), inbound=inbound)]


def warnings(*texts: str) -> list[str]:
    return [str(i) for i in field_report(parse_documents("\n---\n".join(texts), "p.yaml")).warnings]


EMIT = """\
- id: tell
  emit: BigDeal
  data: {deal: vars.deal}
"""


def test_validate_names_the_field_a_stage_change_does_not_carry() -> None:
    text = definition("on: [OpportunityStageChanged]\nwhen: 'event.data.owner == \"ana\"'\n", EMIT)
    assert problems(text) == [
        f"p.yaml:7: trigger.when: OpportunityStageChanged has no field 'owner' (it has {STAGE_CHANGE_FIELDS})"
    ]


def test_every_expression_is_checked_vars_args_data_set_and_choice() -> None:
    text = definition("on: [LeadCreated]\n", """\
        - id: route
          choice: [{when: 'event.data.hot', next: assign}]
        - id: assign
          do: lead.assign
          args: {lead_id: vars.lead, owner: event.data.owner_name}
        - id: note
          set: {region: event.data.region}
        - id: tell
          emit: LeadRouted
          data: {lead: vars.lead, why: event.data.reason}
        """, vars_="lead: event.data.lead")  # fmt: skip
    fields = [p.split(": ")[1] for p in problems(text)]
    assert fields == ["vars.lead", "steps[0].choice[0].when", "steps[1].args.owner", "steps[2].set.region",
                      "steps[3].data.why"]  # fmt: skip
    assert all("LeadCreated has no field" in p for p in problems(text))


def test_a_deal_size_rule_on_stage_changes_validates_and_runs_on_the_events_the_store_records() -> None:
    text = definition("on: [OpportunityStageChanged]\nwhen: 'double(event.data.amount) >= 100000.0'\n", """\
        - id: tell
          emit: BigDealMoved
          data: {deal: vars.deal, amount: event.data.amount, currency: event.data.currency}
        """)  # fmt: skip
    documents = parse_documents(text, "p.yaml")
    assert validate(documents) == []

    app = CrmApplication("memory://")
    account = app.execute(CommandRequest("account.create", "acme", {"name": "Analytical Engines"})).aggregate_id
    deals = {}
    for name, amount in (("big", "120000.00"), ("small", "9000")):
        deals[name] = str(app.execute(CommandRequest("opportunity.create", "acme", {
            "account_id": str(account), "name": name, "amount": amount, "close_date": "2027-03-31"})).aggregate_id)
        app.execute(CommandRequest("opportunity.advance", "acme", {"opportunity_id": deals[name]}))  # fmt: skip
    sim = Simulation(documents, NOW)
    for document in stored_history(app):
        sim.publish(document)
    assert [e["data"] for e in sim.emits.emitted] == [
        {"deal": deals["big"], "amount": "120000.00", "currency": "EUR"}
    ]


def test_after_a_wait_the_steps_see_the_event_that_woke_them() -> None:
    text = definition("on: [OpportunityCreated]\n", """\
        - id: wait-won
          wait_for: {on: [OpportunityWon]}
        - id: tell
          emit: DealWon
          data: {deal: vars.deal, amount: event.data.amount, owner: event.data.owner}
        """)  # fmt: skip
    # amount: OpportunityWon has it; owner: only the trigger (OpportunityCreated) had it.
    assert problems(text) == [
        "p.yaml:14: steps[1].data.owner: OpportunityWon has no field 'owner' "
        "(it has stage, previous_stage, probability, amount, closed_at)"
    ]


def test_a_timeout_branch_sees_the_timer_not_the_awaited_event() -> None:
    text = definition("on: [OpportunityCreated]\n", """\
        - id: wait-won
          wait_for: {on: [OpportunityWon]}
          timeout: P30D
          on_timeout: nudge
          next: end
        - id: nudge
          emit: DealStalled
          data: {deal: vars.deal, amount: event.data.amount}
        """)  # fmt: skip
    assert problems(text) == ["p.yaml:17: steps[1].data.amount: TimerFired has no field 'amount' (it has step, reason)"]


def test_a_field_only_some_of_the_visible_events_carry_is_not_an_error() -> None:
    # Won carries amount, Lost a reason: each read is there for one of the two, so neither is reported.
    text = definition("on: [OpportunityCreated]\n", """\
        - id: closed
          wait_for: {on: [OpportunityWon, OpportunityLost]}
        - id: tell
          emit: DealClosed
          data: {deal: vars.deal, amount: event.data.amount, reason: event.data.reason, x: event.data.stagee}
        """)  # fmt: skip
    assert problems(text) == [
        "p.yaml:14: steps[1].data.x: neither OpportunityLost nor OpportunityWon has a field 'stagee' "
        "(OpportunityLost has stage, previous_stage, probability, reason, closed_at; "
        "OpportunityWon has stage, previous_stage, probability, amount, closed_at)"
    ]


def test_a_step_reached_after_the_trigger_and_after_a_wait_sees_both() -> None:
    text = definition("on: [LeadCreated]\n", """\
        - id: first
          choice: [{when: 'vars.deal == ""', next: wait}]
          otherwise: tell
        - id: wait
          wait_for: {on: [LeadAssigned]}
        - id: tell
          emit: LeadTold
          data: {deal: vars.deal}
        """)  # fmt: skip
    p = parse_documents(text, "p.yaml")[0].model
    assert visible_types(p) == [{"LeadCreated"}, {"LeadCreated"}, {"LeadCreated", "LeadAssigned"}]  # type: ignore[arg-type]


def test_a_retried_command_may_run_again_on_its_retry_timer() -> None:
    text = definition("on: [LeadCreated]\n", """\
        - id: assign
          do: lead.assign
          args: {lead_id: vars.deal, owner: '"ana"'}
          retry: {max: 2}
        - id: tell
          emit: LeadTold
          data: {deal: vars.deal}
        """)  # fmt: skip
    p = parse_documents(text, "p.yaml")[0].model
    assert visible_types(p) == [{"LeadCreated", "TimerFired"}, {"LeadCreated", "TimerFired"}]  # type: ignore[arg-type]


def test_a_has_guard_of_a_field_no_visible_event_carries_is_a_warning_not_an_error() -> None:
    guarded = definition("on: [OpportunityStageChanged]\nwhen: 'has(event.data.discount) && event.data.discount > 0'\n", EMIT)
    assert problems(guarded) == []  # the read under the guard is not reported on top of the warning
    assert warnings(guarded) == [
        "p.yaml:7: trigger.when: warning: has(event.data.discount) is always false: "
        f"OpportunityStageChanged has no field 'discount' (it has {STAGE_CHANGE_FIELDS})"
    ]
    # A guard for old stored events, which lack the amount: legitimate, nothing said.
    old_events = definition("on: [OpportunityStageChanged]\nwhen: 'has(event.data.amount)'\n", EMIT)
    assert problems(old_events) == warnings(old_events) == []


def test_a_has_guard_needs_the_parent_it_looks_into() -> None:
    # has(event.data.a.b) fails at run time when a is missing: that part is a read, an error.
    text = definition("on: [LeadConverted]\nwhen: 'has(event.data.deal.amount)'\n", EMIT)
    (problem,) = problems(text)
    assert "trigger.when: LeadConverted has no field 'deal'" in problem
    # A read below a guarded field is covered by the guard's warning.
    guarded = definition("on: [LeadConverted]\nwhen: 'has(event.data.deal) && event.data.deal.amount > 0'\n", EMIT)
    assert problems(guarded) == [] and len(warnings(guarded)) == 1


def test_nested_reads_check_only_the_first_level_of_a_domain_event() -> None:
    text = definition("on: [LeadConverted]\nwhen: 'event.data.opportunity_id.x == 1 || event.data.deal.x == 1'\n", EMIT)
    (problem,) = problems(text)
    assert "LeadConverted has no field 'deal' (it has status, account_id, contact_id, opportunity_id)" in problem


def test_inbound_types_without_a_schema_are_not_checked_and_are_named() -> None:
    text = definition("on: [FormSubmitted, LeadCreated]\nwhen: 'event.data.anything == 1'\n", EMIT)
    assert problems(text) == []  # the field may come with the inbound type
    assert field_report(parse_documents(text, "p.yaml")).unchecked == {"FormSubmitted"}


def test_an_inbound_type_with_a_closed_json_schema_is_checked_to_its_nested_fields() -> None:
    schema = {"type": "object", "additionalProperties": False, "properties": {
        "invoice_id": {"type": "string"},
        "customer": {"type": "object", "additionalProperties": False, "properties": {"id": {"type": "string"}}},
        "extra": {"type": "object"},
    }}  # fmt: skip
    text = definition("on: [InvoicePaid]\n", """\
        - id: tell
          emit: Paid
          data: {a: event.data.invoice_id, b: event.data.customer.name, c: event.data.extra.free, d: event.data.total}
        """, vars_="invoice: event.data.invoice_id")  # fmt: skip
    assert problems(text, inbound={"InvoicePaid": schema}) == [
        "p.yaml:12: steps[0].data.b: InvoicePaid has no field 'customer.name' (it has id)",
        "p.yaml:12: steps[0].data.d: InvoicePaid has no field 'total' (it has invoice_id, customer, extra)",
    ]
    open_schema = {**schema, "additionalProperties": True}
    assert problems(text, inbound={"InvoicePaid": open_schema}) == []  # it may carry more than it lists


def test_an_emitted_type_carries_the_fields_its_emit_steps_give_it() -> None:
    emitter = definition("on: [LeadCreated]\n", "- id: tell\n  emit: LeadRouted\n  data: {lead: vars.deal}\n")
    listener = definition("on: [LeadRouted]\n", EMIT.replace("vars.deal", "event.data.leed"), name="q")
    assert problems(emitter, listener) == [
        "p.yaml:26: steps[0].data.deal: LeadRouted has no field 'leed' (it has lead)"
    ]


def test_the_shipped_definitions_read_only_fields_their_events_carry() -> None:
    report = field_report(load_files(sorted(DEFINITIONS.glob("*.yaml"))))
    assert (report.errors, report.warnings) == ([], [])
    assert report.unchecked == {"FormSubmitted", "InvoicePaid", "WebinarAttended"}  # inbound, no schema


def test_a_missing_field_fails_the_step_naming_the_event_type_and_the_field() -> None:
    # A stage change stored before stage changes carried the amount, replayed (whatif) or redelivered.
    old = {"specversion": "1.0", "id": "e-1", "source": "/t", "type": "OpportunityStageChanged", "subject": "o-1",
           "tenantid": "acme", "data": {"stage": "proposal", "previous_stage": "qualification", "probability": 50}}  # fmt: skip
    trigger = definition("on: [OpportunityStageChanged]\nwhen: 'event.data.amount >= 100000.0'\n", EMIT)
    sim = Simulation(parse_documents(trigger, "p.yaml"), NOW)
    (skipped,) = sim.publish(old)
    assert skipped.detail["error"] == (
        "'event.data.amount >= 100000.0' failed: OpportunityStageChanged has no field 'amount'"
    )

    step = definition("on: [OpportunityStageChanged]\n", """\
        - id: tell
          emit: BigDeal
          data: {deal: vars.deal, amount: 'double(event.data.amount)'}
        """)  # fmt: skip
    sim = Simulation(parse_documents(step, "p.yaml"), NOW)
    sim.publish(old)
    (instance,) = sim.instances.instances.values()
    assert (instance.status, instance.error) == (
        "failed", "'double(event.data.amount)' failed: OpportunityStageChanged has no field 'amount'"
    )
