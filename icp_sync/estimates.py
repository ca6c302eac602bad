"""Estimates with their uncertainty: rates (Wilson), means (bootstrap), two rates compared.

Each estimate is a plain dict ready for JSON, with ``n`` and, when the data cannot support a
number, ``value: None`` and a ``note`` saying why (too few observations), never a rate from
three deals. The statistics come from statsmodels and scipy, not re-derived formulas.

Pure: numbers in, dicts out; bootstrap resampling is seeded, so the same data give the same
interval.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "MIN_MEAN_N",
    "MIN_RATE_N",
    "amount_share_estimate",
    "compare_rates",
    "mean_estimate",
    "rate_estimate",
]

MIN_RATE_N = 10
"""Below this many trials a rate is not reported (``value`` is null)."""
MIN_MEAN_N = 10
"""Below this many values a mean is not reported."""
_LEVEL = 0.95
_RESAMPLES = 999
_BATCH = 50
"""Resamples drawn at once: bounds the memory of a bootstrap over many deals."""


def _round(value: float, digits: int = 4) -> float | None:
    return round(float(value), digits) if np.isfinite(value) else None


def rate_estimate(successes: int, trials: int) -> dict[str, Any]:
    """A rate with its 95% Wilson interval; ``value`` null below :data:`MIN_RATE_N` trials."""
    from statsmodels.stats.proportion import proportion_confint

    successes, trials = int(successes), int(trials)
    if trials < MIN_RATE_N:
        return {
            "value": None,
            "low": None,
            "high": None,
            "n": trials,
            "successes": successes,
            "note": f"{trials} observed; at least {MIN_RATE_N} needed",
        }
    low, high = proportion_confint(successes, trials, alpha=1 - _LEVEL, method="wilson")
    return {
        "value": _round(successes / trials),
        "low": _round(low),
        "high": _round(high),
        "n": trials,
        "successes": successes,
    }


def mean_estimate(values: pd.Series | np.ndarray, *, seed: int = 0) -> dict[str, Any]:
    """A mean with a 95% percentile-bootstrap interval; null below :data:`MIN_MEAN_N` values."""
    from scipy import stats

    data = np.asarray(pd.Series(values, dtype="float64").dropna(), dtype=float)
    n = len(data)
    if n < MIN_MEAN_N:
        return {
            "value": None,
            "low": None,
            "high": None,
            "n": n,
            "note": f"{n} observed; at least {MIN_MEAN_N} needed",
        }
    if np.ptp(data) == 0:
        return {
            "value": _round(data[0], 2),
            "low": _round(data[0], 2),
            "high": _round(data[0], 2),
            "n": n,
        }
    result = stats.bootstrap(
        (data,),
        np.mean,
        batch=_BATCH,
        n_resamples=_RESAMPLES,
        confidence_level=_LEVEL,
        method="percentile",
        random_state=np.random.default_rng(seed),
    )
    interval = result.confidence_interval
    return {
        "value": _round(float(data.mean()), 2),
        "low": _round(float(interval.low), 2),
        "high": _round(float(interval.high), 2),
        "n": n,
    }


def compare_rates(
    successes_a: int, trials_a: int, successes_b: int, trials_b: int
) -> dict[str, Any]:
    """Rate A against rate B: difference with its 95% interval (Newcombe), ratio, p-value.

    ``supported`` is false (and the numbers null) when either group has fewer than
    :data:`MIN_RATE_N` trials or neither group has any success.
    """
    from statsmodels.stats.proportion import (
        confint_proportions_2indep,
        test_proportions_2indep,
    )

    sa, na, sb, nb = int(successes_a), int(trials_a), int(successes_b), int(trials_b)
    empty = {
        "difference": None,
        "low": None,
        "high": None,
        "ratio": None,
        "p_value": None,
        "supported": False,
    }
    if na < MIN_RATE_N or nb < MIN_RATE_N:
        return empty | {"note": f"groups of {na} and {nb}; at least {MIN_RATE_N} each needed"}
    if sa + sb == 0 or sa + sb == na + nb:
        return empty | {"note": "every trial had the same outcome: nothing to compare"}
    low, high = confint_proportions_2indep(
        sa, na, sb, nb, method="newcomb", compare="diff", alpha=1 - _LEVEL
    )
    test = test_proportions_2indep(sa, na, sb, nb, method="wald", compare="diff")
    rate_b = sb / nb
    return {
        "difference": _round(sa / na - rate_b),
        "low": _round(low),
        "high": _round(high),
        "ratio": _round((sa / na) / rate_b, 3) if rate_b > 0 else None,
        "p_value": float(test.pvalue) if np.isfinite(test.pvalue) else None,
        "supported": True,
    }


def amount_share_estimate(
    amounts: pd.Series | np.ndarray, selected: pd.Series | np.ndarray, *, seed: int = 0
) -> dict[str, Any]:
    """The share of the total amount on the ``selected`` items, with a 95% bootstrap interval
    (items resampled); null below :data:`MIN_RATE_N` items or with no amount at all."""
    from scipy import stats

    values = np.nan_to_num(np.asarray(amounts, dtype=float))
    chosen = np.asarray(selected, dtype=bool)
    n, total = len(values), float(values.sum())
    if n < MIN_RATE_N or total <= 0:
        note = f"{n} observed; at least {MIN_RATE_N} needed" if n < MIN_RATE_N else "no amounts"
        return {"value": None, "low": None, "high": None, "n": n, "note": note}

    def share(v: np.ndarray, c: np.ndarray, axis: int = -1) -> np.ndarray:
        whole = v.sum(axis=axis)
        return np.asarray(
            np.where(whole > 0, (v * c).sum(axis=axis) / np.where(whole > 0, whole, 1), 0.0)
        )

    if np.ptp(chosen.astype(int)) == 0:
        point = float(chosen[0])
        return {"value": point, "low": point, "high": point, "n": n}
    result = stats.bootstrap(
        (values, chosen.astype(float)),
        share,
        paired=True,
        vectorized=True,
        batch=_BATCH,
        n_resamples=_RESAMPLES,
        confidence_level=_LEVEL,
        method="percentile",
        random_state=np.random.default_rng(seed),
    )
    interval = result.confidence_interval
    return {
        "value": _round(float((values * chosen).sum() / total)),
        "low": _round(float(interval.low)),
        "high": _round(float(interval.high)),
        "n": n,
    }
