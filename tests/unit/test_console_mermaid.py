"""Mermaid flowcharts from process definitions, and report rows as charts: pure text, no browser."""

from __future__ import annotations

from pathlib import Path

from crmflow.processes.loader import parse_documents
from crmflow.workers.console import charts
from crmflow.workers.console.mermaid import flowchart, label

SHIPPED = Path(__file__).parents[2] / "processes" / "definitions"


def _process(name: str) -> object:
    (document,) = [
        d for d in parse_documents((SHIPPED / f"{name}.yaml").read_text(), name) if d.kind == "Process"
    ]
    return document.model


def test_a_wait_with_a_timeout_draws_the_event_edge_and_the_timeout_edge_to_its_step() -> None:
    text = flowchart(_process("web-lead-follow-up"))  # type: ignore[arg-type]
    assert text.startswith("flowchart TD\n")
    assert (
        'start(["on LeadCreated<br/>when event.data.source in [#quot;web#quot;, #quot;webinar#quot;]"])'
        in text
    )
    assert 's1["assign: do lead.assign<br/>lead_id = vars.lead<br/>owner = vars.owner"]' in text
    assert 's2 -->|"LeadStatusChanged"| finish' in text, "next: end"
    assert 's2 -.->|"timeout P2D"| s3' in text, "on_timeout: escalate"
    assert 's3[/"escalate: emit LeadFollowUpOverdue' in text and "s3 --> finish" in text


def test_choices_draw_each_condition_and_business_time_names_its_calendar() -> None:
    process = _process("case-sla")
    text = flowchart(process)  # type: ignore[arg-type]
    node = {step.id: f"s{n}" for n, step in enumerate(process.steps)}  # nodes are numbered in step order
    assert f'{node["respond-by-priority"]}{{"respond-by-priority: choice"}}' in text
    assert f'{node["respond-by-priority"]} -->|"vars.priority == #quot;urgent#quot;"| {node["respond-urgent"]}' in text
    assert f'{node["respond-by-priority"]} -->|"otherwise"| {node["respond-normal"]}' in text
    assert f'-.->|"timeout 1h business time, calendar support-emea"| {node["response-breached"]}' in text
    assert "paused by CaseOnHold<br/>resumed by CaseResumed" in text


def test_a_timeout_with_nowhere_to_go_fails_the_instance_and_the_diagram_says_so() -> None:
    yaml = """apiVersion: crmflow/v1
kind: Process
name: wait-and-fail
version: 1
trigger: {on: [LeadCreated]}
steps:
  - id: wait
    wait_for: {on: [LeadQualified]}
    timeout: PT1H
"""
    (document,) = parse_documents(yaml, "inline")
    text = flowchart(document.model)  # type: ignore[arg-type]
    assert 's0 -.->|"timeout PT1H"| failed' in text and 'failed(("failed"))' in text
    assert 's0 -->|"LeadQualified"| finish' in text


def test_no_text_in_a_definition_can_end_a_label_or_add_a_node() -> None:
    hostile = 'x"]\nclick s0 "javascript:alert(1)"|<b>#'
    escaped = label(hostile)
    assert escaped.count('"') == 2, "only the label's own quotes"
    assert "<b>" not in escaped and "|" not in escaped
    assert "<br/>" in escaped, "a new line in the text is a line of the label, not of the diagram"


def test_charts_show_the_report_values_unchanged_and_never_add_two_currencies() -> None:
    rows = [
        {"stage": "proposal", "owner": "ana", "currency": "EUR", "amount": "1250.25"},
        {"stage": "proposal", "owner": "ana", "currency": "USD", "amount": "99.10"},
        {"stage": "negotiation", "owner": "ben", "currency": "EUR", "amount": "3000.00"},
    ]
    option = charts.option("pipeline", rows)
    assert option is not None and option["xAxis"]["data"] == ["proposal", "negotiation"]
    assert {s["name"]: s["data"] for s in option["series"]} == {
        "ana (EUR)": ["1250.25", None], "ana (USD)": ["99.10", None], "ben (EUR)": [None, "3000.00"],
    }  # fmt: skip
    assert charts.option("faq", []) is None, "a table only"


def test_the_instances_page_puts_stuck_then_failed_first_and_keeps_the_reports_order_otherwise() -> (
    None
):
    from crmflow.workers.console.routes_operations import attention_first

    rows = [
        {"definition": "a", "status": "completed", "stuck": 0},
        {"definition": "b", "status": "failed", "stuck": 0},
        {"definition": "c", "status": "waiting", "stuck": 2},
        {"definition": "d", "status": "running", "stuck": 0},
        {"definition": "e", "status": "failed", "stuck": 0},
    ]
    assert [r["definition"] for r in attention_first(rows)] == ["c", "b", "e", "a", "d"]
