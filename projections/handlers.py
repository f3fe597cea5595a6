"""How each event changes the read-model tables: one small function per event type.

Each runs inside the projector's transaction, with the table prefix ``p``
(``rm_``, or ``rmb_`` during a rebuild). Events of types no report needs
change nothing. Amounts arrive as decimal strings and are stored as Decimal
(projections.tables); times are written as the event carries them, ISO 8601
UTC, which PostgreSQL reads into TIMESTAMPTZ.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from crmflow.projections.db import Cursor

# A handler returns None, or (an idempotent one, see IDEMPOTENT) whether it changed a row.
Handler = Callable[[Cursor, str, dict[str, Any]], "bool | None"]
HANDLERS: dict[str, Handler] = {}
# Types whose handler gives the same rows however often and in whatever order it runs: the projector
# does not record them in ``seen`` (projections.projector), so that ``seen`` keeps counting only the
# stored domain events the read-model lag compares it with (workers.read_model_lag).
IDEMPOTENT: set[str] = set()


# Events of these records count as activity on the record's account (accounts.last_activity_at).
ACTIVITY_OF = {"Opportunity": ("opportunities", "opportunity_id"), "Case": ("cases", "case_id")}


def on(*types: str, activity: bool = True) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        for event_type in types:
            kind = next((prefix for prefix in ACTIVITY_OF if event_type.startswith(prefix)), None)
            kind = kind if activity else None
            HANDLERS[event_type] = _with_activity(handler, *ACTIVITY_OF[kind]) if kind else handler
        return handler

    return register


def _with_activity(handler: Handler, table: str, key: str) -> Handler:
    def handle(cur: Cursor, p: str, e: dict[str, Any]) -> None:
        handler(cur, p, e)
        cur.execute(f"UPDATE {p}accounts SET {_LATEST_ACTIVITY} WHERE tenant = %(tenant)s AND account_id = "
                    f"(SELECT account_id FROM {p}{table} WHERE {key} = %(id)s AND tenant = %(tenant)s)",
                    {"at": e["time"], "id": e["subject"], "tenant": e["tenantid"]})  # fmt: skip

    return handle


# The latest of the times seen, whatever order the events come in (a replay, a late one).
_LATEST_ACTIVITY = ("last_activity_at = CASE WHEN last_activity_at IS NULL OR last_activity_at < %(at)s "
                    "THEN %(at)s ELSE last_activity_at END")  # fmt: skip


def _set(cur: Cursor, p: str, table: str, key: str, event: dict[str, Any], **values: Any) -> None:
    assignments = ", ".join(f"{column} = %({column})s" for column in values)
    cur.execute(f"UPDATE {p}{table} SET {assignments} WHERE {key} = %(id)s AND tenant = %(tenant)s",
                {**values, "id": event["subject"], "tenant": event["tenantid"]})  # fmt: skip


def _insert(cur: Cursor, p: str, table: str, row: dict[str, Any]) -> None:
    columns = ", ".join(row)
    cur.execute(f"INSERT INTO {p}{table} ({columns}) VALUES ({', '.join(f'%({c})s' for c in row)}) ON CONFLICT DO NOTHING", row)


def _money(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


# Leads.

@on("LeadCreated")
def lead_created(cur: Cursor, p: str, e: dict[str, Any]) -> None:
    d = e["data"]
    _insert(cur, p, "leads", {"tenant": e["tenantid"], "lead_id": e["subject"], "name": d.get("name"),
                              "company": d.get("company"), "source": d.get("source"), "campaign_id": d.get("campaign_id"),
                              "owner": d.get("owner"), "status": "new", "score": d.get("score", 0), "created_at": e["time"]})  # fmt: skip


@on("LeadAssigned")
def lead_assigned(cur: Cursor, p: str, e: dict[str, Any]) -> None:
    _set(cur, p, "leads", "lead_id", e, owner=e["data"]["owner"])


@on("LeadStatusChanged")
def lead_worked(cur: Cursor, p: str, e: dict[str, Any]) -> None:
    _set(cur, p, "leads", "lead_id", e, status=e["data"]["status"], worked_at=e["time"])


@on("LeadScoreChanged")
def lead_scored(cur: Cursor, p: str, e: dict[str, Any]) -> None:
    _set(cur, p, "leads", "lead_id", e, score=e["data"]["score"])


@on("LeadQualified")
def lead_qualified(cur: Cursor, p: str, e: dict[str, Any]) -> None:
    _set(cur, p, "leads", "lead_id", e, status="qualified", qualified_at=e["time"])
    # A row of its own, not a column of rm_activities: the activity's events may be projected after this one.
    _insert(cur, p, "lead_qualifications", {"tenant": e["tenantid"], "lead_id": e["subject"],
                                            "activity_id": e["data"].get("activity_id"), "qualified_at": e["time"]})  # fmt: skip


@on("LeadDisqualified")
def lead_disqualified(cur: Cursor, p: str, e: dict[str, Any]) -> None:
    _set(cur, p, "leads", "lead_id", e, status="disqualified", disqualified_at=e["time"])


@on("LeadConverted")
def lead_converted(cur: Cursor, p: str, e: dict[str, Any]) -> None:
    d = e["data"]
    _set(cur, p, "leads", "lead_id", e, status="converted", converted_at=e["time"], account_id=d["account_id"],
         opportunity_id=d.get("opportunity_id"))  # fmt: skip


# Opportunities.

@on("OpportunityCreated")
def opportunity_created(cur: Cursor, p: str, e: dict[str, Any]) -> None:
    d = e["data"]
    _insert(cur, p, "opportunities", {"tenant": e["tenantid"], "opportunity_id": e["subject"], "account_id": d["account_id"],
                                      "name": d["name"], "amount": _money(d["amount"]), "currency": d["currency"],
                                      "close_date": d["close_date"], "owner": d.get("owner"), "stage": d["stage"],
                                      "probability": d["probability"], "campaign_id": d.get("campaign_id"),
                                      "lead_id": d.get("lead_id"), "created_at": e["time"]})  # fmt: skip


@on("OpportunityStageChanged", "OpportunityReopened")
def opportunity_stage(cur: Cursor, p: str, e: dict[str, Any]) -> None:
    _set(cur, p, "opportunities", "opportunity_id", e, stage=e["data"]["stage"], probability=e["data"]["probability"],
         closed_at=None)  # fmt: skip


@on("OpportunityWon")
def opportunity_won(cur: Cursor, p: str, e: dict[str, Any]) -> None:
    d = e["data"]
    _set(cur, p, "opportunities", "opportunity_id", e, stage="closed_won", probability=100, amount=_money(d["amount"]),
         closed_at=d["closed_at"])  # fmt: skip


@on("OpportunityLost")
def opportunity_lost(cur: Cursor, p: str, e: dict[str, Any]) -> None:
    _set(cur, p, "opportunities", "opportunity_id", e, stage="closed_lost", probability=0, closed_at=e["data"]["closed_at"])


@on("OpportunityUpdated")
def opportunity_updated(cur: Cursor, p: str, e: dict[str, Any]) -> None:
    d = e["data"]
    _set(cur, p, "opportunities", "opportunity_id", e, amount=_money(d["amount"]), close_date=d["close_date"], name=d["name"])


@on("OpportunityAssigned")
def opportunity_assigned(cur: Cursor, p: str, e: dict[str, Any]) -> None:
    _set(cur, p, "opportunities", "opportunity_id", e, owner=e["data"]["owner"])


# Campaigns.

@on("CampaignCreated")
def campaign_created(cur: Cursor, p: str, e: dict[str, Any]) -> None:
    d = e["data"]
    _insert(cur, p, "campaigns", {"tenant": e["tenantid"], "campaign_id": e["subject"], "name": d["name"],
                                  "channel": d["channel"], "budget": _money(d["budget"]), "actual_cost": Decimal(0),
                                  "currency": d["currency"], "status": "planned", "created_at": e["time"]})  # fmt: skip


@on("CampaignActivated", "CampaignCompleted")
def campaign_status(cur: Cursor, p: str, e: dict[str, Any]) -> None:
    _set(cur, p, "campaigns", "campaign_id", e, status=e["data"]["status"])


@on("CampaignCostRecorded")
def campaign_cost(cur: Cursor, p: str, e: dict[str, Any]) -> None:
    _set(cur, p, "campaigns", "campaign_id", e, actual_cost=_money(e["data"]["actual_cost"]))


# Accounts.

@on("AccountCreated")
def account_created(cur: Cursor, p: str, e: dict[str, Any]) -> None:
    d = e["data"]
    _insert(cur, p, "accounts", {"tenant": e["tenantid"], "account_id": e["subject"], "name": d["name"],
                                 "industry": d.get("industry"), "owner": d.get("owner"), "currency": d.get("currency"),
                                 "revenue": Decimal(0), "cost_to_serve": Decimal(0), "created_at": e["time"],
                                 "last_activity_at": e["time"]})  # fmt: skip


@on("AccountPaymentRecorded")
def account_paid(cur: Cursor, p: str, e: dict[str, Any]) -> None:
    _add_money(cur, p, e, "revenue")


@on("AccountCostRecorded")
def account_cost(cur: Cursor, p: str, e: dict[str, Any]) -> None:
    _add_money(cur, p, e, "cost_to_serve")


def _add_money(cur: Cursor, p: str, e: dict[str, Any], column: str) -> None:
    """Add to the account's books in its currency; the first amount of an account without one sets it.

    The aggregate refuses an amount in another currency. A history written before
    it did may still hold one: it is left out rather than added to the wrong money.
    A cost recorded before costs carried a currency is in the account's.
    """
    d = e["data"]
    cur.execute(f"UPDATE {p}accounts SET {column} = {cur.db.money_add(column, 'amount')}, "
                f"currency = COALESCE(currency, CAST(%(currency)s AS TEXT), 'EUR'), {_LATEST_ACTIVITY} "
                "WHERE account_id = %(id)s AND tenant = %(tenant)s "
                "AND (CAST(%(currency)s AS TEXT) IS NULL OR currency IS NULL OR currency = %(currency)s)",
                {"amount": _money(d["amount"]), "currency": d.get("currency"), "at": e["time"],
                 "id": e["subject"], "tenant": e["tenantid"]})  # fmt: skip


@on("AccountAssigned")
def account_assigned(cur: Cursor, p: str, e: dict[str, Any]) -> None:
    cur.execute(f"UPDATE {p}accounts SET owner = %(owner)s, {_LATEST_ACTIVITY} WHERE account_id = %(id)s AND tenant = %(tenant)s",
                {"owner": e["data"]["owner"], "at": e["time"], "id": e["subject"], "tenant": e["tenantid"]})  # fmt: skip


# Cases.

@on("CaseOpened")
def case_opened(cur: Cursor, p: str, e: dict[str, Any]) -> None:
    d = e["data"]
    _insert(cur, p, "cases", {"tenant": e["tenantid"], "case_id": e["subject"], "account_id": d.get("account_id"),
                              "subject": d["subject"], "category": d.get("category"), "priority": d["priority"],
                              "channel": d["channel"], "owner": d.get("owner"), "status": "new", "opened_at": d["opened_at"],
                              "first_response_due": d["first_response_due"], "resolution_due": d["resolution_due"],
                              "escalations": 0, "suggested_articles": 0, "suggestion_used": 0})  # fmt: skip


@on("CaseAssigned")
def case_assigned(cur: Cursor, p: str, e: dict[str, Any]) -> None:
    _set(cur, p, "cases", "case_id", e, owner=e["data"]["owner"])


@on("CaseResponded")
def case_responded(cur: Cursor, p: str, e: dict[str, Any]) -> None:
    d = e["data"]
    # A response stored before quick replies has neither article_id nor suggested: no article.
    used = {"suggestion_used": 1} if d.get("suggested") else {}
    if d["first_response"]:
        _set(cur, p, "cases", "case_id", e, status=d["status"], first_responded_at=d["responded_at"],
             first_response_within_sla=int(bool(d["within_sla"])), first_response_article_id=d.get("article_id"),
             first_response_suggested=int(bool(d.get("suggested"))), **used)  # fmt: skip
    else:
        _set(cur, p, "cases", "case_id", e, status=d["status"], **used)


@on("CaseEscalated")
def case_escalated(cur: Cursor, p: str, e: dict[str, Any]) -> None:
    cur.execute(f"UPDATE {p}cases SET status = 'escalated', escalations = escalations + 1 "
                "WHERE case_id = %(id)s AND tenant = %(tenant)s", {"id": e["subject"], "tenant": e["tenantid"]})  # fmt: skip


@on("CaseOnHold", "CaseClosed")
def case_status(cur: Cursor, p: str, e: dict[str, Any]) -> None:
    _set(cur, p, "cases", "case_id", e, status=e["data"]["status"])


@on("CaseReopened")
def case_reopened(cur: Cursor, p: str, e: dict[str, Any]) -> None:
    # As on the aggregate: a reopened case is open again, and its old resolution no longer counts.
    _set(cur, p, "cases", "case_id", e, status=e["data"]["status"], resolved_at=None, resolution_within_sla=None,
         article_id=None)  # fmt: skip


@on("CaseResumed", "CaseSlaSet")
def case_due(cur: Cursor, p: str, e: dict[str, Any]) -> None:
    d = e["data"]
    values = {"first_response_due": d["first_response_due"], "resolution_due": d["resolution_due"]}
    if "status" in d:
        values["status"] = d["status"]
    _set(cur, p, "cases", "case_id", e, **values)


@on("CaseResolved")
def case_resolved(cur: Cursor, p: str, e: dict[str, Any]) -> None:
    d = e["data"]
    _set(cur, p, "cases", "case_id", e, status="resolved", resolved_at=d["resolved_at"],
         resolution_within_sla=int(bool(d["within_sla"])), article_id=d.get("article_id"))  # fmt: skip


# SLA verdicts: events a process emits (the shipped case-sla), not the Case aggregate's. Their subject is
# the instance's key; the case is the one named in data.case_id. The verdict columns are the verdicts'
# alone: no handler of a case's own events writes them, so a CaseResponded, CaseResolved or CaseReopened
# stored after the verdict (the process acts after the event it waited for) leaves it as it is. A reopen
# keeps the resolution verdict too: the definition judges a case's first resolution only and escalates
# only then, and keeping its verdict keeps the report in step with the escalations. Once breached, always
# breached: a met verdict never overwrites a breach, so the outcome is the same in any order, and applying
# one again changes nothing (IDEMPOTENT). Verdicts are not activity on the account: a breach is the timer's.
VERDICT_COLUMNS = {"first_response": "first_response_verdict", "resolution": "resolution_verdict"}
VERDICTS = {"CaseSlaMet": "met", "CaseSlaBreached": "breached"}


@on(*VERDICTS, activity=False)
def case_sla_verdict(cur: Cursor, p: str, e: dict[str, Any]) -> bool:
    d = e.get("data") or {}
    column = VERDICT_COLUMNS.get(str(d.get("sla")))
    if column is None or not d.get("case_id"):
        return False  # an SLA the report does not know, or no case named
    verdict = VERDICTS[e["type"]]
    replaces = f"{column} IS NULL OR {column} = 'met'" if verdict == "breached" else f"{column} IS NULL"
    changed = cur.execute(f"UPDATE {p}cases SET {column} = %(verdict)s "
                          f"WHERE case_id = %(id)s AND tenant = %(tenant)s AND ({replaces})",
                          {"verdict": verdict, "id": str(d["case_id"]), "tenant": e["tenantid"]})  # fmt: skip
    return changed > 0


IDEMPOTENT.update(VERDICTS)


# Knowledge articles.

@on("ArticleCreated")
def article_created(cur: Cursor, p: str, e: dict[str, Any]) -> None:
    d = e["data"]
    _insert(cur, p, "articles", {"tenant": e["tenantid"], "article_id": e["subject"], "title": d["title"],
                                 "category": d["category"], "status": "draft"})  # fmt: skip


@on("ArticlePublished", "ArticleArchived")
def article_status(cur: Cursor, p: str, e: dict[str, Any]) -> None:
    _set(cur, p, "articles", "article_id", e, status=e["data"]["status"])


@on("ArticleRevised")
def article_revised(cur: Cursor, p: str, e: dict[str, Any]) -> None:
    _set(cur, p, "articles", "article_id", e, title=e["data"]["title"])


# Process instances.

@on("ProcessInstanceStarted")
def instance_started(cur: Cursor, p: str, e: dict[str, Any]) -> None:
    d = e["data"]
    _insert(cur, p, "instances", {"tenant": e["tenantid"], "instance_id": e["subject"], "definition": d["definition"],
                                  "version": d["version"], "key": d["key"], "status": "running",
                                  "started_at": e["time"], "updated_at": e["time"]})  # fmt: skip
    if d.get("effects"):  # one record per run: the first run's effects come with the start
        _set(cur, p, "instances", "instance_id", e, **run_outcome(d["effects"]), updated_at=e["time"])


@on("ProcessInstanceRan")
def instance_ran(cur: Cursor, p: str, e: dict[str, Any]) -> None:
    _set(cur, p, "instances", "instance_id", e, **run_outcome(e["data"]["effects"]), updated_at=e["time"])


def run_outcome(effects: list[dict[str, Any]]) -> dict[str, Any]:
    """The instance's row after a run: its effects applied in order, as the one-per-effect handlers below do."""
    row: dict[str, Any] = {}
    for effect in effects:
        kind, step, detail = effect["kind"], effect.get("step"), effect.get("detail") or {}
        if kind == "entered":
            row.update(status="running", step=step, waiting_on=None, due_at=None)
        elif kind == "waiting":
            row.update(status="waiting", step=step, waiting_on=",".join(detail.get("on", [])) or None,
                       due_at=detail.get("due"))  # fmt: skip
        elif kind == "paused":
            row.update(due_at=None)
        elif kind == "resumed":
            row.update(due_at=detail.get("due"))
        elif kind == "completed":
            row.update(status="completed", step=None, waiting_on=None, due_at=None)
        elif kind == "failed":
            row.update(status="failed", step=step, waiting_on=None, due_at=None, error=detail.get("error"))
    return row


# Stores written before one record per run hold one event per effect.


@on("ProcessStepEntered")
def instance_step(cur: Cursor, p: str, e: dict[str, Any]) -> None:
    _set(cur, p, "instances", "instance_id", e, status="running", step=e["data"]["step"], waiting_on=None, due_at=None,
         updated_at=e["time"])  # fmt: skip


@on("ProcessInstanceWaiting")
def instance_waiting(cur: Cursor, p: str, e: dict[str, Any]) -> None:
    detail = e["data"]["detail"]
    _set(cur, p, "instances", "instance_id", e, status="waiting", step=e["data"]["step"],
         waiting_on=",".join(detail.get("on", [])) or None, due_at=detail.get("due"), updated_at=e["time"])  # fmt: skip


@on("ProcessClockPaused")
def instance_paused(cur: Cursor, p: str, e: dict[str, Any]) -> None:
    _set(cur, p, "instances", "instance_id", e, due_at=None, updated_at=e["time"])


@on("ProcessClockResumed")
def instance_resumed(cur: Cursor, p: str, e: dict[str, Any]) -> None:
    _set(cur, p, "instances", "instance_id", e, due_at=e["data"]["detail"]["due"], updated_at=e["time"])


@on("ProcessInstanceCompleted")
def instance_completed(cur: Cursor, p: str, e: dict[str, Any]) -> None:
    _set(cur, p, "instances", "instance_id", e, status="completed", step=None, waiting_on=None, due_at=None,
         updated_at=e["time"])  # fmt: skip


@on("ProcessInstanceFailed")
def instance_failed(cur: Cursor, p: str, e: dict[str, Any]) -> None:
    _set(cur, p, "instances", "instance_id", e, status="failed", step=e["data"]["step"], waiting_on=None, due_at=None,
         error=e["data"]["detail"].get("error"), updated_at=e["time"])  # fmt: skip


# Quick replies: how many articles the case was offered when it opened (the ranked ids are in the event).

@on("CaseRepliesSuggested", activity=False)  # made by case.open itself, not an agent's doing
def case_replies_suggested(cur: Cursor, p: str, e: dict[str, Any]) -> None:
    _set(cur, p, "cases", "case_id", e, suggested_articles=len(e["data"]["article_ids"]))


# Duplicates (docs/reports.md, "Duplicates"). A merged lead keeps its row in rm_leads, status merged; the
# lead it went into takes the company, owner and campaign it lacked, as the aggregate does.

MANUAL_MERGE = "(manual)"


@on("LeadDuplicateFlagged", "ContactDuplicateFlagged")
def duplicate_flagged(cur: Cursor, p: str, e: dict[str, Any]) -> None:
    d = e["data"]
    record = "lead" if e["type"].startswith("Lead") else "contact"
    _insert(cur, p, "duplicates", {"tenant": e["tenantid"], "record": record, "record_id": e["subject"],
                                   "action": "flagged", "rule": d["rule"], "existing_id": d[f"existing_{record}_id"],
                                   "keys": ",".join(d.get("keys") or []), "at": e["time"]})  # fmt: skip


@on("LeadMerged")
def lead_merged(cur: Cursor, p: str, e: dict[str, Any]) -> None:
    d = e["data"]
    _set(cur, p, "leads", "lead_id", e, status="merged")
    _insert(cur, p, "duplicates", {"tenant": e["tenantid"], "record": "lead", "record_id": e["subject"],
                                   "action": "merged", "rule": d.get("rule") or MANUAL_MERGE,
                                   "existing_id": d["merged_into"], "keys": ",".join(d.get("keys") or []),
                                   "at": e["time"]})  # fmt: skip


@on("LeadMergeAbsorbed")
def lead_absorbed(cur: Cursor, p: str, e: dict[str, Any]) -> None:
    taken = {k: v for k, v in (e["data"].get("fields") or {}).items() if k in ("company", "owner", "campaign_id")}
    if taken:
        _set(cur, p, "leads", "lead_id", e, **taken)


# Activities: their handlers are in a module of their own; importing it registers them.
# Products, line items, assets and usage: their own module, registered here.
# The account view (profile, profitability): contacts per account, in a module of its own.
from crmflow.projections import (
    account_handlers,  # noqa: E402, F401
    activity_handlers,  # noqa: E402, F401
    product_handlers,  # noqa: E402, F401
)
