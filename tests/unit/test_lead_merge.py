"""Merging one lead into another, on the aggregates: what the target takes, what is refused, what a merged lead says."""

from __future__ import annotations

import uuid

import pytest

from crmflow.aggregates.errors import IllegalTransitionError, LeadMergedError
from crmflow.aggregates.lead import Lead
from tests.unit.test_lead_lifecycle import lead_in


def lead(**fields: object) -> Lead:
    values: dict[str, object] = {"tenant_id": "acme", "name": "Ada", "company": None, "email": None, "source": "web",
                                 "campaign_id": None, "owner": None, "score": 0}  # fmt: skip
    return Lead(**{**values, **fields})


def test_the_target_takes_only_the_fields_it_lacks_and_the_source_closes_as_merged() -> None:
    campaign = uuid.uuid4()
    source = lead(company="Analytical Engines", email="ada@ae.example", phone="+44 20 7946 0958", owner="maria",
                  campaign_id=campaign)  # fmt: skip
    target = lead(email="ada.lovelace@ae.example", owner="joe")
    source.merge_into(target)
    assert (source.status, source.merged_into) == ("merged", target.id)
    absorbed = target.pending_events[-1]
    assert type(absorbed).__name__ == "LeadMergeAbsorbed"
    # The target's own e-mail and owner stay; company, phone and campaign were empty and are taken.
    assert absorbed.fields == {"company": "Analytical Engines", "phone": "+44 20 7946 0958", "campaign_id": str(campaign)}
    assert (target.email, target.owner, target.company, target.campaign_id) == (
        "ada.lovelace@ae.example", "joe", "Analytical Engines", campaign)  # fmt: skip
    assert target.status == "new"


def test_a_merged_lead_refuses_every_later_command_naming_the_lead_it_went_into() -> None:
    source, target = lead(), lead()
    source.merge_into(target)
    for change in (lambda: source.assign("maria"), source.start_working, lambda: source.rescore(5, "webinar"),
                   source.qualify, lambda: source.disqualify("spam"), lambda: source.merge_into(lead())):  # fmt: skip
        with pytest.raises(LeadMergedError, match=f"merged into lead {target.id}; send commands to that lead"):
            change()
    assert source.status == "merged"


@pytest.mark.parametrize("status", ["converted", "disqualified"])
def test_merging_into_a_closed_lead_is_refused(status: str) -> None:
    with pytest.raises(IllegalTransitionError, match=f"it is {status}; merge only into a new, working or qualified"):
        lead().merge_into(lead_in(status))


def test_merging_into_itself_into_a_merged_lead_or_merging_a_converted_lead_is_refused() -> None:
    one = lead()
    with pytest.raises(IllegalTransitionError, match="into itself"):
        one.merge_into(one)
    gone, survivor = lead(), lead()
    gone.merge_into(survivor)
    with pytest.raises(LeadMergedError, match=f"that lead was merged into lead {survivor.id}; merge into that one"):
        one.merge_into(gone)
    with pytest.raises(IllegalTransitionError, match="it is converted"):
        lead_in("converted").merge_into(one)
    assert one.status == "new" and len(one.pending_events) == 1  # only its LeadCreated


def test_a_persons_merge_of_a_flagged_pair_counts_under_the_rule_that_flagged_it() -> None:
    existing, newer, other = lead(), lead(), lead()
    newer.flag_duplicate(existing.id, "email", ["email"])
    newer.merge_into(existing)
    assert (newer.pending_events[-1].rule, newer.pending_events[-1].keys) == ("email", ["email"])
    other.merge_into(existing)  # never flagged: a manual merge, no rule
    assert other.pending_events[-1].rule is None
