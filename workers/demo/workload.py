"""The demo's generated workload: what marketing, sales and service do with crmflow, hour by hour.

The users act the way people do: each hour they look at their queues (the
read models, exactly as the reports see them) and work some of what is
there. They look once, at the start of the hour, when the demo has let every
worker catch up (workers.demo.run), and the other services' events of the
hour go out after the users' commands: what a user sees and whether a
command is refused never depends on how far the asynchronous workers got.

Marketing runs campaigns and pays for them; each tenant sells from a small
price list (workers.demo.price_list); web forms (some from a person who
filled one in before: their leads are flagged as duplicates), webinar
attendance, paid invoices and the usage of subscriptions arrive from other
services on the inbound topic; the shipped processes route, score, escalate
and book invoices; sales works leads, schedules and makes a follow-up call for
each (some are forgotten and go overdue), qualifies a lead naming its call,
merges some flagged duplicates, converts leads into deals whose amounts are
the sum of their product lines, and moves deals to won (the lines become the
account's assets) or lost; service answers cases (with the article a case was
suggested, now and then) and resolves cases of every priority, sometimes late
enough for the SLA process to escalate them. Everything random comes from one
seeded generator, the ids the users choose too, and queues are worked in the
order of ids that repeat from run to run (workers.demo.identities): the same
seed does the same work.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from crmflow.aggregates.application import CommandRequest, CrmApplication
from crmflow.aggregates.errors import DomainError
from crmflow.projections.db import Database
from crmflow.workers.demo.identities import Identities
from crmflow.workers.demo.price_list import (
    OFFERS,
    PRICE_LIST,
    deal_amount,
    deal_lines,
    tenant_prices,
    weekly_usage,
)

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
LOSS_REASONS = ("price", "chose a competitor", "no budget this year", "project cancelled")
DISQUALIFY_REASONS = ("student", "no budget", "wrong market", "duplicate")
CALL_OUTCOMES = ("interested: wants a proposal", "asked for a demo next week", "no answer, left a voicemail",
                 "not the decision maker: got the right contact", "call back next quarter")  # fmt: skip
REPEAT_FORM_SHARE = 0.25  # of the web forms: someone who filled one in before, again (a duplicate lead)
RECENT_FORMS = 5  # ... one of the last five people who did


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
    calls: list[dict[str, Any]]  # the follow-up calls about leads, open or done
    flags: list[dict[str, Any]]  # leads flagged as duplicates (rm_duplicates), in the store's order


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
        self.prices: dict[str, dict[str, Decimal]] = {}  # tenant → product code → list price
        # tenant → (when, (name, email, phone, company)) of each person's first web form: some fill in another.
        self.form_people: dict[str, list[tuple[datetime, tuple[str, str, str | None, str]]]] = {}
        # case id → the articles case.open suggested (CaseRepliesSuggested), as the agent sees them on the case.
        self.suggested: dict[str, list[str]] = {}

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
        result = self.create_result(tenant, command, who, id_field, **data)
        return None if result is None else str(result.aggregate_id)

    def create_result(self, tenant: str, command: str, who: str, id_field: str, /, **data: Any) -> Any:
        """As create, but the command's whole result (its events), or None when refused."""
        result = self.command(tenant, command, who, **{id_field: self.ids.new()}, **data)
        if result is not None:
            self.ids.choose(str(result.aggregate_id))
        return result

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

    def phone(self) -> str:
        """A Berlin number, written as people do (duplicate matching compares it in E.164)."""
        number = str(self.rng.randrange(10**7, 10**8))
        return f"+49 30 {number[:4]} {number[4:]}"

    # Day one: campaigns, the knowledge base, the existing customers.

    def set_up(self, tenant: str) -> None:
        self.prices[tenant] = {}
        for offer, price in zip(PRICE_LIST, tenant_prices(self.rng).values()):
            if self.command(tenant, "product.create", "sales-ops", code=offer.code, name=offer.name,
                            family=offer.family, list_price=str(price), currency="EUR", recurring=offer.recurring,
                            term_months=offer.term_months) is not None:  # fmt: skip
                self.prices[tenant][offer.code] = price
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
            calls=self.ids.ordered(self.rows(
                "SELECT activity_id, related_id, owner, status FROM rm_activities WHERE tenant = %(t)s "
                "AND kind = 'call' AND related_kind = 'lead' AND status IN ('open', 'completed')", tenant),
                "activity_id"),
            flags=self.rows("SELECT record_id, existing_id FROM rm_duplicates WHERE tenant = %(t)s "
                            "AND record = 'lead' AND action = 'flagged'", tenant),
        )  # fmt: skip

    # Every working hour.

    def hour(self, tenant: str, hours_per_day: int, first_hour_of_week: bool) -> None:
        now = self.clock()
        seen = self.queues(tenant)
        active = [c for c in seen.campaigns if c["status"] == "active"]
        if first_hour_of_week:
            self.pay_campaigns(tenant, active)
            self.report_usage(tenant, (now - timedelta(days=7)).date(), (now - timedelta(days=1)).date())
        self.new_leads(tenant, hours_per_day, active)
        merged = self.merge_duplicates(tenant, seen.leads, seen.flags)
        self.make_calls(tenant, seen.calls)
        self.work_leads(tenant, now, [lead for lead in seen.leads if lead["lead_id"] not in merged], seen.calls)
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
            self.inbound(tenant, "FormSubmitted", "/web/forms/contact", self.web_form(tenant))
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

    def web_form(self, tenant: str) -> dict[str, Any]:
        """A contact form: a new person (half give a phone number), or one in four someone who filled one in
        recently (an hour or more before), again: with the same e-mail, or (having given a phone) with another
        address and the same phone. The intake's form-to-lead lead is then flagged (the tenant's default
        duplicate rules: e-mail, phone) while the first one is open."""
        now, people = self.clock(), self.form_people.setdefault(tenant, [])
        # Someone among the last few to write in (not this hour: see merge_duplicates), whose lead is likely open.
        earlier = [person for at, person in people if at < now][-RECENT_FORMS:]
        if earlier and self.chance(REPEAT_FORM_SHARE):
            name, email, phone, company = self.rng.choice(earlier)
            if phone is not None and self.chance(0.5):
                email = self.person()[1]  # another address, the same phone
        else:
            (name, email), phone = self.person(), self.phone() if self.chance(0.5) else None
            company = self.rng.choice(COMPANIES)
            people.append((now, (name, email, phone, company)))
        return {"name": name, "email": email, "company": company, **({"phone": phone} if phone else {})}

    def merge_duplicates(self, tenant: str, leads: list[dict[str, Any]], flags: list[dict[str, Any]]) -> set[str]:
        """Sales merges a flagged lead into the one it repeats, now and then; one in three is left alone (the
        duplicates report's open flags). Only pairs of leads still open: the users know those by stable ids
        (a repeated form is a later hour's, so the two never look alike when stand-ins are given). The leads
        merged away this hour."""
        open_leads = {lead["lead_id"]: lead for lead in leads}
        pairs = sorted({(f["record_id"], f["existing_id"]) for f in flags
                        if f["record_id"] in open_leads and f["existing_id"] in open_leads},
                       key=lambda pair: (self.ids.of(pair[0]), self.ids.of(pair[1])))  # fmt: skip
        merged: set[str] = set()
        for duplicate, kept in pairs:
            if duplicate in merged or kept in merged or int(self.ids.of(duplicate)[:2], 16) % 3 == 0:
                continue
            if self.chance(0.3):
                who = open_leads[duplicate]["owner"] or open_leads[kept]["owner"] or "sales"
                if self.command(tenant, "lead.merge", who, lead_id=duplicate, into_lead_id=kept) is not None:
                    merged.add(duplicate)
        return merged

    def schedule_call(self, tenant: str, lead: dict[str, Any], owner: str, now: datetime) -> None:
        """The follow-up call a rep books on starting to work a lead: due the next working day, same hour."""
        due = now + timedelta(days=1)
        while due.weekday() >= 5:
            due += timedelta(days=1)
        self.create(tenant, "activity.schedule", owner, "activity_id", kind="call", related_kind="lead",
                    related_id=lead["lead_id"], owner=owner, subject=f"Follow-up call: {lead['name']}",
                    due_at=due.isoformat())  # fmt: skip

    def make_calls(self, tenant: str, calls: list[dict[str, Any]]) -> None:
        """Reps make their open calls, most within hours; one in six is forgotten and goes overdue."""
        for call in calls:
            if call["status"] != "open" or int(self.ids.of(call["activity_id"])[:2], 16) % 6 == 0:
                continue
            if self.chance(0.3):
                self.command(tenant, "activity.complete", call["owner"], activity_id=call["activity_id"],
                             outcome=self.rng.choice(CALL_OUTCOMES))  # fmt: skip

    def attend_webinar(self, tenant: str, invited: list[str]) -> None:
        """Most invited leads attend; at least one always does, so that even a short run scores some."""
        attendees = [lead_id for lead_id in invited if self.chance(0.6)] or invited[:1]
        for lead_id in attendees:
            self.inbound(tenant, "WebinarAttended", "/webinars/attendance",
                         {"lead_id": lead_id, "minutes": self.rng.randint(5, 60), "webinar": "spring-launch"})  # fmt: skip

    def work_leads(self, tenant: str, now: datetime, leads: list[dict[str, Any]], calls: list[dict[str, Any]]
                   ) -> None:  # fmt: skip
        if now.weekday() == 2 and now.hour == 14:  # the weekly webinar
            self.attend_webinar(tenant, [lead["lead_id"] for lead in leads if lead["source"] == "webinar"])
        called = {call["related_id"]: call["activity_id"] for call in calls if call["status"] == "completed"}
        for lead in leads:
            lead_id, owner = lead["lead_id"], lead["owner"] or "sales"
            if lead["status"] == "new" and lead["owner"]:
                # One lead in ten is forgotten for days: the follow-up process escalates it.
                forgotten = int(self.ids.of(lead_id)[:2], 16) % 10 == 0
                if (not forgotten and self.chance(0.3)) or _age(now, lead["created_at"]) > timedelta(days=4):
                    if self.command(tenant, "lead.work", owner, lead_id=lead_id) is not None:
                        self.schedule_call(tenant, lead, owner, now)
            elif lead["status"] == "working" and _age(now, lead["worked_at"]) > timedelta(days=1) and self.chance(0.2):
                if self.chance(0.55):
                    # The call that was made justifies it (a forgotten call's lead is qualified on its own).
                    self.command(tenant, "lead.qualify", owner, lead_id=lead_id, activity_id=called.get(lead_id))
                else:
                    self.command(tenant, "lead.disqualify", owner, lead_id=lead_id,
                                 reason=self.rng.choice(DISQUALIFY_REASONS))  # fmt: skip
            elif lead["status"] == "qualified" and self.chance(0.4):
                self.convert(tenant, now, lead, owner)

    def convert(self, tenant: str, now: datetime, lead: dict[str, Any], owner: str) -> None:
        """Convert a qualified lead into a deal, then put its product lines on it: the deal is worth their sum
        (given on the conversion too, so the deal is never shown at another amount)."""
        lines = deal_lines(self.rng, self.prices[tenant])
        # A company that is already a customer keeps its one account, as in any CRM.
        known = self.accounts.setdefault(tenant, {}).get(lead["company"] or lead["name"])
        converted = self.command(tenant, "lead.convert", owner, lead_id=lead["lead_id"], account_id=known,
                                 opportunity={
            "name": f"{lead['company'] or 'New customer'}: {OFFERS[lines[0].code].name}",
            "amount": str(deal_amount(lines)),
            "close_date": (now + timedelta(days=self.rng.randint(20, 120))).date().isoformat(),
        })  # fmt: skip
        if converted is None:
            return
        made = self.adopt_conversion(tenant, lead["company"] or lead["name"], converted)
        for line in lines:
            self.command(tenant, "opportunity.add_line", owner, opportunity_id=made["opportunity_id"],
                         product_code=line.code, quantity=str(line.quantity), discount=str(line.discount))  # fmt: skip

    def adopt_conversion(self, tenant: str, company: str, converted: Any) -> dict[str, Any]:
        """The account and deal the conversion made (random ids) get stable ids; a new account is the
        company's. What the conversion made."""
        made = next(e["data"] for e in converted.events if e["type"] == "LeadConverted")
        for record in ("account_id", "opportunity_id"):
            if made.get(record) and made[record] not in self.ids.chosen:
                self.ids.adopt(made[record])
        self.accounts[tenant].setdefault(company, made["account_id"])
        return made  # type: ignore[no-any-return]

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

    def report_usage(self, tenant: str, start: date, end: date) -> None:
        """The billing service reports what each account used of its subscriptions from ``start`` to ``end``
        (UsageReported): one event per account and recurring product it owns (its assets, as won deals'
        lines became), in the order of the accounts' stable ids."""
        owned: dict[tuple[str, str], Decimal] = {}
        for asset in self.rows("SELECT account_id, product_code, quantity, start_date FROM rm_assets "
                               "WHERE tenant = %(t)s AND recurring = 1", tenant):  # fmt: skip
            if date.fromisoformat(str(asset["start_date"])[:10]) <= end:
                key = (asset["account_id"], asset["product_code"])
                owned[key] = owned.get(key, Decimal(0)) + Decimal(str(asset["quantity"]))
        for (account_id, code), quantity in sorted(owned.items(), key=lambda a: (self.ids.of(a[0][0]), a[0][1])):
            used = weekly_usage(self.rng, code, quantity)
            self.inbound(tenant, "UsageReported", "/billing/usage", {
                "account_id": account_id, "product_code": code, "quantity": str(used), "unit": OFFERS[code].unit,
                "period_start": start.isoformat(), "period_end": end.isoformat(),
            })  # fmt: skip

    def report_usage_to_date(self, tenant: str, now: datetime) -> None:
        """When the books close: the usage of the week so far (Monday's report covered the weeks before)."""
        today = now.date()
        self.report_usage(tenant, today - timedelta(days=today.weekday()), today)

    def open_cases(self, tenant: str, hours: int) -> None:
        # The accounts the generator made (set-up and conversions), in the order it made them.
        accounts = list(self.accounts.get(tenant, {}).values())
        if not accounts:
            return
        for _ in range(self.per_hour(self.size.cases_per_day, hours)):
            subject, category = self.rng.choice(CASE_SUBJECTS)
            opened = self.create_result(tenant, "case.open", "customer", "case_id",
                                        account_id=self.rng.choice(accounts), subject=subject, category=category,
                                        priority=self.next_priority(tenant),
                                        channel=self.rng.choice(("email", "phone", "web", "chat")),
                                        owner=self.rng.choice(AGENTS))  # fmt: skip
            if opened is None:
                continue
            # Quick replies: the articles that resolved most cases like it, as the case shows them to its agent.
            for event in opened.events:
                if event["type"] == "CaseRepliesSuggested":
                    self.suggested[str(opened.aggregate_id)] = [str(a) for a in event["data"]["article_ids"]]

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
                    suggested = self.suggested.get(case_id)
                    if suggested and self.chance(0.6):  # a quick reply: the best suggested article
                        self.command(tenant, "case.respond", agent, case_id=case_id, article_id=suggested[0],
                                     message="This article walks you through it; tell us if it does not help.")  # fmt: skip
                    else:
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
