"""Empirical-Bayes shrinkage of segment metrics toward the company baseline, and intervals.

Small segments are noisy; their estimates are pulled toward the baseline by how much the
segments truly differ. The prior is estimated per metric and per combination of dimensions
(``industry`` segments have their own spread, ``industry x region`` theirs) from segments
large enough to be tested only: a long tail of tiny segments would otherwise swamp the
between-segment spread with sampling noise and collapse the prior.

- Rates (win rate): beta-binomial, prior mean the baseline, concentration from the method of
  moments; a segment's estimate is ``(x + M p) / (n + M)``.
- Everything else (Kaplan-Meier retention, NRR, cycle, ACV, NPS, adoption): normal-normal
  with the estimate's own standard error; weight ``tau2 / (tau2 + se2)``.

The prior can never silently degenerate: its strength is capped at the test's minimum
segment size (a segment just large enough to be tested keeps at least half of its own
deviation). Where the data put the between-segment variance below that floor, the result
says so (``floors``).

Pure: frames in, frames out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from icp_sync.diagnostics import DataWarning

__all__ = ["RATES", "floor_warnings", "intervals", "shrink"]

RATES = ("win_rate",)
"""Metrics that are proportions of independent trials (beta-binomial prior)."""

_MIN_GROUP = 5
"""Fewest testable segments to estimate a prior for one combination of dimensions."""


def shrink(
    table: pd.DataFrame, baseline: pd.Series, metrics: Sequence[str], min_n: int
) -> list[dict[str, object]]:
    """Add ``<metric>_shrunk`` for every metric to ``table``, in place.

    Args:
        table: Segments with ``rule`` and, per metric, the estimate, ``_n`` and ``_se``.
        baseline: The metrics of all accounts together (the prior means).
        metrics: Metrics to shrink (``clv`` follows retention and is handled by the caller).
        min_n: The test's minimum segment size: the prior comes from segments this large.

    Returns:
        One record per (metric, dimensions) whose prior hit the floor, with the numbers.
    """
    combo = table["rule"].map(lambda r: "|".join(sorted(r))) if len(table) else pd.Series()
    floors: list[dict[str, object]] = []
    for name in metrics:
        prior = float(baseline[name]) if pd.notna(baseline[name]) else np.nan
        estimate = table[name].astype(float)
        n = table[f"{name}_n"].astype(float)
        if name in RATES:
            se2 = prior * (1 - prior) / n.where(n > 0)
        else:
            se2 = table[f"{name}_se"].astype(float) ** 2
        shrunk = estimate.copy()
        usable = estimate.notna() & se2.notna() & np.isfinite(se2) & (se2 > 0)
        if np.isnan(prior) or not usable.any():
            table[f"{name}_shrunk"] = shrunk
            continue
        testable = usable & (n >= min_n)
        pooled = _tau2(estimate[testable], se2[testable], n[testable], prior, min_n)
        for key in combo.unique():
            rows = usable & (combo == key)
            own = testable & (combo == key)
            if own.sum() >= _MIN_GROUP:
                tau2, raw = _tau2(estimate[own], se2[own], n[own], prior, min_n)
            else:
                tau2, raw = pooled
            if raw <= tau2:
                floors.append(
                    {"metric": name, "dimensions": key, "between_variance": raw, "floor": tau2}
                )
            weight = tau2 / (tau2 + se2[rows])
            shrunk[rows] = weight * estimate[rows] + (1 - weight) * prior
        table[f"{name}_shrunk"] = shrunk.where(estimate.notna())
    return floors


def _tau2(
    estimate: pd.Series, se2: pd.Series, n: pd.Series, prior: float, min_n: int
) -> tuple[float, float]:
    """Between-segment variance (method of moments) and the floor it is held to.

    Returns:
        ``(tau2, raw)``: the variance used (at least the floor) and the raw estimate.
    """
    # the floor: a segment of the test's minimum size keeps at least half its deviation
    per_account = float(np.nanmedian(se2 * n)) if len(se2) else prior * (1 - prior)
    if not np.isfinite(per_account) or per_account <= 0:
        per_account = max(prior * (1 - prior), 1e-12)
    floor = per_account / max(min_n, 1)
    if len(estimate) < 2:
        return floor, float("nan")
    raw = float(np.mean((estimate - prior) ** 2) - np.mean(se2))
    return max(raw, floor), raw


def intervals(table: pd.DataFrame) -> None:
    """Add 95% ``_low`` / ``_high`` bounds of every metric to ``table``, in place.

    Win rate: Wilson. Retention: Greenwood, log-log transformed. Others: normal.
    """
    from statsmodels.stats.proportion import proportion_confint

    n = table["win_rate_n"].fillna(0)
    x = (table["win_rate"] * n).round().fillna(0)
    ok = n > 0
    low, high = proportion_confint(x[ok], n[ok], method="wilson")
    table["win_rate_low"] = pd.Series(low, index=table.index[ok])
    table["win_rate_high"] = pd.Series(high, index=table.index[ok])
    survival, se = table["retention"], table["retention_se"]
    inside = (survival > 0) & (survival < 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        theta = np.log(-np.log(survival.where(inside)))
        spread = 1.96 * se / (survival * np.abs(np.log(survival.where(inside))))
    table["retention_low"] = np.exp(-np.exp(theta + spread)).where(inside, survival)
    table["retention_high"] = np.exp(-np.exp(theta - spread)).where(inside, survival)
    for name in ("nrr", "sales_cycle_days", "acv", "nps", "adoption"):
        margin = 1.96 * table[f"{name}_se"]
        table[f"{name}_low"] = table[name] - margin
        table[f"{name}_high"] = table[name] + margin
    table["clv_low"] = np.nan
    table["clv_high"] = np.nan


def floor_warnings(
    floors: Sequence[Mapping[str, object]], metrics: Sequence[str]
) -> list[DataWarning]:
    """One ``shrinkage_floor`` warning per metric whose testable segments showed no spread
    beyond sampling noise for some combination of dimensions. A real spread below the floor
    is no finding: such segments are shrunk less than the data alone would, by design."""
    flat = [f for f in floors if not float(str(f["between_variance"])) > 0]
    return [
        _floor_warning(m, [f for f in flat if f["metric"] == m])
        for m in metrics
        if any(f["metric"] == m for f in flat)
    ]


def _finite_or_none(value: object) -> float | None:
    number = float(str(value))
    return round(number, 8) if np.isfinite(number) else None


def _floor_warning(metric: str, floors: Sequence[Mapping[str, object]]) -> DataWarning:
    dimensions = [str(f["dimensions"]) for f in floors]
    return DataWarning(
        code="shrinkage_floor",
        message=f"{metric}: for {len(dimensions)} combination(s) of dimensions the segments large "
        "enough to test differ no more than sampling noise explains (no between-segment "
        "variance left after the noise); the prior is held at its floor, so a segment of the "
        "minimum tested size keeps half its own deviation",
        numbers={
            "metric": metric,
            "dimensions": dimensions,
            "between_variance": [_finite_or_none(f["between_variance"]) for f in floors],
            "floor": [round(float(str(f["floor"])), 8) for f in floors],
        },
    )
