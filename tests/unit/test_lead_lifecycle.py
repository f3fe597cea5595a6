"""A lead's lifecycle: new → working → qualified | disqualified; qualified → converted."""

from __future__ import annotations

import uuid

import pytest

from crmflow.aggregates.errors import IllegalTransitionError
from crmflow.aggregates.lead import Lead

STEPS_TO = {
    "new": [],
    "working": ["work"],
    "qualified": ["work", "qualify"],
    "disqualified": ["work", "disqualify"],
    "converted": ["work", "qualify", "convert"],
}
TRANSITIONS = {"work": "working", "qualify": "qualified", "disqualify": "disqualified", "convert": "converted"}


def new_lead() -> Lead:
    return Lead(tenant_id="acme", name="Ada Lovelace", company="Analytical Engines", email="ada@ae.example",
                source="web", campaign_id=None, owner=None, score=10)  # fmt: skip


def apply(lead: Lead, step: str) -> None:
    if step == "work":
        lead.start_working()
    elif step == "qualify":
        lead.qualify()
    elif step == "disqualify":
        lead.disqualify("no budget")
    else:
        lead.convert(uuid.uuid4(), uuid.uuid4(), None)


def lead_in(status: str) -> Lead:
    lead = new_lead()
    for step in STEPS_TO[status]:
        apply(lead, step)
    assert lead.status == status
    return lead


def test_a_web_lead_is_worked_qualified_and_converted() -> None:
    lead = new_lead()
    lead.assign("maria")
    lead.start_working()
    lead.rescore(25, "attended webinar")
    lead.qualify()
    account_id, contact_id = uuid.uuid4(), uuid.uuid4()
    lead.convert(account_id, contact_id, None)

    assert (lead.status, lead.owner, lead.score) == ("converted", "maria", 35)
    assert (lead.account_id, lead.contact_id, lead.opportunity_id) == (account_id, contact_id, None)
    assert [type(e).__name__ for e in lead.collect_events()] == [
        "LeadCreated", "LeadAssigned", "LeadStatusChanged", "LeadScoreChanged", "LeadQualified", "LeadConverted",
    ]  # fmt: skip


def test_a_worked_lead_without_budget_is_disqualified_with_the_reason() -> None:
    lead = lead_in("working")
    lead.disqualify("no budget this year")
    assert (lead.status, lead.disqualify_reason) == ("disqualified", "no budget this year")


ALLOWED = {("new", "work"), ("working", "qualify"), ("working", "disqualify"), ("qualified", "convert")}
REFUSED = [(s, step) for s in STEPS_TO for step in TRANSITIONS if (s, step) not in ALLOWED]


@pytest.mark.parametrize(("status", "step"), REFUSED)
def test_every_transition_outside_the_lifecycle_is_refused_and_explained(status: str, step: str) -> None:
    lead = lead_in(status)
    lead.collect_events()

    with pytest.raises(IllegalTransitionError) as refused:
        apply(lead, step)

    # The message names the lead, where it stands and where the move is allowed from.
    message = str(refused.value)
    assert f"lead {lead.short_id} from {status}" in message
    assert "allowed from" in message and "new → working" in message
    assert refused.value.details["target"] == TRANSITIONS[step]
    # Nothing was recorded and the lead did not move.
    assert lead.collect_events() == [] and lead.status == status


@pytest.mark.parametrize("status", ["converted", "disqualified"])
def test_a_closed_lead_cannot_be_reassigned_or_rescored(status: str) -> None:
    lead = lead_in(status)
    with pytest.raises(IllegalTransitionError, match=f"it is {status}"):
        lead.assign("someone")
    with pytest.raises(IllegalTransitionError, match=f"{status} leads are closed"):
        lead.rescore(10, "late webinar")


def test_a_score_never_drops_below_zero() -> None:
    lead = new_lead()
    lead.rescore(-50, "bounced e-mail")
    assert lead.score == 0
