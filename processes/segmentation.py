"""Which segment and usage tier an account is in, from its figures and a ``kind: Segmentation`` document.

Segment rules are data (processes.schema.Segmentation), evaluated here exactly: every figure and threshold
is a Decimal, compared as such (``profit >= 50000.00``), never converted to a float. The first segment whose
every bound holds wins, so a document reads like a Salesforce assignment rule: most specific first, a
catch-all last (the schema insists on one). A figure the account does not have (no usage reported yet)
fits no bound on it: such an account falls through to a later segment, never into one by accident.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from crmflow.processes.loader import Document, load_files
from crmflow.processes.schema import Bounds, Segmentation

SHIPPED = Path(__file__).parent / "definitions" / "segmentation.yaml"


@dataclass(frozen=True)
class Placement:
    segment: str
    why: str  # the bounds that held, in words: "profit 61000.00 ≥ 50000.00; revenue 120000.00 ≥ 100000.00"
    usage_tier: str | None  # None when the document has no tiers


def _holds(value: Decimal | None, bounds: Bounds) -> bool:
    if value is None:
        return False
    if bounds.at_least is not None and value < bounds.at_least:
        return False
    return bounds.below is None or value < bounds.below


def _said(measure: str, value: Decimal, bounds: Bounds) -> str:
    parts = []
    if bounds.at_least is not None:
        parts.append(f"≥ {bounds.at_least}")
    if bounds.below is not None:
        parts.append(f"< {bounds.below}")
    return f"{measure} {value} {' and '.join(parts)}"


def place(segmentation: Segmentation, figures: dict[str, Decimal | None]) -> Placement:
    """The account's segment (the first that fits), why, and its usage tier."""
    for rule in segmentation.segments:
        if all(_holds(figures.get(measure), bounds) for measure, bounds in rule.when.items()):
            reasons = [_said(m, figures[m], b) for m, b in rule.when.items()]  # type: ignore[arg-type]
            why = "; ".join(reasons) if reasons else "no other segment fits"
            return Placement(rule.name, why, usage_tier(segmentation, figures.get("usage")))
    raise AssertionError("the schema makes the last segment a catch-all")  # pragma: no cover


def usage_tier(segmentation: Segmentation, usage: Decimal | None) -> str | None:
    """The first tier (highest floor first) whose floor the usage reaches; no usage counts as 0."""
    for tier in segmentation.usage_tiers:
        if (usage or Decimal(0)) >= tier.at_least:
            return tier.name
    return None


def segmentation_for(tenant: str, deployed: list[Document]) -> Segmentation:
    """The segmentation a tenant's reports use: its own latest deployed one, else the latest platform-wide
    one, else the shipped default (processes/definitions/segmentation.yaml)."""
    found = [d.model for d in deployed if d.kind == "Segmentation"]
    for scope in (tenant, "*"):
        mine = [s for s in found if isinstance(s, Segmentation) and s.tenant == scope]
        if mine:
            return max(mine, key=lambda s: s.version)
    return shipped_segmentation()


def shipped_segmentation() -> Segmentation:
    (document,) = [d for d in load_files([SHIPPED]) if d.kind == "Segmentation"]
    assert isinstance(document.model, Segmentation)
    return document.model
