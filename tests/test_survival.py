"""Kaplan-Meier logo retention from summed monthly counts, checked by hand and by statsmodels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.duration.survfunc import SurvfuncRight

from icp_sync.survival import (
    at_risk_columns,
    event_columns,
    km_columns,
    km_from_sums,
    km_interval,
    months_observed,
)


def test_product_limit_matches_a_hand_computation() -> None:
    """Five customers, one censored early: S(12) = (1 - 1/5) * (1 - 1/3) by hand."""
    months = np.array([2, 3, 5, 14, 20])
    churned = np.array([True, False, True, False, False])
    # month 2: 5 at risk, 1 churns; month 3: one censored; month 5: 3 at risk, 1 churns
    frame = km_columns(months, churned, 12)

    survival, se, n = km_from_sums(
        frame[at_risk_columns(12)].sum().to_numpy()[None, :],
        frame[event_columns(12)].sum().to_numpy()[None, :],
    )

    assert survival[0] == pytest.approx(0.8 * (2 / 3))
    assert n[0] == 5
    greenwood = survival[0] ** 2 * (1 / (5 * 4) + 1 / (3 * 2))
    assert se[0] == pytest.approx(np.sqrt(greenwood))


def test_product_limit_equals_statsmodels_kaplan_meier() -> None:
    """On 2,000 random whole-month durations S(12) equals statsmodels' SurvfuncRight."""
    rng = np.random.default_rng(0)
    months = rng.integers(0, 30, 2_000)
    churned = rng.random(2_000) < 0.4
    frame = km_columns(months, churned, 12)
    fit = SurvfuncRight(months.astype(float), churned.astype(float))
    times, probability = np.asarray(fit.surv_times), np.asarray(fit.surv_prob)

    survival, _, _ = km_from_sums(
        frame[at_risk_columns(12)].sum().to_numpy()[None, :],
        frame[event_columns(12)].sum().to_numpy()[None, :],
    )
    value, low, high = km_interval(months, churned, 12)

    assert survival[0] == pytest.approx(probability[times < 12][-1])
    assert value == pytest.approx(survival[0])
    assert low < value < high


def test_nobody_observed_to_the_horizon_gives_no_estimate() -> None:
    """A history shorter than the horizon cannot say what 12-month retention is."""
    frame = km_columns(np.array([1, 4, 8]), np.array([False, True, False]), 12)

    survival, _, _ = km_from_sums(
        frame[at_risk_columns(12)].sum().to_numpy()[None, :],
        frame[event_columns(12)].sum().to_numpy()[None, :],
    )

    assert np.isnan(survival[0])


def test_months_are_counted_from_the_start_to_churn_or_the_end() -> None:
    """Churn after the as-of date is not seen; prospects get -1."""
    as_of = np.datetime64("2025-01-01", "ns")
    since = pd.to_datetime(["2024-01-01", "2024-06-01", None]).to_numpy(dtype="datetime64[ns]")
    churned = pd.to_datetime(["2024-03-15", "2025-06-01", None]).to_numpy(dtype="datetime64[ns]")

    months, event = months_observed(since, churned, as_of)

    assert months.tolist() == [2, 7, -1]
    assert event.tolist() == [True, False, False]
