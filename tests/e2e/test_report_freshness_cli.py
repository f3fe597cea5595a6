"""A report says when its read models are behind the store or were never built: an empty table is not silence."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.conftest import Crmflow

RUN = "run 'crmflow worker projection' or 'crmflow projections rebuild'"


def sales_story(crmflow: Crmflow) -> str:
    """The README's sales story: a lead created, assigned, worked, qualified and converted."""
    def run(command: str, **data: object) -> str:
        done = crmflow("command", command, "--tenant", "acme", "--data", json.dumps(data))
        return str(json.loads(done.stdout)["aggregate_id"])

    lead = run("lead.create", name="Ada", company="Analytical Engines")
    run("lead.assign", lead_id=lead, owner="maria")
    run("lead.work", lead_id=lead)
    run("lead.qualify", lead_id=lead)
    deal = {"name": "Pilot", "amount": "9000", "close_date": "2027-03-31"}
    run("lead.convert", lead_id=lead, opportunity=deal)
    return lead


def test_after_the_sales_story_with_no_projection_the_pipeline_prints_its_table_and_says_why_it_is_empty(
    crmflow: Crmflow,
) -> None:
    sales_story(crmflow)
    done = crmflow("query", "pipeline", "--tenant", "acme")
    assert "stage" in done.stdout and "weighted_amount" in done.stdout, "the table is still printed"
    # 8: the lead's 5 events, and the conversion's account, contact (rm_contacts) and opportunity.
    assert done.stderr.strip().splitlines()[-1] == (
        f"pipeline: the read models were never built: the store holds 8 events they have not applied; {RUN}"
    )


def test_after_a_rebuild_the_report_is_silent_and_one_more_command_makes_it_one_event_behind(
    crmflow: Crmflow,
) -> None:
    sales_story(crmflow)
    crmflow("projections", "rebuild")
    fresh = crmflow("query", "pipeline", "--tenant", "acme", "--format", "json")
    assert fresh.stderr == "" and json.loads(fresh.stdout)[0]["amount"] == "9000.00"

    crmflow("command", "lead.create", "--tenant", "acme", "--data", json.dumps({"name": "Grace"}))
    behind = crmflow("query", "pipeline", "--tenant", "acme", "--format", "csv")
    assert behind.stdout.splitlines()[0] == "stage,owner,currency,opportunities,amount,weighted_amount"
    assert len(behind.stdout.splitlines()) == 2, "the rows the read models have are still printed"
    assert behind.stderr.strip() == f"pipeline: read models are 1 event behind the store; {RUN}"


def test_with_neither_a_store_nor_read_models_the_query_says_what_writes_them(crmflow: Crmflow, tmp_path: Path) -> None:
    done = crmflow("query", "sla", "--tenant", "acme", "--format", "json", check=False)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "no read models at" in done.stderr and "crmflow projections rebuild" in done.stderr
    assert not list(tmp_path.rglob("*.db")), "a read-only query creates nothing"


def test_a_report_whose_store_cannot_be_reached_still_prints_without_a_lag_line(
    crmflow: Crmflow, tmp_path: Path
) -> None:
    sales_story(crmflow)
    crmflow("projections", "rebuild")
    unreachable = {"CRMFLOW_REPORTS_DATABASE_URL": str(tmp_path / "reports.db"),
                   "CRMFLOW_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}  # fmt: skip
    done = crmflow("query", "pipeline", "--tenant", "acme", "--format", "json", extra_env=unreachable)
    assert json.loads(done.stdout)[0]["amount"] == "9000.00" and "behind" not in done.stderr
