"""Rates, means and comparisons come with intervals, and with nothing when n is too small."""

from __future__ import annotations

import numpy as np
import pytest

from icp_sync.estimates import (
    MIN_RATE_N,
    amount_share_estimate,
    compare_rates,
    mean_estimate,
    rate_estimate,
)


def test_a_rate_has_a_wilson_interval_around_it() -> None:
    """30 of 100 gives 0.3 inside an interval narrower than the normal one would be at 0."""
    estimate = rate_estimate(30, 100)
    assert estimate["value"] == 0.3
    assert 0.2 < estimate["low"] < 0.3 < estimate["high"] < 0.4


def test_zero_successes_still_have_an_upper_bound() -> None:
    """Wilson never collapses to 0-0 at zero successes (the Wald interval would)."""
    estimate = rate_estimate(0, 40)
    assert estimate["value"] == 0.0
    assert estimate["low"] == pytest.approx(0.0, abs=1e-9)
    assert estimate["high"] > 0.05


def test_too_few_trials_give_no_rate_and_say_why() -> None:
    """Below the floor the value is null and the note names the count."""
    estimate = rate_estimate(3, MIN_RATE_N - 1)
    assert estimate["value"] is None
    assert str(MIN_RATE_N - 1) in estimate["note"]


def test_a_bootstrap_mean_interval_covers_the_mean_and_is_repeatable() -> None:
    """The same values give the same interval (seeded), and it brackets the sample mean."""
    values = np.random.default_rng(1).lognormal(10, 0.5, 200)
    first, second = mean_estimate(values), mean_estimate(values)
    assert first == second
    assert first["low"] < first["value"] < first["high"]


def test_two_equal_groups_have_a_difference_interval_around_zero() -> None:
    """Same rate in both groups: the Newcombe interval of the difference contains 0."""
    result = compare_rates(20, 100, 40, 200)
    assert result["supported"]
    assert result["low"] < 0 < result["high"]
    assert result["ratio"] == pytest.approx(1.0)


def test_a_real_difference_excludes_zero() -> None:
    """40% against 20% on a few hundred trials: the whole interval is above zero."""
    result = compare_rates(120, 300, 60, 300)
    assert result["low"] > 0
    assert result["p_value"] < 0.001


def test_a_comparison_on_tiny_groups_is_not_made() -> None:
    """Groups under the floor: no numbers, a note instead."""
    result = compare_rates(2, 3, 10, 50)
    assert not result["supported"]
    assert result["difference"] is None
    assert "at least" in result["note"]


def test_an_amount_share_interval_brackets_the_share() -> None:
    """Half the items carrying a third of the amount: about 1/3, interval around it."""
    amounts = np.array([1.0, 2.0] * 50)
    chosen = np.array([True, False] * 50)
    estimate = amount_share_estimate(amounts, chosen)
    assert estimate["value"] == pytest.approx(1 / 3, abs=1e-4)
    assert estimate["low"] < estimate["value"] < estimate["high"]


def test_an_amount_share_on_few_items_is_not_given() -> None:
    """Under the floor: null, with a note."""
    estimate = amount_share_estimate(np.ones(3), np.array([True, False, True]))
    assert estimate["value"] is None
    assert "needed" in estimate["note"]
