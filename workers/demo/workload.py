"""The demo's generated workload: what marketing, sales and service do with crmflow, hour by hour.

The users act the way people do: each hour they look at their queues (the
read models, exactly as the reports see them) and work some of what is
there. Marketing runs campaigns and pays for them; web forms and webinar
attendance arrive from other services on the inbound topic; the shipped
processes route, score, escalate and book invoices; sales works, qualifies
and converts leads and moves deals to won or lost; service answers and
resolves cases of every priority, sometimes late enough for the SLA process
to escalate them. Everything random comes from one seeded generator.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from crmflow.aggregates.application import CommandRequest, CrmApplication
from crmflow.aggregates.errors import DomainError
from crmflow.projections.db import Database

SALES_REPS = ("dana", "eli", "fay")  # the web team (ana, ben, chen) gets leads from web-lead-follow-up
AGENTS = ("sam", "kim", "lee", "noor")
PRIORITY_WEIGHTS = {"urgent": 1, "high": 3, "medium": 4, "low": 2}
# Chance per hour that a new case is answered, and that an answered one is resolved.
RESPOND_PER_HOUR = {"urgent": 0.7, "high": 0.4, "medium": 0.25, "low": 0.2}
RESOLVE_PER_HOUR = {"urgent": 0.3, "high": 0.15, "medium": 0.08, "low": 0.06}
CASE_SUBJECTS = (
    ("Cannot log in", "access"), ("Password reset link expired", "access"), ("Invoice shows wrong VAT", "billing"),
    ("Charged twice this month", "billing"), ("Export to CSV fails", "product"), ("Dashboard loads slowly", "product"),
    ("How do I add a user?", "how-to"), ("Change the account owner", "how-to"),
)  # fmt: skip
ARTICLES = (
    ("Resetting your password", "access"), ("Understanding your invoice", "billing"),
    ("Exporting data", "product"), ("Managing users and roles", "how-to"),
)  # fmt: skip
CAMPAIGNS = (  # name, channel, budget, the lead source it brings
    ("Spring launch webinar", "webinar", 12_000, "webinar"), ("Trade fair Hamburg", "event", 30_000, "event"),
    ("Search ads", "search", 8_000, "search"), ("Partner referrals", "partner", 5_000, "partner"),
)  # fmt: skip
COMPANIES = ("Analytical Engines", "Babbage & Co", "Hopper Systems", "Lovelace Labs", "Turing Works", "Noether Data",
             "Curie Energy", "Shannon Networks", "Hamilton Flight", "Goodall Field Research", "Ride Orbital",
             "Franklin Bio", "Meitner Physics", "Kovalevskaya Maths", "Hypatia Instruments")  # fmt: skip
FIRST_NAMES = ("Ada", "Grace", "Alan", "Emmy", "Marie", "Claude", "Margaret", "Jane", "Sally", "Rosalind", "Lise", "Sofia")
LAST_NAMES = ("Lovelace", "Hopper", "Turing", "Noether", "Curie", "Shannon", "Hamilton", "Goodall", "Ride", "Franklin")
PRODUCTS = ("Platform licence", "Support plan", "Onboarding", "Analytics add-on", "Enterprise upgrade")
LOSS_REASONS = ("price", "chose a competitor", "no budget this year", "project cancelled")
DISQUALIFY_REASONS = ("student", "no budget", "wrong market", "duplicate")


@dataclass(frozen=True)
class Size:
    """How much happens: tenants, simulated days, and each tenant's daily volume."""

    tenants: int
    days: int
    leads_per_day: float
    forms_per_day: float
    cases_per_day: float


SIZES = {
    "small": Size(tenants=2, days=7, leads_per_day=5, forms_per_day=3, cases_per_day=4),
    "medium": Size(tenants=3, days=21, leads_per_day=8, forms_per_day=5, cases_per_day=6),
    "large": Size(tenants=5, days=60, leads_per_day=20, forms_per_day=12, cases_per_day=15),
}
TENANTS = ("acme", "globex", "initech", "umbrella", "hooli")


def _age(now: datetime, iso: str | None) -> timedelta:
    return now - datetime.fromisoformat(iso) if iso else timedelta(0)


class Workload:
    """The users of every tenant, acting once an hour on what the read models show them."""

    def __init__(self, app: CrmApplication, reports: Database, publish: Callable[[dict[str, Any]], None],
                 clock: Callable[[], datetime], rng: random.Random, size: Size) -> None:  # fmt: skip
        self.app = app
        self.reports = reports
        self.publish_inbound = publish
        self.clock = clock
        self.rng = rng
        self.size = size
        self.tenants = TENANTS[: size.tenants]
        self.stats: Counter[str] = Counter()
        self.invoiced: set[str] = set()
        self.articles: dict[str, dict[str, str]] = {}  # tenant → category → published article id
        self.priority_decks: dict[str, list[str]] = {}  # tenant → priorities still to deal

    # What every user does: run a command, publish an event.

    def command(self, tenant: str, command: str, who: str, /, **data: Any) -> Any:
        """Run a command as user ``who``; a refusal (someone was quicker) is counted, as in real life."""
        request = CommandRequest(command, tenant, data, caller=f"demo:{who}")
        try:
            result = self.app.execute(request, conflict_retries=3)
        except DomainError:
            self.stats["refused"] += 1
            return None
        self.stats["commands"] += 1
        return result

    def inbound(self, tenant: str, event_type: str, source: str, data: dict[str, Any]) -> None:
        """Another service publishes a CloudEvent to the inbound topic."""
        self.publish_inbound({
            "specversion": "1.0", "id": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            "source": source, "type": event_type, "tenantid": tenant, "time": self.clock().isoformat(),
            "datacontenttype": "application/json", "data": data,
        })  # fmt: skip
        self.stats["inbound"] += 1

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def per_hour(self, per_day: float, hours: int) -> int:
        """How many of something arrive this hour, ``per_day`` on average over ``hours`` working hours."""
        mean = per_day / hours
        return int(mean) + (1 if self.chance(mean - int(mean)) else 0)

    def rows(self, statement: str, tenant: str) -> list[dict[str, Any]]:
        return self.reports.query(statement, {"t": tenant})

    def person(self) -> tuple[str, str]:
        first, last = self.rng.choice(FIRST_NAMES), self.rng.choice(LAST_NAMES)
        return f"{first} {last}", f"{first}.{last}{self.rng.randrange(1000)}@example.com".lower()

    # Day one: campaigns, the knowledge base, the existing customers.

    def set_up(self, tenant: str) -> None:
        for name, channel, budget, _ in CAMPAIGNS:
            created = self.command(tenant, "campaign.create", "marketing", name=name, channel=channel,
                                   budget=str(budget), currency="EUR")  # fmt: skip
            if created is not None:
                self.command(tenant, "campaign.activate", "marketing", campaign_id=str(created.aggregate_id))
        self.articles[tenant] = {}
        for title, category in ARTICLES:
            article = self.command(tenant, "article.create", "kb-editor", title=title, category=category,
                                   body=f"How to solve the most common {category} questions.")  # fmt: skip
            if article is not None and self.command(tenant, "article.publish", "kb-editor",
                                                    article_id=str(article.aggregate_id)):  # fmt: skip
                self.articles[tenant][category] = str(article.aggregate_id)
        for company in self.rng.sample(COMPANIES, 6):
            owner = self.rng.choice(SALES_REPS)
            account = self.command(tenant, "account.create", owner, name=company, industry="technology", owner=owner)
            if account is not None:
                name, email = self.person()
                self.command(tenant, "contact.create", owner, account_id=str(account.aggregate_id), name=name, email=email)

    # Every working hour.

    def hour(self, tenant: str, hours_per_day: int, first_hour_of_week: bool) -> None:
        now = self.clock()
        if first_hour_of_week:
            self.pay_campaigns(tenant)
        self.new_leads(tenant, hours_per_day)
        self.work_leads(tenant, now)
        self.move_deals(tenant)
        self.bill_won_deals(tenant, now)
        self.open_cases(tenant, hours_per_day)
        self.work_cases(tenant)

    def pay_campaigns(self, tenant: str) -> None:
        for row in self.rows("SELECT campaign_id, budget FROM rm_campaigns WHERE tenant = %(t)s AND status = 'active' "
                             "ORDER BY campaign_id", tenant):  # fmt: skip
            weekly = Decimal(str(row["budget"])) / 10 * Decimal(self.rng.randint(60, 140)) / 100
            self.command(tenant, "campaign.record_cost", "marketing", campaign_id=row["campaign_id"],
                         amount=str(weekly.quantize(Decimal("0.01"))), description="weekly spend")  # fmt: skip

    def new_leads(self, tenant: str, hours: int) -> None:
        for _ in range(self.per_hour(self.size.forms_per_day, hours)):
            name, email = self.person()
            self.inbound(tenant, "FormSubmitted", "/web/forms/contact",
                         {"name": name, "email": email, "company": self.rng.choice(COMPANIES)})  # fmt: skip
        campaigns = self.rows("SELECT campaign_id, channel FROM rm_campaigns WHERE tenant = %(t)s AND status = 'active' "
                              "ORDER BY campaign_id", tenant)  # fmt: skip
        sources = {channel: source for _, channel, _, source in CAMPAIGNS}
        for _ in range(self.per_hour(self.size.leads_per_day, hours)):
            name, email = self.person()
            campaign = self.rng.choice(campaigns) if campaigns and self.chance(0.8) else None
            source = sources.get(campaign["channel"], "referral") if campaign else "referral"
            # Webinar leads go to the web team (web-lead-follow-up); the others come with an owner.
            owner = None if source == "webinar" else self.rng.choice(SALES_REPS)
            self.command(tenant, "lead.create", "marketing", name=name, email=email, company=self.rng.choice(COMPANIES),
                         source=source, campaign_id=campaign["campaign_id"] if campaign else None, owner=owner,
                         score=35 if source == "webinar" else 0)  # fmt: skip

    def attend_webinar(self, tenant: str, invited: list[str]) -> None:
        """Most invited leads attend; at least one always does, so that every run scores some (how many leads
        a run has by the webinar depends on how fast the workers bring the read models up to date)."""
        attendees = [lead_id for lead_id in invited if self.chance(0.6)] or invited[:1]
        for lead_id in attendees:
            self.inbound(tenant, "WebinarAttended", "/webinars/attendance",
                         {"lead_id": lead_id, "minutes": self.rng.randint(5, 60), "webinar": "spring-launch"})  # fmt: skip

    def work_leads(self, tenant: str, now: datetime) -> None:
        leads = self.rows("SELECT lead_id, status, owner, source, company, created_at, worked_at FROM rm_leads "
                          "WHERE tenant = %(t)s AND status IN ('new', 'working', 'qualified') ORDER BY lead_id", tenant)  # fmt: skip
        if now.weekday() == 2 and now.hour == 14:  # the weekly webinar
            self.attend_webinar(tenant, [lead["lead_id"] for lead in leads if lead["source"] == "webinar"])
        for lead in leads:
            lead_id, owner = lead["lead_id"], lead["owner"] or "sales"
            if lead["status"] == "new" and lead["owner"]:
                # One lead in ten is forgotten for days: the follow-up process escalates it.
                forgotten = int(lead_id[:2], 16) % 10 == 0
                if (not forgotten and self.chance(0.3)) or _age(now, lead["created_at"]) > timedelta(days=4):
                    self.command(tenant, "lead.work", owner, lead_id=lead_id)
            elif lead["status"] == "working" and _age(now, lead["worked_at"]) > timedelta(days=1) and self.chance(0.2):
                if self.chance(0.55):
                    self.command(tenant, "lead.qualify", owner, lead_id=lead_id)
                else:
                    self.command(tenant, "lead.disqualify", owner, lead_id=lead_id,
                                 reason=self.rng.choice(DISQUALIFY_REASONS))  # fmt: skip
            elif lead["status"] == "qualified" and self.chance(0.4):
                amount = int(round(self.rng.lognormvariate(10, 0.8), -2))  # whole hundreds of euros
                # A company that is already a customer keeps its one account, as in any CRM.
                known = self.reports.query("SELECT account_id FROM rm_accounts WHERE tenant = %(t)s AND name = %(n)s "
                                           "ORDER BY account_id", {"t": tenant, "n": lead["company"]})  # fmt: skip
                self.command(tenant, "lead.convert", owner, lead_id=lead_id,
                             account_id=known[0]["account_id"] if known else None, opportunity={
                    "name": f"{lead['company'] or 'New customer'}: {self.rng.choice(PRODUCTS)}",
                    "amount": str(max(1_000, min(amount, 400_000))),
                    "close_date": (now + timedelta(days=self.rng.randint(20, 120))).date().isoformat(),
                })  # fmt: skip

    def move_deals(self, tenant: str) -> None:
        deals = self.rows("SELECT opportunity_id, stage, owner FROM rm_opportunities WHERE tenant = %(t)s "
                          "AND stage NOT IN ('closed_won', 'closed_lost') ORDER BY opportunity_id", tenant)  # fmt: skip
        for deal in deals:
            deal_id, owner = deal["opportunity_id"], deal["owner"] or "sales"
            slow = int(deal_id[:2], 16) % 5 == 0  # one deal in five sits still long enough to be flagged stale
            if not self.chance(0.01 if slow else 0.12):
                continue
            stage, roll = deal["stage"], self.rng.random()
            if stage == "negotiation" or (stage == "proposal" and roll > 0.6):
                if self.chance(0.55):
                    self.command(tenant, "opportunity.win", owner, opportunity_id=deal_id)
                else:
                    self.command(tenant, "opportunity.lose", owner, opportunity_id=deal_id,
                                 reason=self.rng.choice(LOSS_REASONS))  # fmt: skip
            elif roll < 0.12:
                self.command(tenant, "opportunity.lose", owner, opportunity_id=deal_id, reason=self.rng.choice(LOSS_REASONS))
            else:
                self.command(tenant, "opportunity.advance", owner, opportunity_id=deal_id)

    def close_quarter(self, tenant: str) -> None:
        """The end-of-quarter push: a tenant that has not yet won a deal wins its most advanced open one, and one
        that has not lost one loses the next. How far deals get in a short run depends on how fast the workers
        bring the read models up to date, and the reports should show both outcomes (and invoice-paid run)."""
        closed = {row["stage"] for row in self.rows("SELECT DISTINCT stage FROM rm_opportunities WHERE tenant = %(t)s "
                                                    "AND stage IN ('closed_won', 'closed_lost')", tenant)}  # fmt: skip
        ranked = "CASE stage WHEN 'negotiation' THEN 0 WHEN 'proposal' THEN 1 WHEN 'qualification' THEN 2 ELSE 3 END"
        deals = self.rows("SELECT opportunity_id, owner FROM rm_opportunities WHERE tenant = %(t)s AND stage NOT IN "
                          f"('closed_won', 'closed_lost') ORDER BY {ranked}, opportunity_id", tenant)  # fmt: skip
        for outcome, deal in zip([o for o in ("closed_won", "closed_lost") if o not in closed], deals):
            if outcome == "closed_won":
                self.command(tenant, "opportunity.win", deal["owner"] or "sales", opportunity_id=deal["opportunity_id"])
            else:
                self.command(tenant, "opportunity.lose", deal["owner"] or "sales", opportunity_id=deal["opportunity_id"],
                             reason="project cancelled")  # fmt: skip

    def bill_won_deals(self, tenant: str, now: datetime) -> None:
        """The billing system reports the won deals' invoices as paid (invoice-paid books them)."""
        won = self.rows("SELECT opportunity_id, account_id, amount FROM rm_opportunities WHERE tenant = %(t)s "
                        "AND stage = 'closed_won' ORDER BY opportunity_id", tenant)  # fmt: skip
        for deal in won:
            if deal["opportunity_id"] in self.invoiced or not deal["account_id"]:
                continue
            self.invoiced.add(deal["opportunity_id"])
            self.inbound(tenant, "InvoicePaid", "/billing/invoices", {
                "account_id": deal["account_id"], "invoice_id": f"INV-{deal['opportunity_id'][:8].upper()}",
                "amount": str(Decimal(str(deal["amount"])).quantize(Decimal("0.01"))), "currency": "EUR", "paid_on": now.date().isoformat(),
            })  # fmt: skip

    def open_cases(self, tenant: str, hours: int) -> None:
        accounts = [r["account_id"] for r in self.rows("SELECT account_id FROM rm_accounts WHERE tenant = %(t)s "
                                                       "ORDER BY account_id", tenant)]  # fmt: skip
        if not accounts:
            return
        for _ in range(self.per_hour(self.size.cases_per_day, hours)):
            subject, category = self.rng.choice(CASE_SUBJECTS)
            self.command(tenant, "case.open", "customer", account_id=self.rng.choice(accounts), subject=subject,
                         category=category, priority=self.next_priority(tenant),
                         channel=self.rng.choice(("email", "phone", "web", "chat")), owner=self.rng.choice(AGENTS))  # fmt: skip

    def next_priority(self, tenant: str) -> str:
        """Deal priorities from a shuffled deck in PRIORITY_WEIGHTS' proportions, so every ten cases hold every
        priority: independent draws would leave out the rare urgent one in some runs, and how many draws a run
        makes depends on how fast the workers keep the read models up to date."""
        deck = self.priority_decks.setdefault(tenant, [])
        if not deck:
            deck.extend(priority for priority, weight in PRIORITY_WEIGHTS.items() for _ in range(weight))
            self.rng.shuffle(deck)
        return deck.pop()

    def work_cases(self, tenant: str) -> None:
        cases = self.rows("SELECT case_id, account_id, status, priority, category, owner, first_responded_at "
                          "FROM rm_cases WHERE tenant = %(t)s AND status <> 'closed' ORDER BY case_id", tenant)  # fmt: skip
        for case in cases:
            case_id, agent, priority, status = case["case_id"], case["owner"] or "support", case["priority"], case["status"]
            if status in ("new", "escalated") and not case["first_responded_at"]:
                # Escalated for a late answer or not: the customer still waits for one.
                if self.chance(RESPOND_PER_HOUR[priority]):
                    self.command(tenant, "case.respond", agent, case_id=case_id, message="Thanks, we are on it.")
            elif status in ("working", "escalated"):
                if self.chance(0.01):
                    self.command(tenant, "case.hold", agent, case_id=case_id, reason="waiting for the customer")
                elif self.chance(RESOLVE_PER_HOUR[priority]):
                    self.resolve(tenant, case)
            elif status == "on_hold" and self.chance(0.2):
                self.command(tenant, "case.resume", agent, case_id=case_id)
            elif status == "resolved":
                if self.chance(0.005):
                    self.command(tenant, "case.reopen", agent, case_id=case_id, reason="the problem came back")
                elif self.chance(0.1):
                    self.command(tenant, "case.close", agent, case_id=case_id)

    def resolve(self, tenant: str, case: dict[str, Any]) -> None:
        article = self.articles.get(tenant, {}).get(case["category"]) if self.chance(0.6) else None
        solved = self.command(tenant, "case.resolve", case["owner"] or "support", case_id=case["case_id"],
                              solution="Explained the fix to the customer.", article_id=article)  # fmt: skip
        if solved is not None and case["account_id"]:
            self.command(tenant, "account.record_cost", case["owner"] or "support", account_id=case["account_id"],
                         amount=str(Decimal(self.rng.randint(4_000, 30_000)) / 100), category="support",
                         description=f"case {case['case_id'][:8]}")  # fmt: skip
