"""Logo retention as a time-to-event quantity: a product-limit (Kaplan-Meier) estimate.

A customer acquired five months before the history ends is *censored* at five months: it is
neither retained at twelve nor left out. Each account contributes, per month since it became
a customer, whether it was still at risk at the start of that month and whether it churned
during it. Those counts add up over any set of accounts, so the product-limit estimate of
S(horizon) and its Greenwood variance come out of plain column sums for every segment at
once; for one group the result equals the Kaplan-Meier estimate on durations counted in
whole months (``statsmodels.duration.survfunc.SurvfuncRight`` gives the same figure and is
used for the company baseline's interval).

Pure: arrays in, arrays out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from statsmodels.duration.survfunc import SurvfuncRight

__all__ = [
    "MONTH_DAYS",
    "at_risk_columns",
    "event_columns",
    "km_columns",
    "km_from_sums",
    "km_interval",
    "months_observed",
]

MONTH_DAYS = 365.25 / 12
"""Length of the month used to count durations."""


def at_risk_columns(horizon: int) -> list[str]:
    """Names of the per-month at-risk counts (``km_at_0`` ... )."""
    return [f"km_at_{k}" for k in range(horizon)]


def event_columns(horizon: int) -> list[str]:
    """Names of the per-month churn counts (``km_ev_0`` ... )."""
    return [f"km_ev_{k}" for k in range(horizon)]


def months_observed(
    since: np.ndarray, churned: np.ndarray, as_of: np.datetime64
) -> tuple[np.ndarray, np.ndarray]:
    """Whole months each customer was observed, and whether that ended in churn.

    Args:
        since: Customer start dates (NaT: never a customer).
        churned: Churn dates (NaT: not churned).
        as_of: End of the observed history.

    Returns:
        ``(months, churned_in_view)``; months is -1 for accounts that were never customers.
    """
    event = ~pd.isna(churned) & (churned <= as_of)
    end = np.where(event, churned, as_of)
    days = (end - since).astype("timedelta64[s]").astype(float) / 86_400
    months = np.floor(np.where(np.isnan(days), -1.0, np.maximum(days, 0.0)) / MONTH_DAYS)
    months = np.where(pd.isna(since), -1, months).astype(np.int64)
    return months, event & (months >= 0)


def km_columns(months: np.ndarray, event: np.ndarray, horizon: int) -> pd.DataFrame:
    """Per-account at-risk and churn indicators for each month before ``horizon``."""
    k = np.arange(horizon)
    at_risk = months[:, None] >= k[None, :]
    churn = event[:, None] & (months[:, None] == k[None, :])
    frame = pd.DataFrame(at_risk.astype(np.float64), columns=at_risk_columns(horizon))
    frame[event_columns(horizon)] = churn.astype(np.float64)
    return frame


def km_from_sums(
    at_risk: np.ndarray, events: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Product-limit survival at the horizon, its Greenwood standard error, and the n at start.

    Args:
        at_risk: Summed at-risk counts, shape ``(segments, horizon)``.
        events: Summed churn counts, same shape.

    Returns:
        ``(survival, se, n)``; survival is NaN where nobody was ever at risk.
    """
    at_risk = np.atleast_2d(at_risk)
    events = np.atleast_2d(events)
    with np.errstate(divide="ignore", invalid="ignore"):
        hazard = np.where(at_risk > 0, events / at_risk, 0.0)
        survival = np.prod(1.0 - hazard, axis=1)
        terms = np.where(at_risk > events, events / (at_risk * (at_risk - events)), 0.0)
        se = survival * np.sqrt(terms.sum(axis=1))
    n = at_risk[:, 0]
    # nobody observed up to the horizon: the history cannot say what S(horizon) is
    seen = at_risk[:, -1] > 0
    return np.where(seen, survival, np.nan), np.where(seen, se, np.nan), n


def km_interval(months: np.ndarray, event: np.ndarray, horizon: int) -> tuple[float, float, float]:
    """Kaplan-Meier S(horizon) with a 95% interval (log-log transformed), by statsmodels."""
    from statsmodels.duration.survfunc import SurvfuncRight

    customers = months >= 0
    if customers.sum() < 2:
        return float("nan"), float("nan"), float("nan")
    fit = SurvfuncRight(months[customers].astype(float), event[customers].astype(float))
    times = np.asarray(fit.surv_times)
    before = times < horizon
    probability = float(np.asarray(fit.surv_prob)[before][-1]) if before.any() else 1.0
    if not before.any() or probability in (0.0, 1.0):
        return probability, probability, probability
    low, high = _loglog(fit, before)
    return probability, low, high


def _loglog(fit: SurvfuncRight, before: np.ndarray) -> tuple[float, float]:
    probability = float(np.asarray(fit.surv_prob)[before][-1])
    se = float(np.asarray(fit.surv_prob_se)[before][-1])
    # the log-log interval stays inside (0, 1) where the plain one would not
    theta = np.log(-np.log(probability))
    spread = 1.96 * se / (probability * abs(np.log(probability)))
    return float(np.exp(-np.exp(theta + spread))), float(np.exp(-np.exp(theta - spread)))
