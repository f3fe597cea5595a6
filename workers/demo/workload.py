"""The demo's generated workload: what marketing, sales and service do with crmflow, hour by hour.

The users act the way people do: each hour they look at their queues (the
read models, exactly as the reports see them) and work some of what is
there. They look once, at the start of the hour, when the demo has let every
worker catch up (workers.demo.run), and the other services' events of the
hour go out after the users' commands: what a user sees and whether a
command is refused never depends on how far the asynchronous workers got.

Marketing runs campaigns and pays for them; web forms and webinar attendance
arrive from other services on the inbound topic; the shipped
processes route, score, escalate and book invoices; sales works, qualifies
and converts leads and moves deals to won or lost; service answers and
resolves cases of every priority, sometimes late enough for the SLA process
to escalate them. Everything random comes from one seeded generator, the ids
the users choose too, and queues are worked in the order of ids that repeat
from run to run (workers.demo.identities): the same seed does the same work.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from crmflow.aggregates.application import CommandRequest, CrmApplication
from crmflow.aggregates.errors import DomainError
from crmflow.projections.db import Database
from crmflow.workers.demo.identities import Identities

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


# What the users can see of a lead the form-to-lead process made, in the order they first take it up.
LEAD_FIRST_SEEN_BY = ("created_at", "name", "company", "source", "owner", "status", "score")


def _age(now: datetime, iso: str | None) -> timedelta:
    return now - datetime.fromisoformat(iso) if iso else timedelta(0)


@dataclass(frozen=True)
class Queues:
    """One tenant's read models as its users see them at the start of an hour, ordered by stable ids."""

    campaigns: list[dict[str, Any]]
    leads: list[dict[str, Any]]
    deals: list[dict[str, Any]]
    won: list[dict[str, Any]]
    cases: list[dict[str, Any]]


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
        self.ids = Identities(rng)
        self.invoiced: set[str] = set()
        self.articles: dict[str, dict[str, str]] = {}  # tenant → category → published article id
        self.priority_decks: dict[str, list[str]] = {}  # tenant → priorities still to deal
        # tenant → company → account id, kept by the generator as it creates them: a company converted
        # twice in one hour keeps one account although the read models show it only in the next hour.
        self.accounts: dict[str, dict[str, str]] = {}
        # Inbound events wait here until the users' commands of the hour are done (send_inbound): the
        # processes they start (scoring, booking payments) then never race a user's command.
        self.outbox: list[dict[str, Any]] = []

    # What every user does: run a command, publish an event.

    def command(self, tenant: str, command: str, who: str, /, **data: Any) -> Any:
        """Run a command as user ``who``; a refusal (the webinar process qualified the lead already) is
        counted, as in real life."""
        request = CommandRequest(command, tenant, data, caller=f"demo:{who}")
        try:
            result = self.app.execute(request, conflict_retries=3)
        except DomainError:
            self.stats["refused"] += 1
            return None
        self.stats["commands"] += 1
        return result

    def create(self, tenant: str, command: str, who: str, id_field: str, /, **data: Any) -> str | None:
        """Create a record under an id from the seeded generator; its stored id, or None when refused."""
        result = self.command(tenant, command, who, **{id_field: self.ids.new()}, **data)
        if result is None:
            return None
        self.ids.choose(str(result.aggregate_id))
        return str(result.aggregate_id)

    def inbound(self, tenant: str, event_type: str, source: str, data: dict[str, Any]) -> None:
        """Another service publishes a CloudEvent to the inbound topic (once the hour's commands are done)."""
        self.outbox.append({
            "specversion": "1.0", "id": self.ids.new(),
            "source": source, "type": event_type, "tenantid": tenant, "time": self.clock().isoformat(),
            "datacontenttype": "application/json", "data": data,
        })  # fmt: skip
        self.stats["inbound"] += 1

    def send_inbound(self) -> None:
        """Publish the inbound events held back so far, in the order they happened."""
        for document in self.outbox:
            self.publish_inbound(document)
        self.outbox.clear()

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
            created = self.create(tenant, "campaign.create", "marketing", "campaign_id", name=name,
                                  channel=channel, budget=str(budget), currency="EUR")  # fmt: skip
            if created is not None:
                self.command(tenant, "campaign.activate", "marketing", campaign_id=created)
        self.articles[tenant] = {}
        for title, category in ARTICLES:
            article = self.create(tenant, "article.create", "kb-editor", "article_id", title=title,
                                  category=category,
                                  body=f"How to solve the most common {category} questions.")  # fmt: skip
            if article is not None and self.command(tenant, "article.publish", "kb-editor",
                                                    article_id=article):  # fmt: skip
                self.articles[tenant][category] = article
        self.accounts[tenant] = {}
        for company in self.rng.sample(COMPANIES, 6):
            owner = self.rng.choice(SALES_REPS)
            account = self.create(tenant, "account.create", owner, "account_id", name=company,
                                  industry="technology", owner=owner)  # fmt: skip
            if account is not None:
                self.accounts[tenant][company] = account
                name, email = self.person()
                self.create(tenant, "contact.create", owner, "contact_id", account_id=account, name=name,
                            email=email)  # fmt: skip

    def queues(self, tenant: str) -> Queues:
        """What the tenant's users see when the hour starts; they act on it, not on what appears meanwhile."""
        open_deals = ("SELECT opportunity_id, account_id, stage, owner, amount FROM rm_opportunities "
                      "WHERE tenant = %(t)s AND stage ")  # fmt: skip
        return Queues(
            campaigns=self.ids.ordered(self.rows(
                "SELECT campaign_id, channel, budget, status FROM rm_campaigns WHERE tenant = %(t)s", tenant),
                "campaign_id"),
            leads=self.ids.ordered(self.rows(
                "SELECT lead_id, status, owner, source, name, company, score, created_at, worked_at "
                "FROM rm_leads WHERE tenant = %(t)s AND status IN ('new', 'working', 'qualified')", tenant),
                "lead_id", first_seen_by=LEAD_FIRST_SEEN_BY),
            deals=self.ids.ordered(self.rows(open_deals + "NOT IN ('closed_won', 'closed_lost')", tenant),
                                   "opportunity_id"),
            won=self.ids.ordered(self.rows(open_deals + "= 'closed_won'", tenant), "opportunity_id"),
            cases=self.ids.ordered(self.rows(
                "SELECT case_id, account_id, status, priority, category, owner, first_responded_at "
                "FROM rm_cases WHERE tenant = %(t)s AND status <> 'closed'", tenant), "case_id"),
        )  # fmt: skip

    # Every working hour.

    def hour(self, tenant: str, hours_per_day: int, first_hour_of_week: bool) -> None:
        now = self.clock()
        seen = self.queues(tenant)
        active = [c for c in seen.campaigns if c["status"] == "active"]
        if first_hour_of_week:
            self.pay_campaigns(tenant, active)
        self.new_leads(tenant, hours_per_day, active)
        self.work_leads(tenant, now, seen.leads)
        self.move_deals(tenant, seen.deals)
        self.bill_won_deals(tenant, now, seen.won)
        self.open_cases(tenant, hours_per_day)
        self.work_cases(tenant, seen.cases)

    def pay_campaigns(self, tenant: str, active: list[dict[str, Any]]) -> None:
        for row in active:
            weekly = Decimal(str(row["budget"])) / 10 * Decimal(self.rng.randint(60, 140)) / 100
            self.command(tenant, "campaign.record_cost", "marketing", campaign_id=row["campaign_id"],
                         amount=str(weekly.quantize(Decimal("0.01"))), description="weekly spend")  # fmt: skip

    def new_leads(self, tenant: str, hours: int, campaigns: list[dict[str, Any]]) -> None:
        for _ in range(self.per_hour(self.size.forms_per_day, hours)):
            name, email = self.person()
            self.inbound(tenant, "FormSubmitted", "/web/forms/contact",
                         {"name": name, "email": email, "company": self.rng.choice(COMPANIES)})  # fmt: skip
        sources = {channel: source for _, channel, _, source in CAMPAIGNS}
        for _ in range(self.per_hour(self.size.leads_per_day, hours)):
            name, email = self.person()
            campaign = self.rng.choice(campaigns) if campaigns and self.chance(0.8) else None
            source = sources.get(campaign["channel"], "referral") if campaign else "referral"
            # Webinar leads go to the web team (web-lead-follow-up); the others come with an owner.
            owner = None if source == "webinar" else self.rng.choice(SALES_REPS)
            self.create(tenant, "lead.create", "marketing", "lead_id", name=name, email=email,
                        company=self.rng.choice(COMPANIES),
                         source=source, campaign_id=campaign["campaign_id"] if campaign else None, owner=owner,
                         score=35 if source == "webinar" else 0)  # fmt: skip

    def attend_webinar(self, tenant: str, invited: list[str]) -> None:
        """Most invited leads attend; at least one always does, so that even a short run scores some."""
        attendees = [lead_id for lead_id in invited if self.chance(0.6)] or invited[:1]
        for lead_id in attendees:
            self.inbound(tenant, "WebinarAttended", "/webinars/attendance",
                         {"lead_id": lead_id, "minutes": self.rng.randint(5, 60), "webinar": "spring-launch"})  # fmt: skip

    def work_leads(self, tenant: str, now: datetime, leads: list[dict[str, Any]]) -> None:
        if now.weekday() == 2 and now.hour == 14:  # the weekly webinar
            self.attend_webinar(tenant, [lead["lead_id"] for lead in leads if lead["source"] == "webinar"])
        for lead in leads:
            lead_id, owner = lead["lead_id"], lead["owner"] or "sales"
            if lead["status"] == "new" and lead["owner"]:
                # One lead in ten is forgotten for days: the follow-up process escalates it.
                forgotten = int(self.ids.of(lead_id)[:2], 16) % 10 == 0
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
                known = self.accounts.setdefault(tenant, {}).get(lead["company"] or lead["name"])
                converted = self.command(tenant, "lead.convert", owner, lead_id=lead_id, account_id=known,
                                         opportunity={
                    "name": f"{lead['company'] or 'New customer'}: {self.rng.choice(PRODUCTS)}",
                    "amount": str(max(1_000, min(amount, 400_000))),
                    "close_date": (now + timedelta(days=self.rng.randint(20, 120))).date().isoformat(),
                })  # fmt: skip
                if converted is not None:
                    self.adopt_conversion(tenant, lead["company"] or lead["name"], converted)

    def adopt_conversion(self, tenant: str, company: str, converted: Any) -> None:
        """The account and deal the conversion made (random ids) get stable ids; a new account is the
        company's."""
        made = next(e["data"] for e in converted.events if e["type"] == "LeadConverted")
        for record in ("account_id", "opportunity_id"):
            if made.get(record) and made[record] not in self.ids.chosen:
                self.ids.adopt(made[record])
        self.accounts[tenant].setdefault(company, made["account_id"])

    def move_deals(self, tenant: str, deals: list[dict[str, Any]]) -> None:
        for deal in deals:
            deal_id, owner = deal["opportunity_id"], deal["owner"] or "sales"
            # One deal in five sits still long enough to be flagged stale.
            slow = int(self.ids.of(deal_id)[:2], 16) % 5 == 0
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
        that has not lost one loses the next, so that even a short run's reports show both outcomes (and
        invoice-paid run)."""
        closed = {row["stage"] for row in self.rows("SELECT DISTINCT stage FROM rm_opportunities WHERE tenant = %(t)s "
                                                    "AND stage IN ('closed_won', 'closed_lost')", tenant)}  # fmt: skip
        rank = {"negotiation": 0, "proposal": 1, "qualification": 2}
        deals = sorted(self.queues(tenant).deals,
                       key=lambda d: (rank.get(d["stage"], 3), self.ids.of(d["opportunity_id"])))
        for outcome, deal in zip([o for o in ("closed_won", "closed_lost") if o not in closed], deals):
            if outcome == "closed_won":
                self.command(tenant, "opportunity.win", deal["owner"] or "sales", opportunity_id=deal["opportunity_id"])
            else:
                self.command(tenant, "opportunity.lose", deal["owner"] or "sales", opportunity_id=deal["opportunity_id"],
                             reason="project cancelled")  # fmt: skip

    def bill_won_deals(self, tenant: str, now: datetime, won: list[dict[str, Any]] | None = None) -> None:
        """The billing system reports the won deals' invoices as paid (invoice-paid books them)."""
        if won is None:
            won = self.queues(tenant).won
        for deal in won:
            if deal["opportunity_id"] in self.invoiced or not deal["account_id"]:
                continue
            self.invoiced.add(deal["opportunity_id"])
            self.inbound(tenant, "InvoicePaid", "/billing/invoices", {
                "account_id": deal["account_id"],
                "invoice_id": f"INV-{self.ids.of(deal['opportunity_id'])[:8].upper()}",
                "amount": str(Decimal(str(deal["amount"])).quantize(Decimal("0.01"))), "currency": "EUR", "paid_on": now.date().isoformat(),
            })  # fmt: skip

    def open_cases(self, tenant: str, hours: int) -> None:
        # The accounts the generator made (set-up and conversions), in the order it made them.
        accounts = list(self.accounts.get(tenant, {}).values())
        if not accounts:
            return
        for _ in range(self.per_hour(self.size.cases_per_day, hours)):
            subject, category = self.rng.choice(CASE_SUBJECTS)
            self.create(tenant, "case.open", "customer", "case_id", account_id=self.rng.choice(accounts),
                        subject=subject,
                         category=category, priority=self.next_priority(tenant),
                         channel=self.rng.choice(("email", "phone", "web", "chat")), owner=self.rng.choice(AGENTS))  # fmt: skip

    def next_priority(self, tenant: str) -> str:
        """Deal priorities from a shuffled deck in PRIORITY_WEIGHTS' proportions, so every ten cases hold every
        priority: independent draws would leave out the rare urgent one in some short runs."""
        deck = self.priority_decks.setdefault(tenant, [])
        if not deck:
            deck.extend(priority for priority, weight in PRIORITY_WEIGHTS.items() for _ in range(weight))
            self.rng.shuffle(deck)
        return deck.pop()

    def work_cases(self, tenant: str, cases: list[dict[str, Any]]) -> None:
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
                         description=f"case {self.ids.of(case['case_id'])[:8]}")  # fmt: skip
