"""A definition that does not fit the language is refused with an issue, however it misses: never dropped."""

from __future__ import annotations

import pytest

from crmflow.processes.loader import DocumentsInvalid, parse_documents

# Found by schemathesis through the HTTP API: every branch of the step union refused `wait: [null, null]`
# in a way that shadowed the others, so no issue was left, the document was left out, and
# `POST /v1/processes/validate` answered {"valid": true, "documents": {}}.
NO_KIND_OF_STEP = """\
apiVersion: crmflow/v1
kind: Process
name: hot-lead
version: 1
tenant: acme
trigger:
  on: [LeadCreated]
steps:
  - id: pause
    wait: [null, null]
"""


def test_a_step_that_is_no_kind_of_step_is_an_issue_with_its_line_not_a_vanished_document() -> None:
    with pytest.raises(DocumentsInvalid) as refused:
        parse_documents(NO_KIND_OF_STEP, "hot-lead.yaml")
    issues = refused.value.issues
    assert issues, "refused without an issue"
    assert {(i.line, i.field) for i in issues} == {(10, "steps[0].wait")}
