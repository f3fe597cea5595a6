"""`crmflow demo` as a newcomer runs it: the bundled broker, SQLite, every worker, a generated workload."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from crmflow.aggregates.application import CrmApplication
from crmflow.projections.db import Database
from crmflow.projections.reports import REPORTS, sla
from crmflow.workers.history import stored_history
from tests.conftest import Broker
from tests.e2e.conftest import Crmflow

SHIPPED_PROCESSES = {"web-lead-follow-up", "form-to-lead", "webinar-scoring", "stale-opportunity", "case-sla",
                     "invoice-paid"}  # fmt: skip


@pytest.fixture(scope="module")
def demo_run(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One small demo, kept on disk: several tests read what it left. On the bundled broker the demo starts its
    own, as a newcomer's does; on Apache Kafka it is pointed at the test's cluster."""
    import subprocess
    import sys

    data = tmp_path_factory.mktemp("demo") / "data"
    on_apache = ["--bootstrap-servers", broker.bootstrap_servers] if broker.name == "apache" else []
    done = subprocess.run(
        [sys.executable, "-m", "crmflow", "demo", "--size", "small", "--days", "10", "--seed", "11", "--data-dir",
         str(data), "--reports", "pipeline,sla", *on_apache],
        capture_output=True, text=True, timeout=600, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return data, done.stdout + done.stderr


def reports_of(database: Path, tenant: str, now: datetime | None = None) -> dict[str, list[dict[str, object]]]:
    """Every report of the tenant; ``now``: the moment the sla report's backlog ages are measured at."""
    db = Database(str(database))
    try:
        return {name: report.run(db, tenant, **({"now": now} if name == "sla" and now else {}))
                for name, report in REPORTS.items()}  # fmt: skip
    finally:
        db.close()


def test_the_demo_drives_a_realistic_workload_through_the_broker_and_prints_the_reports(demo_run: tuple[Path, str]) -> None:
    data, output = demo_run
    assert "done: 2 tenants (acme, globex)" in output
    assert "pipeline · acme" in output and "sla · acme" in output
    acme = reports_of(data / "reports.db", "acme")
    # Every shipped process ran for this tenant, through the broker and the workers.
    assert {row["definition"] for row in acme["instances"]} == SHIPPED_PROCESSES
    # Leads came in from campaigns and from web forms (the form-to-lead process), and went down the funnel.
    sources = {row["source"] for row in acme["funnel"]}
    assert {"web", "webinar", "event"} <= sources
    assert sum(row["converted"] for row in acme["funnel"]) > 0
    # Deals were won and lost; a won deal's invoice was booked as the account's revenue.
    assert sum(row["won"] for row in acme["win-rate"]) > 0 and sum(row["lost"] for row in acme["win-rate"]) > 0
    assert any(row["revenue"] > 0 for row in acme["accounts"])
    # Campaigns were paid for; cases of every priority were opened, and some escalated by the SLA process.
    assert all(row["cost"] > 0 for row in acme["campaigns"])
    assert {row["priority"] for row in acme["sla"]} == {"urgent", "high", "medium", "low"}
    assert sum(row["escalations"] for row in acme["sla"]) > 0


def test_the_demo_sells_from_a_price_list_makes_calls_merges_duplicates_and_answers_with_suggested_articles(
    demo_run: tuple[Path, str],
) -> None:
    data, _ = demo_run
    db = Database(str(data / "reports.db"))
    try:
        for tenant in ("acme", "globex"):
            # Every deal is worth the sum of its product lines (each line rounded to the cent on its own).
            for deal in db.query(
                "SELECT opportunity_id, amount FROM rm_opportunities WHERE tenant = %(t)s", {"t": tenant}):  # fmt: skip
                lines = db.query("SELECT amount FROM rm_opportunity_lines WHERE opportunity_id = %(o)s",
                                 {"o": deal["opportunity_id"]})  # fmt: skip
                assert lines and Decimal(str(deal["amount"])) == sum(Decimal(str(x["amount"])) for x in lines)
    finally:
        db.close()
    both = [reports_of(data / "reports.db", tenant) for tenant in ("acme", "globex")]
    # The price list of five products; won lines became assets, and billing reported the subscriptions' usage.
    assert all(len(reports["products"]) == 5 for reports in both)
    products = [row for reports in both for row in reports["products"]]
    assert sum(row["assets"] for row in products) > 0
    assert any(row["last_usage_quantity"] is not None for row in products)
    # Follow-up calls were made and named on qualifications; some were forgotten and are still open.
    activities = [row for reports in both for row in reports["activities"]]
    assert {row["kind"] for row in activities} == {"call"}
    assert sum(row["completed"] for row in activities) > 0 and sum(row["open"] for row in activities) > 0
    assert sum(row["qualified_leads"] for row in activities) > 0
    # Repeated web forms were flagged as duplicates, and sales merged some of them.
    duplicates = [row for reports in both for row in reports["duplicates"]]
    assert sum(row["flagged"] for row in duplicates) > 0 and sum(row["merged"] for row in duplicates) > 0
    # Agents answered some cases with the article the case was suggested.
    assert sum(row["answered_with_suggestion"] for reports in both for row in reports["faq"]) > 0


def test_the_demos_reports_equal_a_rebuild_from_the_event_store(demo_run: tuple[Path, str], crmflow: Crmflow,
                                                                  tmp_path: Path) -> None:  # fmt: skip
    data, _ = demo_run
    rebuilt = tmp_path / "rebuilt.db"
    # An analyst rebuilds the read models from the store into a database of their own.
    crmflow("--database-url", str(data / "crmflow.db"), "projections", "rebuild",
            extra_env={"CRMFLOW_REPORTS_DATABASE_URL": str(rebuilt)})  # fmt: skip
    # One moment for both: the backlog's age is measured from now, and the two reads are seconds apart.
    moment = datetime.now(timezone.utc)
    for tenant in ("acme", "globex"):
        live, from_store = reports_of(data / "reports.db", tenant, moment), reports_of(rebuilt, tenant, moment)
        for name in REPORTS:
            assert live[name] == from_store[name], f"{name} of {tenant} differs from the rebuild"


def test_the_demos_sla_report_agrees_with_the_breaches_the_sla_process_announced(demo_run: tuple[Path, str]) -> None:
    data, _ = demo_run
    store = CrmApplication(str(data / "crmflow.db"))
    try:
        history = list(stored_history(store))
    finally:
        store.close()
    answered = {e["subject"] for e in history if e["type"] == "CaseResponded" and e["data"]["first_response"]}
    # An escalation the case refused: its resolution breach fell due in the hour it was resolved.
    sla_of_step = {"escalate-response": "first_response", "escalate-resolution": "resolution"}
    refused = {(e["data"]["detail"]["args"]["case_id"], sla_of_step[e["data"]["step"]]) for e in history
               if e["type"] == "ProcessCommandRefused" and e["data"]["detail"]["command"] == "case.escalate"}  # fmt: skip
    reports = Database(str(data / "reports.db"))
    try:
        for tenant in ("acme", "globex"):
            announced = [e["data"] for e in history if e["type"] == "CaseSlaBreached" and e["tenantid"] == tenant]
            answered_per_priority = {r["priority"]: r["n"] for r in reports.query(
                "SELECT priority, COUNT(*) AS n FROM rm_cases WHERE tenant = %(t)s AND first_responded_at IS NOT NULL "
                "GROUP BY priority", {"t": tenant})}  # fmt: skip
            for row in sla(reports, tenant):
                breaches = [d for d in announced if d["priority"] == row["priority"]]
                # Every breach the process announced is one the report counts, and one escalation (the demo's
                # only escalations are the process's) unless the case refused it.
                assert row["breaches"] == len(breaches), (tenant, row)
                unescalated = [d for d in breaches if (d["case_id"], d["sla"]) in refused]
                assert row["escalations"] == len(breaches) - len(unescalated), (tenant, row)
                # Answered cases not within SLA: exactly those the process announced a first-response breach for.
                n = answered_per_priority.get(row["priority"], 0)
                late = {d["case_id"] for d in breaches if d["sla"] == "first_response" and d["case_id"] in answered}
                if n:
                    assert n - round(row["first_response_within_sla"] * n) == len(late), (tenant, row)
            assert announced or tenant != "acme", "the demo breaches some SLA: the check above compared something"
    finally:
        reports.close()


def test_a_kept_demo_can_be_queried_afterwards(demo_run: tuple[Path, str], crmflow: Crmflow) -> None:
    data, _ = demo_run
    done = crmflow("--database-url", str(data / "crmflow.db"), "query", "campaigns", "--tenant", "globex", "--format", "csv")
    assert done.stdout.splitlines()[0].startswith("campaign,")
    assert len(done.stdout.splitlines()) == 1 + 4  # the header and globex's four campaigns


def test_the_demo_refuses_a_directory_that_already_holds_data(crmflow: Crmflow, tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "crmflow.db").write_text("not a demo")
    done = crmflow("demo", "--size", "small", "--data-dir", str(tmp_path / "taken"), check=False)
    assert done.returncode == 1
    assert "is not empty" in done.stderr
