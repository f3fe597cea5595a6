"""The arithmetic behind every report figure: exact decimals, nearest-rank percentiles."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal as D

from crmflow.projections.figures import hours, iso, mean, money, percentile, ratio, weighted


def test_the_median_of_an_even_sample_is_the_lower_middle_value_that_occurred() -> None:
    # Nearest rank: ⌈0.5 × 4⌉ = 2nd of 2, 4, 6, 8 → 4 (the mean of the middle two would be 5).
    assert percentile([D(8), D(2), D(6), D(4)], "0.5") == D("4.00")
    # p90: ⌈0.9 × 4⌉ = ⌈3.6⌉ = 4th → 8.
    assert percentile([D(8), D(2), D(6), D(4)], "0.9") == D("8.00")


def test_the_median_of_an_odd_sample_is_the_middle_value() -> None:
    # ⌈0.5 × 3⌉ = 2nd of 4, 5, 64.
    assert percentile([D(64), D(4), D(5)], "0.5") == D("5.00")
    assert percentile([D("7.125")], "0.9") == D("7.13"), "one value is every percentile, rounded half-up"
    assert percentile([], "0.5") is None


def test_money_is_rounded_half_up_to_the_cent_after_summing() -> None:
    assert money("99999.995") == D("100000.00")
    assert money(None) == D("0.00")
    # Two deals of 0.05 at 10 %: 0.005 + 0.005 = 0.01 weighted; rounded one by one they would be 0.02.
    assert weighted(D("0.05") * 10 + D("0.05") * 10) == D("0.01")


def test_ratios_and_means_are_decimals_and_an_empty_base_has_none() -> None:
    assert ratio(2, 3) == D("0.6667")
    assert ratio(1, 0) is None
    assert mean([D("33.33"), D("33.33"), D("33.34")]) == D("33.33")
    assert mean([]) is None


def test_hours_are_exact_across_text_and_timestamptz_values() -> None:
    opened = "2026-03-06T14:30:00+00:00"
    answered = datetime(2026, 3, 6, 14, 50, tzinfo=timezone.utc)
    # 20 minutes = 1,200 s / 3,600 s per hour, in decimal arithmetic; shown as 0.33.
    assert hours(opened, answered) == D(1200) / D(3600)
    assert percentile([hours(opened, answered)], "0.5") == D("0.33")
    assert hours(None, answered) is None
    assert iso(answered) == "2026-03-06T14:50:00+00:00"
