"""Tenants are walls: no command reaches another tenant's records, no report counts them, and no
answer reveals that another tenant has an id. On SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any
from uuid import UUID

import pytest

from crmflow.aggregates.application import CommandRequest, CrmApplication
from crmflow.aggregates.errors import AggregateNotFoundError, DomainError
from crmflow.aggregates.ids import scoped_id
from crmflow.projections.db import Database
from crmflow.projections.projector import apply_all
from crmflow.projections.reports import REPORTS
from crmflow.workers.history import stored_history
from tests.integration.tenant_world import (
    CHOSEN,
    KINDS,
    REFERENCES,
    World,
    answer,
    blanked,
    build_world,
    payload,
)

NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)  # the sla report's "now", so that two runs compare equal

PER_COMMAND = ("id", "time", "correlationid", "causationid")  # differ for every command, whatever its id


@pytest.fixture
def worlds(app: CrmApplication) -> tuple[World, World]:
    def doer(tenant: str) -> Any:
        return lambda command, **data: answer(app.execute(CommandRequest(command, tenant, data)))

    acme = build_world(doer("acme"), "acme", "Acme", choose_ids=False)
    globex = build_world(doer("globex"), "globex", "Globex", choose_ids=True)
    return acme, globex


def refusal(app: CrmApplication, command: str, data: dict[str, Any]) -> DomainError:
    before = app.recorder.max_notification_id()
    with pytest.raises(DomainError) as refused:
        app.execute(CommandRequest(command, "acme", data))
    assert app.recorder.max_notification_id() == before, f"{command} stored something"
    return refused.value


def every_report(reports: Database, tenant: str) -> dict[str, Any]:
    return {
        name: r.run(reports, tenant, **({"now": NOW} if name == "sla" else {})) for name, r in REPORTS.items()
    }


def test_the_catalogue_names_records_by_id_in_these_commands() -> None:
    # Guards the tables below: a new command naming a record must be covered too.
    # lead 6 + merge's two + convert's account and contact + create's campaign = 11; opportunity 8 (add_line
    # and remove_line among them) + create's account and campaign = 10; case 9 + open's account and contact +
    # resolve's and respond's article = 13; account 4 (account.segment among them) + contact 2 = 6; article 3;
    # campaign 3; activity: schedule's and log's related record, complete and cancel, and qualify's activity = 5:
    # 11 + 10 + 13 + 6 + 3 + 3 + 5 = 51. (product.* name a product by its code, not an id.)
    assert len(REFERENCES) == 51 and {kind for _, _, kind in REFERENCES} == set(KINDS)
    assert ("lead.merge", "into_lead_id", "lead") in REFERENCES
    assert ("lead.create", "campaign_id", "campaign") in REFERENCES
    assert ("opportunity.create", "campaign_id", "campaign") in REFERENCES
    assert ("activity.schedule", "related_id", "lead") in REFERENCES
    assert len(CHOSEN) == 9  # the 7 creates, and activity.schedule and activity.log


@pytest.mark.parametrize(("command", "field", "kind"), REFERENCES, ids=[f"{c}.{f}" for c, f, _ in REFERENCES])
def test_every_command_naming_another_tenants_record_is_refused_exactly_like_a_random_id(
    app: CrmApplication, worlds: tuple[World, World], command: str, field: str, kind: str
) -> None:
    acme, globex = worlds
    random_id = str(uuid.uuid4())
    missing = refusal(app, command, payload(command, acme, **{field: random_id}))
    assert isinstance(missing, AggregateNotFoundError)
    assert missing.message == f"{kind} {random_id} not found in tenant acme"

    # globex's record, by the id it is stored under and by the id globex chose for it.
    for foreign_id in globex.names_of(kind):
        foreign = refusal(app, command, payload(command, acme, **{field: foreign_id}))
        assert type(foreign) is type(missing)
        assert blanked(foreign.to_dict(), foreign_id) == blanked(missing.to_dict(), random_id)
        assert "globex" not in str(foreign.to_dict())


def test_a_lead_or_deal_naming_another_tenants_campaign_is_refused_and_no_report_of_either_tenant_changes(
    app: CrmApplication, worlds: tuple[World, World], reports: Database
) -> None:
    acme, globex = worlds
    apply_all(reports, stored_history(app))
    before = {tenant: every_report(reports, tenant) for tenant in ("acme", "globex")}
    assert [r["leads"] for r in before["globex"]["campaigns"]] == [2], (
        "globex: its qualified lead and its buyer"
    )

    # acme tries to file a lead and a won deal of 1,000,000 under globex's campaign ...
    campaign = globex.stored["campaign"]
    lead = refusal(app, "lead.create", {"name": "Mole", "campaign_id": campaign})
    deal = refusal(app, "opportunity.create", payload("opportunity.create", acme, campaign_id=campaign))
    assert (lead.code, deal.code) == ("not_found", "not_found")
    # ... and every other command naming globex's records, by either of their ids.
    for command, field, kind in REFERENCES:
        for foreign_id in globex.names_of(kind):
            assert isinstance(
                refusal(app, command, payload(command, acme, **{field: foreign_id})), AggregateNotFoundError
            )

    apply_all(reports, stored_history(app))
    assert {tenant: every_report(reports, tenant) for tenant in ("acme", "globex")} == before
    funnel_campaigns = {r["campaign"] for r in before["acme"]["funnel"]}
    assert funnel_campaigns == {"Acme campaign"}, "acme's funnel names only acme's campaigns"


@pytest.mark.parametrize(("command", "field"), CHOSEN, ids=[c for c, _ in CHOSEN])
def test_creating_with_an_id_another_tenant_has_is_answered_exactly_like_creating_with_a_free_one(
    app: CrmApplication, worlds: tuple[World, World], reports: Database, command: str, field: str
) -> None:
    acme, globex = worlds
    kind = field.removesuffix("_id")
    apply_all(reports, stored_history(app))
    globex_before = every_report(reports, "globex")

    free = str(uuid.uuid4())
    answers = {}
    for chosen in (free, *globex.names_of(kind)):
        result = app.execute(CommandRequest(command, "acme", payload(command, acme, **{field: chosen})))
        assert result.aggregate_id == scoped_id("acme", UUID(chosen)), (
            "stored under acme's own form of the id"
        )
        answers[chosen] = [
            blanked({k: v for k, v in e.items() if k not in PER_COMMAND}, str(result.aggregate_id))
            for e in result.events
        ]
        assert app.state(chosen, "acme")["kind"] == kind, "acme names its record by the id it chose"
    assert len({str(a) for a in answers.values()}) == 1, "the same answer whoever else has the id"

    # The same id again in acme is acme's own: refused, naming the id as acme sent it.
    again = refusal(app, command, payload(command, acme, **{field: free}))
    assert (again.code, again.message) == (
        "already_exists",
        f"cannot create {kind} {free}: that id is already taken",
    )

    # globex's records are untouched, in the store and in every report.
    for chosen in globex.names_of(kind):
        assert app.state(chosen, "globex")["id"] == globex.stored[kind]
    apply_all(reports, stored_history(app))
    assert every_report(reports, "globex") == globex_before


def test_a_record_is_read_by_its_tenant_under_either_id_and_by_nobody_else(
    app: CrmApplication, worlds: tuple[World, World]
) -> None:
    _, globex = worlds
    for kind in KINDS:
        stored, chosen = globex.names_of(kind)
        assert stored == str(scoped_id("globex", UUID(chosen)))
        assert app.state(stored, "globex") == app.state(chosen, "globex")
        assert [h.type for h in app.history(chosen, "globex")] == [
            h.type for h in app.history(stored, "globex")
        ]
        for foreign_id in (stored, chosen):
            with pytest.raises(AggregateNotFoundError, match=f"^{foreign_id} not found in tenant acme$"):
                app.state(foreign_id, "acme")
            assert app.history(foreign_id, "acme") == []
