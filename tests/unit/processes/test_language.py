"""A process designer writes YAML; mistakes are found before deployment, each with file, line and field."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from crmflow.processes.durations import DurationError, parse_duration
from crmflow.processes.loader import DocumentsInvalid, load_files, parse_documents
from crmflow.processes.schema import DoStep, ProcessDefinition, WaitForStep
from crmflow.processes.schema_file import json_schema
from crmflow.processes.validation import validate

DEFINITIONS = Path(__file__).parents[3] / "processes" / "definitions"

PROCESS_HEAD = """\
apiVersion: crmflow/v1
kind: Process
name: web-lead
version: 1
trigger:
  on: [LeadCreated]
vars:
  lead: event.subject
steps:
"""


def problems(yaml_text: str) -> list[str]:
    """Every issue as 'line: field: message', from parsing and from validation."""
    try:
        issues = validate(parse_documents(textwrap.dedent(yaml_text), "p.yaml"))
    except DocumentsInvalid as invalid:
        issues = invalid.issues
    return [f"{i.line}: {i.field}: {i.message}" for i in issues]


def steps(text: str) -> str:
    return PROCESS_HEAD + textwrap.indent(textwrap.dedent(text), "  ")


def test_the_shipped_documents_are_valid() -> None:
    documents = load_files(sorted(DEFINITIONS.glob("*.yaml")))
    assert validate(documents) == []
    assert {d.kind for d in documents} >= {"Process", "Calendar"}


def test_the_spec_example_reads_as_the_designer_wrote_it() -> None:
    (document,) = load_files([DEFINITIONS / "web-lead-follow-up.yaml"])
    process = document.model
    assert isinstance(process, ProcessDefinition)
    assert (process.name, process.version, process.tenant) == ("web-lead-follow-up", 3, "*")
    assert process.trigger.on == ["LeadCreated"]  # `on:` is a key, not YAML 1.1's True
    assert isinstance(process.steps[1], DoStep) and process.steps[1].args["owner"] == "vars.owner"
    wait = process.steps[2]
    assert isinstance(wait, WaitForStep) and (wait.timeout, wait.on_timeout, wait.next) == ("P2D", "escalate", "end")


def test_shape_errors_name_the_line_and_field() -> None:
    found = problems(steps("""\
        - id: assign
          do: lead.assign
          args: {lead_id: vars.lead, owner: '"x"'}
          colour: red
        - id: pause
          wait: P2M
        - id: both
          do: lead.work
          emit: Y
        """))
    assert found == [
        "13: steps[0].colour: unknown field (not part of the process language)",
        "15: steps[1].wait: 'P2M' is not a duration: use ISO 8601 like P2D, PT4H, P1DT12H (no months or years), "
        "or short forms like 8h, 90m, 2d",
        "16: steps[2]: a step has exactly one of: do, emit, wait_for, wait, choice, set",
    ]


@pytest.mark.parametrize(
    ("step_yaml", "expected"),
    [
        ("- id: a\n  do: lead.asign\n  args: {lead_id: vars.lead}\n",
         "11: steps[0].do: unknown command 'lead.asign'; did you mean lead.assign"),
        ("- id: a\n  do: lead.assign\n  args: {lead_id: vars.lead, owner: '\"x\"', colour: '\"red\"'}\n",
         "12: steps[0].args.colour: lead.assign has no argument 'colour': it takes lead_id, owner"),
        ("- id: a\n  do: lead.assign\n  args: {lead_id: vars.lead}\n", "12: steps[0].args: lead.assign needs owner"),
        ("- id: a\n  set: {x: 'event.data.('}\n", "11: steps[0].set.x: 'event.data.(' is not valid CEL"),
        ("- id: a\n  set: {x: 'evnt.data'}\n", "11: steps[0].set.x: unknown variable(s) evnt"),
        ("- id: a\n  set: {x: 'vars.owner'}\n", "11: steps[0].set.x: vars.owner is never set"),
        ("- id: a\n  set: {x: '1'}\n  next: b\n", "12: steps[0].next: 'b' is not a step of this process"),
        ("- id: a\n  set: {x: '1'}\n  next: end\n- id: b\n  set: {y: '2'}\n", "13: steps[1].id: step 'b' can never be reached"),
        ("- id: a\n  set: {x: '1'}\n- id: a\n  set: {y: '2'}\n", "12: steps[1].id: step id 'a' is used twice"),
        ("- id: a\n  wait_for: {on: [LeadStatusChanged], when: 'event.data.status == \"working\"'}\n",
         "11: steps[0].wait_for.when: the condition never looks at vars"),
        ("- id: a\n  wait_for: {on: [LeadStatusChangd]}\n",
         "11: steps[0].wait_for.on[0]: unknown event type 'LeadStatusChangd'; did you mean LeadStatusChanged"),
        ("- id: a\n  wait_for: {on: [FormSubmitted]}\n  timeout: {business: 8h, calendar: support-apac}\n",
         "12: steps[0].timeout.calendar: calendar 'support-apac' is not defined in the files given"),
        ("- id: a\n  emit: LeadCreated\n", "11: steps[0].emit: LeadCreated is a domain event that only its aggregate records"),
        ("- id: a\n  choice:\n    - {when: 'vars.lead == \"\"', next: nowhere}\n",
         "12: steps[0].choice[0].next: 'nowhere' is not a step of this process"),
    ],
)
def test_each_meaning_error_is_reported_with_line_and_field(step_yaml: str, expected: str) -> None:
    found = problems(steps(step_yaml))
    assert any(f.startswith(expected) for f in found), found


def test_the_trigger_cannot_use_vars_that_it_computes() -> None:
    text = PROCESS_HEAD.replace("  on: [LeadCreated]\n", "  on: [LeadCreated]\n  when: vars.lead != \"\"\n")
    assert problems(text + "  - {id: a, set: {x: '1'}}\n") == [
        "7: trigger.when: cannot use vars here: they are computed from the trigger event, after this"]  # fmt: skip


def test_inbound_event_types_are_free_but_domain_look_alikes_are_checked() -> None:
    text = PROCESS_HEAD.replace("[LeadCreated]", "[FormSubmitted, WebinarAttended, OpportunityWonn]")
    assert problems(text + "  - {id: a, set: {x: '1'}}\n") == [
        "6: trigger.on[2]: unknown event type 'OpportunityWonn'; did you mean OpportunityWon or OpportunityLost?"]  # fmt: skip


def test_broken_yaml_and_unknown_kinds_are_named() -> None:
    assert problems("apiVersion: crmflow/v1\nkind: [unclosed\n") [0].startswith("3: : not valid YAML")
    assert problems("apiVersion: crmflow/v1\nkind: Workflow\n") == [
        "2: kind: 'Workflow' is not a document kind: use one of Process, Calendar, ProcessTest, Segmentation"]  # fmt: skip


def test_a_test_must_name_a_process_in_the_files() -> None:
    found = problems("""\
        apiVersion: crmflow/v1
        kind: ProcessTest
        name: routes web leads
        process: nobody
        start: 2026-03-02T09:00:00Z
        steps:
          - advance: PT1H
        """)
    assert found == ["4: process: no process named 'nobody' in the files given"]


def test_the_json_schema_covers_every_document_kind_for_editors() -> None:
    schema = json_schema()
    assert {"ProcessDefinition", "Calendar", "ProcessTest", "DoStep", "WaitForStep"} <= set(schema["definitions"])
    assert schema["definitions"]["ProcessDefinition"]["properties"]["apiVersion"]["const"] == "crmflow/v1"
    json.dumps(schema)


@pytest.mark.parametrize(("text", "hours"), [("P2D", 48), ("PT8H", 8), ("P1DT12H", 36), ("8h", 8), ("90m", 1.5), ("1d2h", 26)])
def test_durations_in_iso_or_short_form(text: str, hours: float) -> None:
    assert parse_duration(text).total_seconds() == hours * 3600


@pytest.mark.parametrize("text", ["P1M", "P1Y", "2 days", "", "PT", "h"])
def test_ambiguous_or_malformed_durations_are_refused(text: str) -> None:
    with pytest.raises(DurationError, match="is not a duration"):
        parse_duration(text)
