"""Read models of the price list, opportunities' line items, accounts' assets and reported usage.

Registered with the other handlers (projections.handlers imports this module).
Quantities, prices and discounts are exact decimals of any scale (``{decimal}``
in projections.tables); a line's amount is money, in cents. A line event also
carries the opportunity's new amount (the sum of its lines), written to
rm_opportunities so that the pipeline and forecast reports count the lines.

Usage is an inbound event (aggregates/usage.py): its CloudEvent ``id`` is the
producer's, unique only with its ``source``, so the row's key is (tenant,
source, id) and the handler is idempotent (written once however often it runs,
not recorded in ``rm_seen``, whose ids are crmflow's).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID

from crmflow.aggregates.errors import InvalidValueError
from crmflow.aggregates.ids import stored_candidates
from crmflow.aggregates.usage import USAGE_REPORTED, usage_of
from crmflow.projections.db import Cursor
from crmflow.projections.handlers import IDEMPOTENT, _insert, _money, _set, on


def _decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _flag(value: Any) -> int:
    return int(bool(value))


# Products.

@on("ProductCreated")
def product_created(cur: Cursor, p: str, e: dict[str, Any]) -> None:
    d = e["data"]
    _insert(cur, p, "products", {"tenant": e["tenantid"], "product_id": e["subject"], "code": d["code"], "name": d["name"],
                                 "family": d.get("family"), "list_price": _decimal(d["list_price"]),
                                 "currency": d["currency"], "recurring": _flag(d["recurring"]),
                                 "term_months": d.get("term_months"), "active": 1, "created_at": e["time"],
                                 "updated_at": e["time"]})  # fmt: skip


@on("ProductUpdated")
def product_updated(cur: Cursor, p: str, e: dict[str, Any]) -> None:
    d = e["data"]
    _set(cur, p, "products", "product_id", e, name=d["name"], family=d.get("family"),
         list_price=_decimal(d["list_price"]), updated_at=e["time"])  # fmt: skip


@on("ProductDeactivated", "ProductActivated")
def product_status(cur: Cursor, p: str, e: dict[str, Any]) -> None:
    _set(cur, p, "products", "product_id", e, active=_flag(e["data"]["status"] == "active"), updated_at=e["time"])


# Line items (events of the Opportunity: they count as activity on its account).

@on("OpportunityLineAdded")
def opportunity_line_added(cur: Cursor, p: str, e: dict[str, Any]) -> None:
    d = e["data"]
    _insert(cur, p, "opportunity_lines", {"tenant": e["tenantid"], "line_id": d["line_id"], "opportunity_id": e["subject"],
                                          "product_code": d["product_code"], "product_name": d.get("product_name"),
                                          "quantity": _decimal(d["quantity"]), "unit_price": _decimal(d["unit_price"]),
                                          "discount": _decimal(d["discount"]), "amount": _money(d["line_amount"]),
                                          "currency": d["currency"], "recurring": _flag(d["recurring"]),
                                          "term_months": d.get("term_months"), "added_at": e["time"]})  # fmt: skip
    _set(cur, p, "opportunities", "opportunity_id", e, amount=_money(d["amount"]))


@on("OpportunityLineRemoved")
def opportunity_line_removed(cur: Cursor, p: str, e: dict[str, Any]) -> None:
    cur.execute(f"DELETE FROM {p}opportunity_lines WHERE line_id = %(line)s AND tenant = %(tenant)s",
                {"line": e["data"]["line_id"], "tenant": e["tenantid"]})  # fmt: skip
    _set(cur, p, "opportunities", "opportunity_id", e, amount=_money(e["data"]["amount"]))


# Assets.

@on("AccountAssetAcquired")
def account_asset_acquired(cur: Cursor, p: str, e: dict[str, Any]) -> None:
    d = e["data"]
    _insert(cur, p, "assets", {"tenant": e["tenantid"], "asset_id": d["asset_id"], "account_id": e["subject"],
                               "opportunity_id": d["opportunity_id"], "line_id": d["line_id"],
                               "product_code": d["product_code"], "quantity": _decimal(d["quantity"]),
                               "start_date": d["start_date"], "recurring": _flag(d["recurring"]),
                               "term_months": d.get("term_months"), "renewal_date": d.get("renewal_date"),
                               "acquired_at": e["time"]})  # fmt: skip


# Usage (an inbound event, as its producer sent it).

@on(USAGE_REPORTED, activity=False)
def usage_reported(cur: Cursor, p: str, e: dict[str, Any]) -> bool:
    try:
        usage = usage_of(e.get("data"))
    except InvalidValueError:
        return False  # stored before crmflow read UsageReported, and not what it reads: no row
    row = {"tenant": e["tenantid"], "source": str(e["source"]), "event_id": str(e["id"]),
           "account_id": _stored_account_id(cur, p, e["tenantid"], usage.account_id), "product_code": usage.product_code, "quantity": usage.quantity,
           "period_start": usage.period_start.isoformat(), "period_end": usage.period_end.isoformat(),
           "reported_time": e.get("time")}  # fmt: skip
    columns = ", ".join(row)
    changed = cur.execute(f"INSERT INTO {p}usage ({columns}) VALUES ({', '.join(f'%({c})s' for c in row)}) "
                          "ON CONFLICT DO NOTHING", row)  # fmt: skip
    return changed > 0


def _stored_account_id(cur: Cursor, p: str, tenant: str, named: UUID) -> str:
    """The account's id as rm_accounts has it: billing may name it by the id the tenant chose (aggregates/ids.py)."""
    candidates = [str(c) for c in stored_candidates(tenant, named)]
    found = {r["account_id"] for r in cur.rows(f"SELECT account_id FROM {p}accounts WHERE tenant = %(tenant)s "
                                               "AND account_id IN (%(given)s, %(scoped)s)",
                                               {"tenant": tenant, "given": candidates[0], "scoped": candidates[1]})}  # fmt: skip
    return next((c for c in candidates if c in found), candidates[0])


IDEMPOTENT.add(USAGE_REPORTED)
