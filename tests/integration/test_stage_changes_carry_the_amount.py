"""A stage change and a reopening carry the deal's amount and currency; ones stored before they did still load.

Release 0.1's fixture store (tests/fixtures/store-0.1.sqlite) holds no stage change, so an old one is
made here the way it was stored then: a new store's row with ``amount`` and ``currency`` taken out.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from crmflow.aggregates.application import CommandRequest, CrmApplication
from crmflow.aggregates.catalog import from_cloudevent
from crmflow.aggregates.opportunity import Opportunity
from crmflow.workers.history import stored_history


def _deal(app: CrmApplication) -> str:
    account = app.execute(CommandRequest("account.create", "acme", {"name": "Analytical Engines"}))
    created = app.execute(CommandRequest("opportunity.create", "acme", {
        "account_id": str(account.aggregate_id), "name": "Pilot", "amount": "120000.50", "currency": "USD",
        "close_date": "2027-03-31",
    }))  # fmt: skip
    return str(created.aggregate_id)


def _stage_changes(app: CrmApplication) -> list[dict[str, Any]]:
    return [d for d in stored_history(app) if d["type"] in ("OpportunityStageChanged", "OpportunityReopened")]


def test_a_stage_change_and_a_reopening_carry_the_deals_amount_and_currency(database_url: str) -> None:
    app = CrmApplication(database_url)
    deal = _deal(app)
    app.execute(CommandRequest("opportunity.advance", "acme", {"opportunity_id": deal}))
    app.execute(CommandRequest("opportunity.lose", "acme", {"opportunity_id": deal, "reason": "budget"}))
    app.execute(CommandRequest("opportunity.reopen", "acme", {"opportunity_id": deal, "stage": "proposal"}))

    changed, reopened = _stage_changes(app)
    assert changed["data"] == {"stage": "qualification", "previous_stage": "prospecting", "probability": 20,
                               "amount": "120000.50", "currency": "USD"}  # fmt: skip
    assert (reopened["data"]["amount"], reopened["data"]["currency"]) == ("120000.50", "USD")
    assert from_cloudevent(changed).amount == Decimal("120000.50")  # the wire's decimal string, read back
    app.close()


def test_a_deal_whose_stored_stage_change_predates_the_amount_still_loads(database_url: str, tmp_path: Path) -> None:
    new = CrmApplication(str(tmp_path / "new.db"))
    deal = _deal(new)
    new.execute(CommandRequest("opportunity.advance", "acme", {"opportunity_id": deal}))
    rows = []
    for n in new.recorder.select_notifications(start=1, limit=100):
        state = n.state
        if n.topic.endswith("OpportunityStageChanged"):
            old = json.loads(state)
            del old["amount"], old["currency"]
            state = json.dumps(old, separators=(",", ":")).encode()
        rows.append(StoredEvent(n.originator_id, n.originator_version, n.topic, state))
    new.close()

    app = CrmApplication(database_url)
    app.recorder.insert_events(rows)
    opportunity: Opportunity = app.repository.get(UUID(deal))
    assert (opportunity.stage, opportunity.amount, opportunity.currency) == (
        "qualification", Decimal("120000.50"), "USD",
    )  # fmt: skip
    (changed,) = _stage_changes(app)
    assert "amount" not in changed["data"]  # published as it was stored
    assert from_cloudevent(changed).amount is None  # and read back: the field is optional
    # Commands still work on it, and the next change carries the amount again.
    app.execute(CommandRequest("opportunity.advance", "acme", {"opportunity_id": deal}))
    assert _stage_changes(app)[-1]["data"]["amount"] == "120000.50"
    app.close()
