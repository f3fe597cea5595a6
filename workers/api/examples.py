"""Examples for the OpenAPI document: one per endpoint, shaped like real answers."""

from __future__ import annotations

from crmflow.projections.reports import REPORTS

LEAD_ID = "3f2a9c1e-0b7d-4c55-9a4e-2f1d7c0b9e11"
COMMAND_EXAMPLE = {
    "command": "lead.create",
    "tenant": "acme",
    "aggregate_id": LEAD_ID,
    "replayed": False,
    "events": [
        {
            "specversion": "1.0",
            "id": "6ada5cc9-a1b9-55c8-a4d0-9033ebaed13d",
            "source": "/crmflow/acme/lead",
            "type": "LeadCreated",
            "subject": LEAD_ID,
            "time": "2026-03-02T09:00:00+00:00",
            "datacontenttype": "application/json",
            "data": {
                "tenant_id": "acme",
                "name": "Ada Lovelace",
                "company": "Analytical Engines",
                "email": None,
                "source": "web",
                "campaign_id": None,
                "owner": None,
                "score": 0,
            },
            "tenantid": "acme",
            "sequence": "00000000000000000001",
            "correlationid": "web-form-4711",
            "causationid": "9bb679f5-7f58-4fac-b615-b7261bd97429",
        }
    ],
}
PAYLOAD_EXAMPLES = {
    "lead.create": {
        "summary": "lead.create",
        "value": {"name": "Ada Lovelace", "company": "Analytical Engines", "source": "web"},
    },
    "lead.assign": {"summary": "lead.assign", "value": {"lead_id": LEAD_ID, "owner": "maria"}},
    "case.open": {"summary": "case.open", "value": {"subject": "Cannot log in", "priority": "high"}},
}
INBOUND_EXAMPLE = {
    "specversion": "1.0",
    "id": "inv-2026-0042-paid",
    "source": "billing",
    "type": "InvoicePaid",
    "subject": "inv-2026-0042",
    "time": "2026-03-02T10:15:00+00:00",
    "datacontenttype": "application/json",
    "tenantid": "acme",
    "data": {"invoice_id": "inv-2026-0042", "amount": "4800.00", "currency": "EUR"},
}

REPORT_EXAMPLE = {
    "report": "pipeline",
    "tenant": "acme",
    "columns": ["stage", "owner", "currency", "opportunities", "amount", "weighted_amount"],
    "rows": [
        {
            "stage": "proposal",
            "owner": "maria",
            "currency": "EUR",
            "opportunities": 2,
            "amount": "18000.10",
            "weighted_amount": "9000.05",
        }
    ],
}
AGGREGATE_EXAMPLE = {
    "id": "3f2a9c1e-0b7d-4c55-9a4e-2f1d7c0b9e11",
    "kind": "lead",
    "state": {
        "id": "3f2a9c1e-0b7d-4c55-9a4e-2f1d7c0b9e11",
        "kind": "lead",
        "version": 2,
        "status": "new",
        "tenant_id": "acme",
        "name": "Ada Lovelace",
        "owner": "ana",
    },
    "history": [
        {
            "version": 1,
            "type": "LeadCreated",
            "time": "2026-03-02T09:00:00+00:00",
            "data": {"name": "Ada Lovelace"},
            "id": "0d6f7e38-2b4c-5f6a-9c1d-3e5f7a9b1c2d",
            "meta": {"command": "lead.create", "caller": "sales:ada", "correlation_id": "web-form-4711"},
            "why": "command lead.create by sales:ada (correlation web-form-4711)",
            "caused_by": {"kind": "command", "command": "lead.create", "caller": "sales:ada",
                          "command_id": "6c1e2f70-8a1b-4c3d-9e5f-0a1b2c3d4e5f", "correlation_id": "web-form-4711"},
        },
        {
            "version": 2,
            "type": "LeadAssigned",
            "time": "2026-03-02T09:00:01+00:00",
            "data": {"owner": "ana", "previous_owner": None},
            "meta": {
                "command": "lead.assign",
                "caller": "process:web-lead-follow-up@3",
                "cause": {"process": "web-lead-follow-up", "version": 3, "step": "assign"},
            },
            "id": "5b2a9c41-7d3e-5f10-8a2b-4c6d8e0f1a3b",
            "why": "process web-lead-follow-up v3 step assign ran lead.assign, on LeadCreated of "
                   "3f2a9c1e-0b7d-4c55-9a4e-2f1d7c0b9e11; owner chosen by round_robin in step pick-owner: "
                   'round_robin(["ana", "ben", "chen"])',
            "caused_by": {"kind": "process", "process": "web-lead-follow-up", "version": 3, "step": "assign",
                          "command": "lead.assign", "caller": "process:web-lead-follow-up@3",
                          "trigger": {"id": "0d6f7e38-2b4c-5f6a-9c1d-3e5f7a9b1c2d", "type": "LeadCreated",
                                      "subject": "3f2a9c1e-0b7d-4c55-9a4e-2f1d7c0b9e11"},
                          "chosen": {"owner": 'round_robin in step pick-owner: round_robin(["ana", "ben", "chen"])'}},
        },
    ],
}

DEFINITION_EXAMPLE = """\
apiVersion: crmflow/v1
kind: Process
name: hot-lead-alert
version: 1
tenant: acme
trigger:
  on: [LeadScoreChanged]
  when: event.data.score >= 80
vars:
  lead: event.subject
steps:
  - id: assign
    do: lead.assign
    args: {lead_id: vars.lead, owner: '"maria"'}
"""
INVALID_EXAMPLE = {
    "error": "invalid_definitions",
    "message": "1 problem(s) in the definitions",
    "details": {
        "issues": [
            {
                "line": 13,
                "field": "steps[0].do",
                "message": "unknown command 'lead.asign'; did you mean lead.assign or case.assign?",
            }
        ]
    },
}
LISTING_EXAMPLE = {
    "definitions": [
        {
            "kind": "Process",
            "name": "web-lead-follow-up",
            "scope": "*",
            "version": 3,
            "deployed_by": "admin:ops",
            "deployed_at": "2026-03-02T09:00:00+00:00",
            "sha256": "5d41402abc4b",
        },
    ]
}

DEPLOYED_EXAMPLE = {
    "deployed_by": "admin:ada",
    "outcomes": [
        {"kind": "Process", "name": "hot-lead-alert", "scope": "acme", "version": 1, "result": "deployed"},
    ],
}
INSTANCES_EXAMPLE = {
    "report": "instances",
    "tenant": "acme",
    "columns": list(REPORTS["instances"].columns),
    "rows": [
        {
            "definition": "web-lead-follow-up",
            "version": 3,
            "status": "waiting",
            "step": "wait-contact",
            "instances": 12,
            "stuck": 0,
        }
    ],
}

INSTANCE_ROWS_EXAMPLE = {
    "tenant": "acme",
    "columns": [
        "instance_id", "definition", "version", "key", "status", "step", "stuck", "error", "waiting_on",
        "due_at", "started_at", "updated_at",
    ],
    "rows": [
        {
            "instance_id": "5f0c3c1e-9a43-5d7e-8b51-0d7a3f1c2b90",
            "definition": "web-lead-follow-up",
            "version": 3,
            "key": "8c1d6f0e-2b4a-4f7e-9c3d-1a2b3c4d5e6f",
            "status": "failed",
            "step": "assign",
            "stuck": 0,
            "error": "lead.assign refused: lead 8c1d6f0e is converted: cannot assign it",
            "waiting_on": None,
            "due_at": None,
            "started_at": "2026-03-02T09:00:00+00:00",
            "updated_at": "2026-03-02T09:00:00+00:00",
        }
    ],
}
