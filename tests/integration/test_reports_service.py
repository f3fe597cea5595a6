"""The service reports (sla, faq, accounts, instances), projected from hand-made stories.

Each story runs commands with the test clock (it starts Monday 2026-03-02 09:00 UTC),
projects the stored history into the read models, and compares the report rows with
figures worked out by hand in the comments. A second tenant (globex) always has data
too, and must never show up in acme's rows. Each story ends by rebuilding the read
models from the history and checking the rows did not change.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from crmflow.aggregates.application import CrmApplication
from crmflow.processes.loader import parse_documents
from crmflow.processes.registry import DefinitionRegistry
from crmflow.processes.runtime import ProcessRuntime
from crmflow.projections.db import Database
from crmflow.projections.figures import iso
from crmflow.projections.projector import apply_all, rebuild
from crmflow.projections.reports import accounts, faq, instances, sla
from crmflow.workers.history import history_source, stored_history
from tests.conftest import Clock, Run

DEFINITIONS = Path(__file__).parents[2] / "processes" / "definitions"
# A tiny definition of our own: it waits for the case's resolution, with no deadline.
CASE_WATCH = """
apiVersion: crmflow/v1
kind: Process
name: case-watch
version: 1
tenant: "*"
description: Wait, with no deadline, for each opened case to be resolved.
trigger:
  on: [CaseOpened]
vars:
  case: event.subject
steps:
  - id: await-resolution
    wait_for: {on: [CaseResolved], when: event.subject == vars.case}
    next: end
"""


@pytest.fixture
def db(reports: Database) -> Database:
    """The read models (the shared `reports` fixture)."""
    return reports


def project(db: Database, app: CrmApplication) -> None:
    apply_all(db, stored_history(app))
    assert apply_all(db, stored_history(app)) == 0, "a second pass over the same history changes nothing"


def check_rebuild_gives_the_same_rows(db: Database, app: CrmApplication, rows: Callable[[], Any]) -> None:
    incremental = rows()
    for _ in range(2):  # twice: the second rebuild starts from tables the first one renamed into place
        rebuild(db, history_source(app))
        assert rows() == incremental


def test_sla_report_gives_response_and_resolution_times_per_priority_across_a_weekend(
    app: CrmApplication, run: Run, clock: Clock, db: Database
) -> None:
    def case(priority: str, tenant: str = "acme") -> Any:
        return run("case.open", subject=f"{priority} trouble", priority=priority, tenant=tenant).aggregate_id

    # Mon 09:00. Default SLA in calendar hours: urgent 1h/8h, high 4h/24h, medium 8h/72h, low 24h/120h.
    u, h1, g = case("urgent"), case("high"), case("urgent", tenant="globex")
    clock.advance(minutes=20)  # Mon 09:20
    run("case.respond", case_id=u)
    clock.advance(minutes=40)  # Mon 10:00
    h2 = case("high")
    run("case.escalate", case_id=u, reason="payment provider down")
    clock.advance(hours=1)  # Mon 11:00
    run("case.escalate", case_id=u, reason="still down")
    clock.advance(hours=2)  # Mon 13:00
    run("case.respond", case_id=h1)
    run("case.respond", case_id=g, tenant="globex")
    clock.advance(hours=2)  # Mon 15:00
    run("case.respond", case_id=h2)
    clock.advance(hours=3)  # Mon 18:00
    run("case.resolve", case_id=u, solution="provider back")
    clock.advance(hours=14)  # Tue 08:00
    run("case.resolve", case_id=h1, solution="index added")
    clock.advance(hours=4)  # Tue 12:00
    run("case.resolve", case_id=h2, solution="quota raised")
    clock.advance(days=2)  # Thu 03-05 12:00
    m = case("medium")
    clock.advance(hours=2)  # Thu 14:00
    run("case.respond", case_id=m)
    clock.advance(hours=27)  # Fri 03-06 17:00
    h3 = case("high")
    clock.advance(hours=64)  # Mon 03-09 09:00, after the weekend
    run("case.respond", case_id=h3)
    clock.advance(hours=1)  # Mon 10:00
    case("low")
    clock.advance(hours=2, minutes=30)  # Mon 12:30 = now
    run("case.resolve", case_id=h3, solution="after the weekend")

    project(db, app)
    rows = sla(db, "acme", now=clock.now)

    assert rows == [
        # urgent u: opened Mon 09:00, answered 09:20 → 20/60 = 0.33 h, due 10:00 → within (1/1 = 1.0);
        # escalated 11:00... twice → 2; resolved Mon 18:00 → 9 h, due 17:00 → breached (0/1 = 0.0).
        {"priority": "urgent", "cases": 1, "open": 0, "first_response_median_h": D("0.33"), "first_response_p90_h": D("0.33"),
         "first_response_within_sla": D("1.0"), "resolution_median_h": D("9.0"), "resolution_p90_h": D("9.0"),
         "resolution_within_sla": D("0.0"), "breaches": 0, "escalations": 2, "backlog_max_age_h": None},
        # high h1: Mon 09:00 → answered 13:00 = 4 h (due 13:00, on the dot: within),
        #          resolved Tue 08:00 = 23 h (due Tue 09:00: within).
        # high h2: Mon 10:00 → answered 15:00 = 5 h (due 14:00: late), resolved Tue 12:00 = 26 h (due Tue 10:00: late).
        # high h3: Fri 17:00 → answered Mon 09:00 = 7 h Fri + 48 h weekend + 9 h Mon = 64 h (late),
        #          resolved Mon 12:30 = 67.5 h (due Sat 17:00: late).
        # First response [4, 5, 64]: median 5; p90 nearest rank = ceil(0.9 × 3) = 3rd = 64; within 1/3 = 0.3333.
        # Resolution [23, 26, 67.5]: median 26; p90 = 3rd = 67.5; within 1/3 = 0.3333.
        {"priority": "high", "cases": 3, "open": 0, "first_response_median_h": D("5.0"), "first_response_p90_h": D("64.0"),
         "first_response_within_sla": D("0.3333"), "resolution_median_h": D("26.0"), "resolution_p90_h": D("67.5"),
         "resolution_within_sla": D("0.3333"), "breaches": 0, "escalations": 0, "backlog_max_age_h": None},
        # medium m: Thu 12:00 → answered 14:00 = 2 h (within 8), still open: age at Mon 12:30 = 4 × 24 + 0.5 = 96.5 h.
        {"priority": "medium", "cases": 1, "open": 1, "first_response_median_h": D("2.0"), "first_response_p90_h": D("2.0"),
         "first_response_within_sla": D("1.0"), "resolution_median_h": None, "resolution_p90_h": None,
         "resolution_within_sla": None, "breaches": 0, "escalations": 0, "backlog_max_age_h": D("96.5")},
        # low: opened Mon 10:00, never answered: no times, no shares (0 answered), age 2.5 h.
        {"priority": "low", "cases": 1, "open": 1, "first_response_median_h": None, "first_response_p90_h": None,
         "first_response_within_sla": None, "resolution_median_h": None, "resolution_p90_h": None,
         "resolution_within_sla": None, "breaches": 0, "escalations": 0, "backlog_max_age_h": D("2.5")},
    ]  # fmt: skip
    # globex's urgent case (Mon 09:00, answered 13:00 = 4 h, due 10:00: late; open at Mon 03-09 12:30 =
    # 7 × 24 + 3.5 = 171.5 h) is in none of acme's figures above, and is all that globex sees.
    assert sla(db, "globex", now=clock.now) == [
        {"priority": "urgent", "cases": 1, "open": 1, "first_response_median_h": D("4.0"), "first_response_p90_h": D("4.0"),
         "first_response_within_sla": D("0.0"), "resolution_median_h": None, "resolution_p90_h": None,
         "resolution_within_sla": None, "breaches": 0, "escalations": 0, "backlog_max_age_h": D("171.5")}]  # fmt: skip
    check_rebuild_gives_the_same_rows(db, app, lambda: [sla(db, t, now=clock.now) for t in ("acme", "globex")])


def test_faq_report_ranks_topics_and_names_the_article_that_resolved_them_most(
    app: CrmApplication, run: Run, clock: Clock, db: Database
) -> None:
    def article(title: str, category: str, tenant: str = "acme") -> Any:
        created = run("article.create", title=title, body="...", category=category, tenant=tenant).aggregate_id
        run("article.publish", article_id=created, tenant=tenant)
        return created

    def case(category: str | None, subject: str = "help", tenant: str = "acme", article_id: Any = None,
             resolve: bool = True) -> Any:  # fmt: skip
        opened = run("case.open", subject=subject, category=category, tenant=tenant).aggregate_id
        if resolve:
            run("case.respond", case_id=opened, tenant=tenant)
            run("case.resolve", case_id=opened, solution="done", article_id=article_id, tenant=tenant)
        return opened

    reset, unlock = article("Reset your password", "login"), article("Unlock your account", "login")
    case("login", article_id=reset)
    run("case.close", case_id=case("login", article_id=reset))  # closed counts as resolved
    case("login", article_id=unlock)
    case("login", resolve=False)
    case("billing")  # resolved, without an article
    case(None, subject="dark mode", resolve=False)  # no category: the subject is the topic
    run("article.revise", article_id=reset, title="Reset your password (2026)")  # the report shows today's title
    zeta, alpha = article("Zeta guide", "login", "globex"), article("Alpha guide", "login", "globex")
    case("login", tenant="globex", article_id=zeta)
    case("login", tenant="globex", article_id=alpha)
    clock.advance(hours=1)

    project(db, app)

    # Quick replies: every login case after the first was offered the articles that had resolved login cases
    # by then (3 of 4 suggested), none was answered with one; each answered case was answered at once (0 h).
    no_suggestion_used = {"answered_with_suggestion": 0, "first_response_median_h_with_suggestion": None}
    assert faq(db, "acme") == [
        # login: 4 cases, 3 resolved (one since closed), all 3 with an article: reset ×2 beats unlock ×1.
        {"topic": "login", "cases": 4, "resolved": 3, "resolved_with_article": 3,
         "top_article": "Reset your password (2026)", "suggested": 3, **no_suggestion_used,
         "first_response_median_h_without_suggestion": D("0.00")},
        # billing and "dark mode" both have 1 case: ties are ranked by topic, billing < dark mode.
        {"topic": "billing", "cases": 1, "resolved": 1, "resolved_with_article": 0, "top_article": None,
         "suggested": 0, **no_suggestion_used, "first_response_median_h_without_suggestion": D("0.00")},
        {"topic": "dark mode", "cases": 1, "resolved": 0, "resolved_with_article": 0, "top_article": None,
         "suggested": 0, **no_suggestion_used, "first_response_median_h_without_suggestion": None},
    ]  # fmt: skip
    # globex's two login cases are not among acme's 4; its top article is a 1–1 tie, broken by title: Alpha < Zeta.
    # Its second case was offered Zeta, which had resolved the first.
    assert faq(db, "globex") == [
        {"topic": "login", "cases": 2, "resolved": 2, "resolved_with_article": 2, "top_article": "Alpha guide",
         "suggested": 1, **no_suggestion_used, "first_response_median_h_without_suggestion": D("0.00")}]  # fmt: skip
    check_rebuild_gives_the_same_rows(db, app, lambda: (faq(db, "acme"), faq(db, "globex")))


def test_accounts_report_gives_revenue_cost_profit_and_segment_ordered_by_profit(
    app: CrmApplication, run: Run, clock: Clock, db: Database
) -> None:
    def pay(account: Any, amount: str, tenant: str = "acme") -> None:
        run("account.record_payment", account_id=account, invoice_id=f"inv-{uuid.uuid4().hex[:6]}", amount=amount,
            paid_on="2026-03-02", tenant=tenant)  # fmt: skip

    def cost(account: Any, amount: str) -> None:
        run("account.record_cost", account_id=account, amount=amount)

    werke, klein, mini, neu = (run("account.create", name=n).aggregate_id for n in ("Werke", "Klein", "Mini", "Neu"))
    globex_corp = run("account.create", name="Globex Corp", tenant="globex").aggregate_id
    clock.advance(hours=1)  # 10:00
    pay(werke, "60000"), pay(klein, "20000"), pay(globex_corp, "500000", tenant="globex")
    clock.advance(hours=1)  # 11:00
    pay(werke, "40000"), pay(mini, "19999.99")
    eleven = clock.now.isoformat()
    clock.advance(hours=1)  # 12:00
    cost(werke, "15000.50"), cost(neu, "300"), cost(klein, "2500")
    noon = clock.now.isoformat()
    clock.advance(hours=1)  # 13:00: two cases for Klein, one of them resolved; one for Globex Corp
    open_case = run("case.open", subject="Sync fails", account_id=klein).aggregate_id
    done = run("case.open", subject="Invoice copy", account_id=klein).aggregate_id
    run("case.open", subject="Globex outage", account_id=globex_corp, tenant="globex")
    run("case.respond", case_id=done), run("case.resolve", case_id=done, solution="sent")
    run("case.respond", case_id=open_case)  # answered, still open
    one_pm = clock.now.isoformat()
    clock.advance(hours=1)

    project(db, app)

    assert accounts(db, "acme") == [
        # Werke: 60,000 + 40,000 = 100,000 paid (≥ 100,000: strategic) − 15,000.50 cost = 84,999.50;
        # last activity: its cost at 12:00.
        {"account": "Werke", "currency": "EUR", "revenue": D("100000.0"), "cost_to_serve": D("15000.5"), "profit": D("84999.5"), "segment": "strategic",
         "open_cases": 0, "last_activity_at": noon},
        # Mini: 19,999.99 paid (< 20,000 but > 0: standard), no cost → 19,999.99; last: payment at 11:00.
        {"account": "Mini", "currency": "EUR", "revenue": D("19999.99"), "cost_to_serve": D("0.0"), "profit": D("19999.99"), "segment": "standard",
         "open_cases": 0, "last_activity_at": eleven},
        # Klein: 20,000 paid (≥ 20,000: key) − 2,500 = 17,500; 1 of its 2 cases open; last: cases opened at 13:00.
        {"account": "Klein", "currency": "EUR", "revenue": D("20000.0"), "cost_to_serve": D("2500.0"), "profit": D("17500.0"), "segment": "key",
         "open_cases": 1, "last_activity_at": one_pm},
        # Neu: nothing paid (prospect), 300 cost → −300; last: cost at 12:00.
        {"account": "Neu", "currency": "EUR", "revenue": D("0.0"), "cost_to_serve": D("300.0"), "profit": D("-300.0"), "segment": "prospect",
         "open_cases": 0, "last_activity_at": noon},
    ]  # fmt: skip
    # Globex Corp (500,000 paid, 1 open case) appears only in globex's report.
    assert accounts(db, "globex") == [
        {"account": "Globex Corp", "currency": "EUR", "revenue": D("500000.0"), "cost_to_serve": D("0.0"), "profit": D("500000.0"),
         "segment": "strategic", "open_cases": 1, "last_activity_at": one_pm}]  # fmt: skip
    check_rebuild_gives_the_same_rows(db, app, lambda: (accounts(db, "acme"), accounts(db, "globex")))


def test_instances_report_counts_process_instances_per_definition_version_status_and_step(
    app: CrmApplication, run: Run, clock: Clock, db: Database
) -> None:
    registry = DefinitionRegistry(app)
    shipped = DEFINITIONS / "web-lead-follow-up.yaml"
    registry.deploy(parse_documents(shipped.read_text(), shipped.name), "ada")
    registry.deploy(parse_documents(CASE_WATCH, "case-watch.yaml"), "ada")
    sent: list[dict[str, Any]] = []

    def event(event_type: str, subject: Any, data: dict[str, Any], tenant: str = "acme") -> dict[str, Any]:
        sent.append({"specversion": "1.0", "id": f"e{len(sent) + 1}", "type": event_type, "subject": str(subject),
                     "tenantid": tenant, "source": "/s", "data": data})  # fmt: skip
        return sent[-1]

    def lead(source: str, tenant: str = "acme") -> dict[str, Any]:
        created = run("lead.create", name="Ada", source=source, tenant=tenant).aggregate_id
        return event("LeadCreated", created, {"source": source}, tenant)

    a, b, d = lead("web"), lead("web"), lead("webinar")
    lead("phone")  # not a web lead: the trigger's `when` starts no instance
    event("LeadCreated", uuid.uuid4(), {"source": "web"})  # no such lead: lead.assign is refused → failed
    watched = event("CaseOpened", uuid.uuid4(), {"priority": "low"})  # case-watch waits for it, without a deadline
    lead("web", tenant="globex")
    runtime, started = ProcessRuntime(app, clock), clock.now  # Mon 09:00
    runtime.handle(list(sent))
    clock.advance(hours=1)
    runtime.handle([event("LeadStatusChanged", b["subject"], {"status": "working"})])  # b is contacted: completed

    project(db, app)

    # acme: a and d wait at wait-contact (2), b completed (step NULL → ""), ghost failed at assign, the case waits
    # at await-resolution. Sorted by definition, version, status, step: case-watch first; completed < failed < waiting.
    # stuck = waiting with neither a due time nor an event to wait for: every waiting one here waits on an event → 0.
    assert instances(db, "acme") == [
        {"definition": "case-watch", "version": 1, "status": "waiting", "step": "await-resolution", "instances": 1,
         "stuck": 0},
        {"definition": "web-lead-follow-up", "version": 3, "status": "completed", "step": "", "instances": 1,
         "stuck": 0},
        {"definition": "web-lead-follow-up", "version": 3, "status": "failed", "step": "assign", "instances": 1,
         "stuck": 0},
        {"definition": "web-lead-follow-up", "version": 3, "status": "waiting", "step": "wait-contact", "instances": 2,
         "stuck": 0},
    ]  # fmt: skip
    # What keeps them from being stuck: the leads wait on LeadStatusChanged with a 2-day timeout (started Mon 09:00
    # → due Wed 09:00); the case waits on CaseResolved with no due time at all.
    waiting = db.query("SELECT key, waiting_on, due_at FROM rm_instances WHERE tenant = 'acme' AND status = 'waiting'")
    due = (started + timedelta(days=2)).isoformat()
    assert {r["key"]: (r["waiting_on"], iso(r["due_at"])) for r in waiting} == {
        watched["subject"]: ("CaseResolved", None), a["subject"]: ("LeadStatusChanged", due),
        d["subject"]: ("LeadStatusChanged", due)}  # fmt: skip
    # globex's one web lead waits in globex's report only.
    assert instances(db, "globex") == [
        {"definition": "web-lead-follow-up", "version": 3, "status": "waiting", "step": "wait-contact", "instances": 1,
         "stuck": 0}]  # fmt: skip
    check_rebuild_gives_the_same_rows(db, app, lambda: (instances(db, "acme"), instances(db, "globex")))


def test_a_reopened_case_counts_as_open_not_resolved_in_the_sla_and_faq_reports(
    app: CrmApplication, run: Run, clock: Clock, db: Database
) -> None:
    guide = run("article.create", title="Reset your password", body="...", category="login").aggregate_id
    run("article.publish", article_id=guide)
    case = run("case.open", subject="Cannot log in", category="login", priority="medium").aggregate_id  # Mon 09:00
    clock.advance(hours=1)  # 10:00
    run("case.respond", case_id=case)
    clock.advance(hours=1)  # 11:00
    run("case.resolve", case_id=case, solution="reset it", article_id=guide)
    clock.advance(hours=1)  # 12:00: the customer still cannot log in
    run("case.reopen", case_id=case, reason="still locked out")
    clock.advance(hours=1)  # 13:00 = now

    project(db, app)

    # Answered after 1 h (due 17:00: within); reopened, so open (age 13:00 − 09:00 = 4 h) and not resolved:
    # no resolution time and no resolution share, as the aggregate (resolved_at back to None) says.
    assert app.state(case, "acme")["resolved_at"] is None
    assert sla(db, "acme", now=clock.now) == [
        {"priority": "medium", "cases": 1, "open": 1, "first_response_median_h": D("1.0"), "first_response_p90_h": D("1.0"),
         "first_response_within_sla": D("1.0"), "resolution_median_h": None, "resolution_p90_h": None,
         "resolution_within_sla": None, "breaches": 0, "escalations": 0, "backlog_max_age_h": D("4.0")}]  # fmt: skip
    # 1 login case, 0 resolved: the article did not (yet) resolve it. Nothing to suggest when it opened (no
    # login case had been resolved); first answered after 1 h, without a suggestion.
    assert faq(db, "acme") == [
        {"topic": "login", "cases": 1, "resolved": 0, "resolved_with_article": 0, "top_article": None,
         "suggested": 0, "answered_with_suggestion": 0, "first_response_median_h_with_suggestion": None,
         "first_response_median_h_without_suggestion": D("1.00")}]  # fmt: skip
