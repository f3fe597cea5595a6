"""A designer asks what a change would have done to the history stored so far, before deploying it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from crmflow.aggregates.application import CommandRequest, CrmApplication
from crmflow.processes.loader import parse_documents
from crmflow.processes.registry import DefinitionRegistry
from crmflow.processes.whatif import compare
from crmflow.workers.history import stored_history
from tests.conftest import Clock

DEFINITIONS = Path(__file__).parents[2] / "processes" / "definitions"
DEPLOYED = (DEFINITIONS / "web-lead-follow-up.yaml").read_text()
# The proposal: only web leads (not webinar ones), and Dana joins the web team.
PROPOSED = (DEPLOYED.replace("version: 3", "version: 4")
            .replace('["web", "webinar"]', '["web"]')
            .replace('"chen"])', '"chen", "dana"])'))  # fmt: skip


def history_of_six_leads(app: CrmApplication, clock: Clock) -> None:
    """L1 web, L2 webinar, L3 web, L4 web, L5 webinar, L6 web; sales works L1 and L3 the next morning."""
    leads = []
    for n, source in enumerate(["web", "webinar", "web", "web", "webinar", "web"], 1):
        leads.append(str(app.execute(CommandRequest("lead.create", "acme", {"name": f"L{n}", "source": source})).aggregate_id))
        clock.advance(minutes=10)
    clock.advance(hours=20)
    for lead in (leads[0], leads[2]):
        app.execute(CommandRequest("lead.work", "acme", {"lead_id": lead}))


def test_whatif_reports_assignments_workload_and_escalations_side_by_side(app: CrmApplication, clock: Clock) -> None:
    DefinitionRegistry(app).deploy(parse_documents(DEPLOYED, "web.yaml"), "ada")
    history_of_six_leads(app, clock)
    clock.advance(days=5)

    result = compare(list(stored_history(app)), DefinitionRegistry(app).documents(),
                     parse_documents(PROPOSED, "web-v4.yaml"), clock.now)  # fmt: skip

    rows = {r["measure"]: (r["deployed"], r["proposed"]) for r in result.rows()}
    # Deployed: all six routed ana, ben, chen, ana, ben, chen; the four never worked are overdue.
    # Proposed: the four web leads routed ana, ben, chen, dana; two of them (L4, L6) overdue.
    assert rows["assignments"] == (6, 4)
    assert rows["escalations"] == (4, 2)
    assert {name: rows[f"workload {name}"] for name in ("ana", "ben", "chen")} == {"ana": (2, 1), "ben": (2, 1), "chen": (2, 1)}
    assert rows["workload dana"] == (0, 1)
    assert rows["emitted LeadFollowUpOverdue"] == (4, 2)
    assert result.running_now == {}  # five days later every instance has finished
    assert result.changed == ["web-lead-follow-up"]


def test_whatif_says_which_instances_running_now_stay_on_their_version(app: CrmApplication, clock: Clock) -> None:
    DefinitionRegistry(app).deploy(parse_documents(DEPLOYED, "web.yaml"), "ada")
    history_of_six_leads(app, clock)

    result = compare(list(stored_history(app)), DefinitionRegistry(app).documents(),
                     parse_documents(PROPOSED, "web-v4.yaml"), clock.now + timedelta(hours=1))  # fmt: skip

    # A day after they came in, the four leads nobody worked are still waiting on version 3.
    assert result.running_now == {"web-lead-follow-up@3 at wait-contact": 4}


def test_nothing_is_written_by_a_whatif(app: CrmApplication, clock: Clock) -> None:
    DefinitionRegistry(app).deploy(parse_documents(DEPLOYED, "web.yaml"), "ada")
    history_of_six_leads(app, clock)
    before = app.recorder.max_notification_id()
    compare(list(stored_history(app)), DefinitionRegistry(app).documents(), parse_documents(PROPOSED, "w.yaml"), clock.now)
    assert app.recorder.max_notification_id() == before
