"""A refused payload names each field, and an unknown one is answered with the fields the command takes."""

from __future__ import annotations

import pytest

from crmflow.aggregates.application import CommandRequest, CrmApplication
from crmflow.aggregates.errors import InvalidCommandError


def refusal(name: str, data: dict[str, object]) -> list[str]:
    with pytest.raises(InvalidCommandError) as refused:
        CrmApplication("memory://").execute(CommandRequest(name, "acme", data))
    return list(refused.value.details["errors"])


def test_a_newcomer_who_types_colour_learns_which_fields_a_lead_takes() -> None:
    problems = refusal("lead.create", {"name": "Ada", "colour": "red"})
    assert len(problems) == 1
    assert problems[0].startswith("colour: unknown field; allowed: ")
    allowed = problems[0].split("allowed: ")[1].split(", ")
    assert {"name", "email", "company", "source"} <= set(allowed)


def test_an_unknown_field_inside_the_converted_opportunity_lists_the_opportunitys_fields() -> None:
    problems = refusal("lead.convert", {"lead_id": "3f2a9c1e-0b7d-4c55-9a4e-2f1d7c0b9e11",
                                        "opportunity": {"name": "Pilot", "amount": "9000",
                                                        "close_date": "2027-03-31", "colr": 1}})  # fmt: skip
    assert problems == ["opportunity.colr: unknown field; allowed: name, amount, currency, close_date"]


def test_other_problems_keep_their_own_words() -> None:
    problems = refusal("lead.create", {"name": "Ada", "email": 5})
    assert problems and problems[0].startswith("email: ") and "unknown field" not in problems[0]
