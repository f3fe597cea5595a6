"""Segments are data: a `kind: Segmentation` document places each account, exactly, in the first segment that
fits; a document that could misplace an account is refused on its line."""

from __future__ import annotations

from decimal import Decimal

import pytest

from crmflow.processes.loader import DocumentsInvalid, parse_documents
from crmflow.processes.schema import Segmentation
from crmflow.processes.segmentation import place, segmentation_for, shipped_segmentation

D = Decimal


def figures(**values: str) -> dict[str, Decimal | None]:
    return {name: D(value) for name, value in values.items()}


def problems(text: str) -> list[str]:
    with pytest.raises(DocumentsInvalid) as refused:
        parse_documents(text, "segments.yaml")
    return [f"{i.line}: {i.field}: {i.message}" for i in refused.value.issues]


HEAD = "apiVersion: crmflow/v1\nkind: Segmentation\nname: mine\nversion: 1\n"


def test_a_profitable_big_buyer_is_strategic_and_the_reason_names_both_bounds() -> None:
    placed = place(shipped_segmentation(), figures(profit="61000.00", revenue="120000.00", usage="1500"))
    assert placed.segment == "strategic"
    assert placed.why == "profit 61000.00 ≥ 50000.00; revenue 120000.00 ≥ 100000.00"
    assert placed.usage_tier == "heavy"  # 1500 ≥ 1000


def test_at_least_holds_at_the_threshold_to_the_cent_and_below_does_not() -> None:
    segmentation = shipped_segmentation()
    assert place(segmentation, figures(profit="50000.00", revenue="100000.00")).segment == "strategic"
    # One cent short of the profit bound: not strategic; margin 0.25 ≥ 0.20 and profit ≥ 5000.00: core.
    short = place(segmentation, figures(profit="49999.99", revenue="100000.00", margin="0.25"))
    assert short.segment == "core"
    # `below` is strict: a profit of exactly 0.00 is not at risk; one cent of loss is.
    assert place(segmentation, figures(profit="0.00", revenue="10.00")).segment == "long-tail"
    assert place(segmentation, figures(profit="-0.01", revenue="10.00")).segment == "at-risk"


def test_a_missing_figure_fits_no_bound_and_usage_tiers_count_no_usage_as_zero() -> None:
    segmentation = shipped_segmentation()
    # No profit at all (a new account): no bound on profit holds, so it falls through to the catch-all.
    placed = place(segmentation, {"revenue": D("200000.00"), "profit": None})
    assert (placed.segment, placed.why, placed.usage_tier) == ("long-tail", "no other segment fits", "light")
    assert place(segmentation, figures(usage="100")).usage_tier == "regular"  # 100 ≥ 100
    assert place(segmentation, figures(usage="99.999")).usage_tier == "light"  # 99.999 < 100


def test_a_binary_float_threshold_is_refused_on_its_line_as_inexact() -> None:
    text = HEAD + "segments:\n  - name: big\n    when: {profit: {at_least: 0.1}}\n  - name: rest\n"
    (problem,) = problems(text)
    assert problem.startswith("7: segments[0].when.profit.at_least:")
    assert 'binary float: write the threshold as a quoted decimal, e.g. "0.10"' in problem


def test_segments_that_would_leave_an_account_without_a_segment_or_never_be_chosen_are_refused() -> None:
    no_catch_all = HEAD + "segments:\n  - name: big\n    when: {profit: {at_least: '1'}}\n"
    assert "the last segment (big) must have no `when`" in problems(no_catch_all)[0]
    shadowing = HEAD + "segments:\n  - name: all\n  - name: big\n    when: {profit: {at_least: '1'}}\n  - name: rest\n"
    assert "segment all has no `when` but is not last" in problems(shadowing)[0]
    empty_range = HEAD + "segments:\n  - name: odd\n    when: {profit: {at_least: '5', below: '5'}}\n  - name: rest\n"
    assert "at_least 5 is not below 5: no value fits" in problems(empty_range)[0]
    unknown = HEAD + "segments:\n  - name: odd\n    when: {turnover: {at_least: '5'}}\n  - name: rest\n"
    assert "revenue" in problems(unknown)[0], "the allowed measures are named"


def test_a_tenants_own_segmentation_replaces_the_shipped_one_for_that_tenant_only() -> None:
    acme = parse_documents(
        HEAD.replace("version: 1", "version: 2") + "tenant: acme\nsegments:\n  - name: big\n"
        "    when: {revenue: {at_least: '1000.00'}}\n  - name: small\n", "acme.yaml",
    )  # fmt: skip
    older = parse_documents(HEAD + "tenant: acme\nsegments:\n  - name: everyone\n", "acme-v1.yaml")
    chosen = segmentation_for("acme", acme + older)
    assert isinstance(chosen, Segmentation) and chosen.version == 2
    assert place(chosen, figures(revenue="1000.00")).segment == "big"
    assert segmentation_for("globex", acme + older).name == "value-and-usage", "globex keeps the default"
