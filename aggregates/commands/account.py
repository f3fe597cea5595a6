"""account.* and contact.* commands."""

from __future__ import annotations

from datetime import date
from uuid import UUID

from pydantic import Field

from crmflow.aggregates.account import Account
from crmflow.aggregates.commanding import CommandContext, Payload, command
from crmflow.aggregates.commands.fields import Currency, Email, Money, Name, Owner, Text
from crmflow.aggregates.contact import Contact
from crmflow.aggregates.duplicates import detect_contact_duplicates


class CreateAccount(Payload):
    account_id: UUID | None = Field(None, description="choose the id (else one is made)")
    name: Name
    industry: Name | None = None
    website: Name | None = None
    owner: Owner | None = None
    currency: Currency | None = Field(
        None, description="the currency the account's books are kept in (else its first payment's or cost's)"
    )


class RecordPayment(Payload):
    account_id: UUID
    invoice_id: Name
    amount: Money
    currency: Currency | None = Field(None, description="the account's currency (EUR for an account without one)")
    paid_on: date


class RecordServiceCost(Payload):
    account_id: UUID
    amount: Money
    currency: Currency | None = Field(None, description="the account's currency (EUR for an account without one)")
    category: Name = "support"
    description: Text | None = None


class AssignAccount(Payload):
    account_id: UUID
    owner: Owner


class CreateContact(Payload):
    contact_id: UUID | None = Field(None, description="choose the id (else one is made)")
    account_id: UUID
    name: Name
    email: Email | None = None
    phone: Name | None = None
    title: Name | None = None


class UpdateContact(Payload):
    contact_id: UUID
    email: Email | None = None
    phone: Name | None = None
    title: Name | None = None


@command("account.create", CreateAccount, emits=("AccountCreated",))
def create_account(ctx: CommandContext, p: CreateAccount) -> Account:
    """Create a customer account."""
    account_id = ctx.claim_id(Account, p.account_id)
    return ctx.add(
        Account.construct(
            account_id, tenant_id=ctx.tenant, name=p.name, industry=p.industry,
            website=p.website, owner=p.owner, currency=p.currency,
        )
    )  # fmt: skip


@command("account.record_payment", RecordPayment, emits=("AccountPaymentRecorded",))
def record_payment(ctx: CommandContext, p: RecordPayment) -> Account:
    """Record a paid invoice against the account (revenue)."""
    account = ctx.load(Account, p.account_id)
    account.record_payment(p.invoice_id, p.amount, p.currency, p.paid_on)
    return account


@command("account.record_cost", RecordServiceCost, emits=("AccountCostRecorded",))
def record_service_cost(ctx: CommandContext, p: RecordServiceCost) -> Account:
    """Record a cost of serving the account (support, onboarding, ...)."""
    account = ctx.load(Account, p.account_id)
    account.record_cost(p.amount, p.category, p.description, p.currency)
    return account


@command("account.assign", AssignAccount, emits=("AccountAssigned",))
def assign_account(ctx: CommandContext, p: AssignAccount) -> Account:
    """Give the account a new owner."""
    account = ctx.load(Account, p.account_id)
    account.assign(p.owner)
    return account


@command("contact.create", CreateContact, emits=("ContactCreated", "ContactDuplicateFlagged"))
def create_contact(ctx: CommandContext, p: CreateContact) -> Contact:
    """Create a contact at an account of the tenant; flagged where it matches one (the tenant's duplicate rules)."""
    contact_id = ctx.claim_id(Contact, p.contact_id)
    account_id = ctx.reference(Account, p.account_id)
    contact = ctx.add(
        Contact.construct(
            contact_id, tenant_id=ctx.tenant, account_id=account_id, name=p.name,
            email=p.email, phone=p.phone, title=p.title,
        )
    )  # fmt: skip
    # Last, once nothing can refuse the command. A contact's company is its account's name.
    detect_contact_duplicates(ctx, contact, lambda: ctx.load(Account, contact.account_id).name)
    return contact


@command("contact.update", UpdateContact, emits=("ContactUpdated",))
def update_contact(ctx: CommandContext, p: UpdateContact) -> Contact:
    """Change a contact's e-mail, phone or title."""
    contact = ctx.load(Contact, p.contact_id)
    contact.update(p.email, p.phone, p.title)
    return contact
