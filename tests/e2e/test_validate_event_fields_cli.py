"""A designer's definition reads a field its event does not carry: `crmflow process validate` says so before deploy."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.conftest import Crmflow

# The mistake as it was made: routing big deals on a stage change that (then) carried no amount, reading the
# owner it never carries, and a form whose data nobody described.
BIG_DEALS = """\
apiVersion: crmflow/v1
kind: Process
name: big-deal-review
version: 1
trigger:
  on: [OpportunityStageChanged]
  when: 'double(event.data.amount) >= 100000.0 && !has(event.data.discount)'
vars:
  deal: event.subject
  owner: event.data.owner
steps:
  - id: review
    emit: BigDealToReview
    data: {deal: vars.deal, amount: event.data.amount, currency: event.data.currency}
---
apiVersion: crmflow/v1
kind: Process
name: form-follow-up
version: 1
trigger:
  on: [FormSubmitted]
steps:
  - id: tell
    emit: FormSeen
    data: {email: event.data.email, phone: event.data.phone}
"""


def test_validate_names_the_line_the_event_type_and_the_fields_it_has(crmflow: Crmflow, tmp_path: Path) -> None:
    definition = tmp_path / "good-choice.yaml"
    definition.write_text(BIG_DEALS)
    done = crmflow("process", "validate", str(definition), check=False)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"{definition}:7: trigger.when: warning: has(event.data.discount) is always false: "
        "OpportunityStageChanged has no field 'discount' (it has stage, previous_stage, probability, amount, currency)",
        f"{definition}:10: vars.owner: OpportunityStageChanged has no field 'owner' "
        "(it has stage, previous_stage, probability, amount, currency)",
        "note: event.data of FormSubmitted is not checked: no schema is registered for these inbound types "
        "(CRMFLOW_SCHEMA_DIR)",
        "1 problem(s) in 1 file(s), and 1 warning(s)",
    ]  # fmt: skip

    # Fixed: the amount and currency a stage change carries, and no owner. Warnings alone do not fail.
    definition.write_text(BIG_DEALS.replace("  owner: event.data.owner\n", ""))
    fixed = crmflow("process", "validate", str(definition))
    assert fixed.stdout.startswith("valid: 1 file(s), 2 Process")
    assert "warning: has(event.data.discount)" in fixed.stderr


def test_an_inbound_type_with_a_registered_schema_is_checked_too(crmflow: Crmflow, tmp_path: Path) -> None:
    schemas = tmp_path / "schemas"
    schemas.mkdir()
    (schemas / "FormSubmitted.json").write_text(json.dumps({
        "type": "object", "additionalProperties": False,
        "properties": {"email": {"type": "string"}, "name": {"type": "string"}},
    }))  # fmt: skip
    definition = tmp_path / "forms.yaml"
    definition.write_text(BIG_DEALS.replace("  owner: event.data.owner\n", ""))
    done = crmflow("process", "validate", str(definition), check=False, extra_env={"CRMFLOW_SCHEMA_DIR": str(schemas)})
    assert done.returncode == 1
    assert f"{definition}:24: steps[0].data.phone: FormSubmitted has no field 'phone' (it has email, name)" in (
        done.stderr.splitlines()
    )
    assert "note:" not in done.stderr  # every type read from has a schema now
