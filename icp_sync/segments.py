"""Segments of the customer base: dimensions, and the evidence of how each segment performs.

A segment is a rule over one or more dimensions (``{"industry": "Healthcare",
"employees_band": "200-999"}``). For every segment up to the configured depth this module
measures the lifecycle metrics (win rate, logo retention, NRR, CLV, sales cycle, ACV, NPS,
adoption) with confidence intervals, shrinks small segments toward the company baseline
(empirical Bayes), and tests the segment's composite outcome against the rest of the
accounts (Welch's t-test on a per-account composite score, so the correlation between
metrics is accounted for). Multiple-comparison control happens where segments are chosen
(:mod:`icp_sync.icp`).

Pure: frames in, frames out.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from icp_sync.config import SegmentsConfig
from icp_sync.model import DealType

__all__ = [
    "METRICS",
    "Evidence",
    "EvidenceSettings",
    "band_labels",
    "composite_outcome",
    "dimension_summary",
    "evidence_table",
    "members",
    "subset_metrics",
    "test_subset",
    "with_dimensions",
]

METRICS = (
    "win_rate",
    "retention",
    "nrr",
    "clv",
    "sales_cycle_days",
    "acv",
    "nps",
    "adoption",
)
"""Every lifecycle metric measured per segment."""

_LOWER_IS_BETTER = frozenset({"sales_cycle_days"})


def _compact(value: float) -> str:
    for divisor, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= divisor:
            return f"{value / divisor:g}{suffix}"
    return f"{value:g}"


def band_labels(bounds: Sequence[float], *, compact: bool = False) -> list[str]:
    """Labels for bands starting at ``bounds``: ``[1, 50, 200]`` -> ``1-49, 50-199, 200+``.

    Integer bands (employees) end one below the next bound; ``compact`` bands (money) are
    half-open and written with K/M/B: ``[0, 1e6, 1e7]`` -> ``0-1M, 1M-10M, 10M+``.
    """
    labels = []
    for low, high in zip(bounds, [*bounds[1:], None], strict=True):
        if compact:
            labels.append(
                f"{_compact(low)}+" if high is None else f"{_compact(low)}-{_compact(high)}"
            )
        else:
            labels.append(f"{low:g}+" if high is None else f"{low:g}-{high - 1:g}")
    return labels


def _band(values: pd.Series, bounds: Sequence[float], *, compact: bool) -> pd.Series:
    labels = band_labels(bounds, compact=compact)
    edges = [*bounds, np.inf]
    banded = pd.cut(values, bins=edges, labels=labels, right=False)
    return banded.astype("string")


def with_dimensions(accounts: pd.DataFrame, config: SegmentsConfig) -> pd.DataFrame:
    """``accounts`` plus the derived band columns ``employees_band`` and ``revenue_band``."""
    out = accounts.copy()
    out["employees_band"] = _band(out["employees"], config.employee_bands, compact=False)
    out["revenue_band"] = _band(out["annual_revenue"], config.revenue_bands, compact=True)
    return out


def dimension_summary(
    accounts: pd.DataFrame, opportunities: pd.DataFrame, config: SegmentsConfig
) -> pd.DataFrame:
    """Per configured dimension and value: accounts, customers, deals, win rate and ACV.

    Customers are accounts with a ``customer_since`` or a won deal. Win rate is won / closed
    new-business deals; ACV is the mean amount of won new-business deals.

    Returns:
        Columns ``dimension, value, accounts, customers, deals, won, lost, win_rate, acv``,
        largest segments first within each dimension.
    """
    frame = with_dimensions(accounts, config)
    opps = opportunities[opportunities["account_id"].isin(frame["account_id"])]
    won_any = set(opps.loc[opps["is_won"], "account_id"])
    frame["is_customer"] = frame["customer_since"].notna() | frame["account_id"].isin(won_any)
    new_business = opps[opps["deal_type"] == DealType.NEW_BUSINESS]
    per_account = pd.DataFrame(
        {
            "deals": opps.groupby("account_id").size(),
            "won": new_business[new_business["is_won"]].groupby("account_id").size(),
            "lost": new_business[new_business["is_closed"] & ~new_business["is_won"]]
            .groupby("account_id")
            .size(),
            "won_amount": new_business[new_business["is_won"]]
            .groupby("account_id")["amount"]
            .sum(),
            "won_priced": new_business[new_business["is_won"]]
            .groupby("account_id")["amount"]
            .count(),
        }
    )
    joined = frame.join(per_account, on="account_id").fillna(
        {"deals": 0, "won": 0, "lost": 0, "won_amount": 0.0, "won_priced": 0}
    )
    parts = []
    for dimension in config.dimensions:
        if dimension not in joined.columns:
            continue
        grouped = joined.groupby(joined[dimension].fillna("(blank)"), dropna=False)
        table = grouped.agg(
            accounts=("account_id", "size"),
            customers=("is_customer", "sum"),
            deals=("deals", "sum"),
            won=("won", "sum"),
            lost=("lost", "sum"),
            won_amount=("won_amount", "sum"),
            won_priced=("won_priced", "sum"),
        )
        closed = table["won"] + table["lost"]
        table["win_rate"] = (table["won"] / closed).where(closed > 0)
        table["acv"] = (table["won_amount"] / table["won_priced"]).where(table["won_priced"] > 0)
        table = table.drop(columns=["won_amount", "won_priced"]).reset_index(names="value")
        table.insert(0, "dimension", dimension)
        parts.append(table.sort_values(["accounts", "value"], ascending=[False, True]))
    if not parts:
        return pd.DataFrame(
            columns=[
                "dimension",
                "value",
                "accounts",
                "customers",
                "deals",
                "won",
                "lost",
                "win_rate",
                "acv",
            ]
        )
    result = pd.concat(parts, ignore_index=True)
    for column in ("accounts", "customers", "deals", "won", "lost"):
        result[column] = result[column].astype("int64")
    return result


@dataclass(frozen=True, slots=True, kw_only=True)
class EvidenceSettings:
    """How segments are measured.

    Attributes:
        dimensions: Columns that define segments.
        max_depth: Most dimensions combined in one segment.
        min_accounts: Segments with fewer accounts with outcomes are not tested.
        weights: Weight of each metric in the composite outcome (zero leaves it out).
        gross_margin: Share of ARR kept as gross profit (for CLV).
        min_churn: Floor of the annual churn rate in CLV (avoids infinite lifetimes).
    """

    dimensions: tuple[str, ...]
    max_depth: int = 2
    min_accounts: int = 30
    weights: Mapping[str, float]
    gross_margin: float = 0.8
    min_churn: float = 0.02


_SUMS = (
    "accounts",
    "outcome_n",
    "outcome_sum",
    "outcome_sq",
    "customers",
    "active",
    "arr",
    "nb_won",
    "nb_closed",
    "retained",
    "eligible",
    "arr_start",
    "arr_end",
    "start_sq",
    "end_sq",
    "cross",
    "cycle_sum",
    "cycle_n",
    "cycle_sq",
    "acv_sum",
    "acv_n",
    "acv_sq",
    "nps_sum",
    "nps_n",
    "nps_sq",
    "adoption_sum",
    "adoption_n",
    "adoption_sq",
)


def composite_outcome(outcomes: pd.DataFrame, weights: Mapping[str, float]) -> pd.Series:
    """One outcome score per account: the weighted mean of its standardised outcomes.

    Components an account lacks (a prospect has no retention) are left out of its mean;
    accounts with no outcome at all get NaN.
    """
    closed = outcomes["nb_won"] + outcomes["nb_lost"]
    components = {
        "win_rate": outcomes["nb_won"] / closed.where(closed > 0),
        "retention": outcomes["retained"] / outcomes["eligible"].where(outcomes["eligible"] > 0),
        "nrr": (outcomes["arr_end"] / outcomes["arr_start"].where(outcomes["arr_start"] > 0)).clip(
            upper=3.0
        ),
        "clv": np.log1p(outcomes["arr"].where(outcomes["active"])),
        "sales_cycle_days": -np.log1p(
            outcomes["cycle_sum"] / outcomes["cycle_n"].where(outcomes["cycle_n"] > 0)
        ),
        "acv": np.log1p(outcomes["acv_sum"] / outcomes["acv_n"].where(outcomes["acv_n"] > 0)),
        "nps": outcomes["nps"],
        "adoption": outcomes["adoption"],
    }
    total = pd.Series(0.0, index=outcomes.index)
    weight = pd.Series(0.0, index=outcomes.index)
    for name, values in components.items():
        w = float(weights.get(name, 0.0))
        spread = values.std()
        if w <= 0 or values.notna().sum() < 2 or not spread > 0:
            continue
        z = (values - values.mean()) / spread
        total += (w * z).fillna(0.0)
        weight += w * z.notna()
    return (total / weight.where(weight > 0)).rename("outcome")


def _account_sums(outcomes: pd.DataFrame, outcome: pd.Series) -> pd.DataFrame:
    o = outcomes
    present = outcome.notna()
    frame = pd.DataFrame(
        {
            "accounts": 1,
            "outcome_n": present.astype(int),
            "outcome_sum": outcome.fillna(0.0),
            "outcome_sq": (outcome**2).fillna(0.0),
            "customers": o["is_customer"].astype(int),
            "active": o["active"].astype(int),
            "arr": o["arr"],
            "nb_won": o["nb_won"],
            "nb_closed": o["nb_won"] + o["nb_lost"],
            "retained": o["retained"],
            "eligible": o["eligible"],
            "arr_start": o["arr_start"],
            "arr_end": o["arr_end"],
            "start_sq": o["arr_start"] ** 2,
            "end_sq": o["arr_end"] ** 2,
            "cross": o["arr_start"] * o["arr_end"],
            "cycle_sum": o["cycle_sum"],
            "cycle_n": o["cycle_n"],
            "cycle_sq": o["cycle_sq"],
            "acv_sum": o["acv_sum"],
            "acv_n": o["acv_n"],
            "acv_sq": o["acv_sq"],
        },
        index=outcomes.index,
    )
    for column in ("nps", "adoption"):
        values = o[column]
        frame[f"{column}_sum"] = values.fillna(0.0)
        frame[f"{column}_n"] = values.notna().astype(int)
        frame[f"{column}_sq"] = (values**2).fillna(0.0)
    return frame.astype("float64")


def members(frame: pd.DataFrame, rule: Mapping[str, object]) -> np.ndarray:
    """Boolean mask of the rows a rule selects (a list value matches any of its items).

    Values match regardless of letter case, as a hand-edited rule may spell them.
    """
    mask = np.ones(len(frame), dtype=bool)
    for dimension, value in rule.items():
        column = frame[dimension]
        items = value if isinstance(value, list | tuple | set) else [value]
        wanted = {str(v).casefold() for v in items}
        # compare the few distinct values, not every row
        matching = [u for u in pd.unique(column.dropna()) if str(u).casefold() in wanted]
        mask &= column.isin(matching).to_numpy(dtype=bool)
    return mask


def _metrics(sums: pd.DataFrame, settings: EvidenceSettings, prefix: str = "") -> pd.DataFrame:
    """Metric estimates and standard errors from summed per-account columns."""
    s = sums
    out = pd.DataFrame(index=s.index)
    out["win_rate"] = s["nb_won"] / s["nb_closed"].where(s["nb_closed"] > 0)
    out["win_rate_n"] = s["nb_closed"]
    out["retention"] = s["retained"] / s["eligible"].where(s["eligible"] > 0)
    out["retention_n"] = s["eligible"]
    ratio = s["arr_end"] / s["arr_start"].where(s["arr_start"] > 0)
    residual = s["end_sq"] - 2 * ratio * s["cross"] + ratio**2 * s["start_sq"]
    out["nrr"] = ratio
    out["nrr_se"] = np.sqrt(residual.clip(lower=0)) / s["arr_start"].where(s["arr_start"] > 0)
    out["nrr_n"] = s["arr_start"].gt(0) * s["eligible"]
    for name, key in (
        ("sales_cycle_days", "cycle"),
        ("acv", "acv"),
        ("nps", "nps"),
        ("adoption", "adoption"),
    ):
        n = s[f"{key}_n"]
        mean = s[f"{key}_sum"] / n.where(n > 0)
        var = (s[f"{key}_sq"] / n.where(n > 0) - mean**2).clip(lower=0) * n / (n - 1).where(n > 1)
        out[name] = mean
        out[f"{name}_se"] = np.sqrt(var / n.where(n > 0))
        out[f"{name}_n"] = n
    churn = (1 - out["retention"]).clip(lower=settings.min_churn)
    mean_arr = s["arr"] / s["active"].where(s["active"] > 0)
    out["clv"] = mean_arr * settings.gross_margin / churn
    out["clv_n"] = s["active"]
    return out


def _shrink(table: pd.DataFrame, baseline: pd.Series) -> None:
    """Empirical-Bayes shrinkage of every metric toward the baseline, in place."""
    for name in METRICS:
        estimate = table[name]
        prior = float(baseline[name]) if pd.notna(baseline[name]) else np.nan
        if name in ("win_rate", "retention"):
            n = table[f"{name}_n"]
            se2 = (prior * (1 - prior)) / n.where(n > 0)
        elif name == "clv":
            continue
        else:
            se2 = table[f"{name}_se"] ** 2
        usable = estimate.notna() & se2.notna() & np.isfinite(se2)
        if not usable.any() or np.isnan(prior):
            table[f"{name}_shrunk"] = estimate
            continue
        between = float(np.var(estimate[usable] - prior) - se2[usable].mean())
        tau2 = max(between, 0.0)
        weight = tau2 / (tau2 + se2) if tau2 > 0 else pd.Series(0.0, index=table.index)
        table[f"{name}_shrunk"] = (weight * estimate + (1 - weight) * prior).where(estimate.notna())
    retention = table["retention_shrunk"]
    churn = (1 - retention).clip(lower=0.02)
    ratio = (1 - table["retention"]).clip(lower=0.02) / churn
    table["clv_shrunk"] = table["clv"] * ratio


def _intervals(table: pd.DataFrame) -> None:
    for name in ("win_rate", "retention"):
        n = table[f"{name}_n"].fillna(0)
        x = (table[name] * n).round().fillna(0)
        ok = n > 0
        low, high = proportion_confint(x[ok], n[ok], method="wilson")
        table[f"{name}_low"] = pd.Series(low, index=table.index[ok])
        table[f"{name}_high"] = pd.Series(high, index=table.index[ok])
    for name in ("nrr", "sales_cycle_days", "acv", "nps", "adoption"):
        margin = 1.96 * table[f"{name}_se"]
        table[f"{name}_low"] = table[name] - margin
        table[f"{name}_high"] = table[name] + margin
    table["clv_low"] = np.nan
    table["clv_high"] = np.nan


_Moments = tuple[np.ndarray, np.ndarray, np.ndarray]


def _welch(a: _Moments, b: _Moments) -> tuple[np.ndarray, np.ndarray]:
    (mean_a, var_a, n_a), (mean_b, var_b, n_b) = a, b
    with np.errstate(divide="ignore", invalid="ignore"):
        va = var_a / n_a
        vb = var_b / n_b
        t = (mean_a - mean_b) / np.sqrt(va + vb)
        df = (va + vb) ** 2 / (va**2 / (n_a - 1) + vb**2 / (n_b - 1))
        p = 2 * stats.t.sf(np.abs(t), df)
    return t, np.where(np.isfinite(p), p, 1.0)


def _moments(sums: pd.DataFrame) -> _Moments:
    n = sums["outcome_n"].to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = sums["outcome_sum"].to_numpy() / n
        var = (sums["outcome_sq"].to_numpy() - n * mean**2) / (n - 1)
    return mean, var, n


def test_subset(
    outcome: pd.Series, inside: np.ndarray, reference: np.ndarray
) -> tuple[float, float, int]:
    """Welch's test of the composite outcome of ``inside`` accounts against ``reference`` ones.

    Returns:
        The t statistic, its two-sided p-value, and how many ``inside`` accounts had outcomes.
    """
    values = outcome.to_numpy()
    a = values[inside & ~np.isnan(values)]
    b = values[reference & ~np.isnan(values)]
    if len(a) < 2 or len(b) < 2:
        return 0.0, 1.0, len(a)
    t, p = _welch(
        (np.array([a.mean()]), np.array([a.var(ddof=1)]), np.array([len(a)])),
        (np.array([b.mean()]), np.array([b.var(ddof=1)]), np.array([len(b)])),
    )
    return float(t[0]), float(p[0]), len(a)


@dataclass(frozen=True, slots=True, kw_only=True)
class Evidence:
    """Everything measured about the segments of one account base.

    Attributes:
        table: One row per segment: ``rule``, ``depth``, ``accounts``, ``outcome_n``, each
            metric with ``_low``/``_high``/``_shrunk``/``_lift``, ``lift``, ``t``,
            ``p_value``, ``tested``.
        baseline: The metrics of all accounts together.
        outcome: The per-account composite outcome (NaN: no outcome yet).
        sums: Per-account summable columns (for re-measuring any subset of accounts).
        settings: What was measured and how.
        matrix: ``sums`` as one float matrix, for fast subset totals.
    """

    table: pd.DataFrame
    baseline: pd.Series
    outcome: pd.Series
    sums: pd.DataFrame
    settings: EvidenceSettings
    matrix: np.ndarray
    """``sums`` as one float matrix, for fast subset totals."""


def subset_metrics(evidence: Evidence, mask: np.ndarray) -> tuple[pd.Series, float]:
    """The (unshrunk) metrics of the accounts in ``mask`` and their weighted lift."""
    totals = mask.astype(np.float64) @ evidence.matrix
    sums = pd.DataFrame([totals], columns=evidence.sums.columns)
    metrics = _metrics(sums, evidence.settings).iloc[0]
    return metrics, _lift(metrics.to_frame().T, evidence.baseline, evidence.settings, "")[0]


def _lift(
    table: pd.DataFrame, baseline: pd.Series, settings: EvidenceSettings, suffix: str
) -> np.ndarray:
    weighted = np.zeros(len(table))
    weight = np.zeros(len(table))
    for name in METRICS:
        w = float(settings.weights.get(name, 0.0))
        base = baseline[name]
        if w <= 0 or not base or pd.isna(base):
            continue
        value = table[f"{name}{suffix}"].to_numpy(dtype=float)
        lift = base / value if name in _LOWER_IS_BETTER else value / base
        ok = np.isfinite(lift)
        weighted += np.where(ok, w * lift, 0.0)
        weight += np.where(ok, w, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(weight > 0, weighted / weight, np.nan)


def evidence_table(
    accounts: pd.DataFrame,
    outcomes: pd.DataFrame,
    settings: EvidenceSettings,
) -> Evidence:
    """Measure every segment up to ``max_depth`` dimensions.

    Args:
        accounts: Accounts with their dimension columns (see :func:`with_dimensions`), in the
            same order as ``outcomes``.
        outcomes: Per-account outcomes (:func:`icp_sync.lifecycle.account_outcomes`).
        settings: Dimensions, depth, size floor, metric weights.
    """
    outcome = composite_outcome(outcomes, settings.weights)
    sums = _account_sums(outcomes, outcome)
    sums.index = pd.RangeIndex(len(sums))
    total = sums.sum()
    baseline = _metrics(total.to_frame().T, settings).iloc[0]
    frames = []
    dims = [d for d in settings.dimensions if d in accounts.columns]
    for depth in range(1, settings.max_depth + 1):
        for combo in itertools.combinations(dims, depth):
            keys = [accounts[d].astype("string").to_numpy() for d in combo]
            grouped = sums.groupby(keys, dropna=True).sum()
            if grouped.empty:
                continue
            index = grouped.index if depth > 1 else [(v,) for v in grouped.index]
            grouped.insert(0, "rule", [dict(zip(combo, values, strict=True)) for values in index])
            grouped.insert(1, "depth", depth)
            frames.append(grouped.reset_index(drop=True))
    if not frames:
        empty = pd.DataFrame(columns=["rule", "depth", "accounts", "lift", "p_value", "tested"])
        return Evidence(
            table=empty,
            baseline=baseline,
            outcome=outcome,
            sums=sums,
            settings=settings,
            matrix=sums.to_numpy(dtype=np.float64),
        )
    table = pd.concat(frames, ignore_index=True)
    metrics = _metrics(table[list(_SUMS)], settings)
    kept = [c for c in _SUMS if c not in metrics.columns]
    table = pd.concat([table[["rule", "depth", *kept]], metrics], axis=1)
    _shrink(table, baseline)
    _intervals(table)
    for name in METRICS:
        base = baseline[name]
        shrunk = table[f"{name}_shrunk"]
        with np.errstate(divide="ignore", invalid="ignore"):
            table[f"{name}_lift"] = base / shrunk if name in _LOWER_IS_BETTER else shrunk / base
    table["lift"] = _lift(table, baseline, settings, "_shrunk")
    columns = ["outcome_n", "outcome_sum", "outcome_sq"]
    rest = pd.DataFrame(total[columns].to_numpy() - table[columns].to_numpy(), columns=columns)
    t, p = _welch(_moments(table), _moments(rest))
    table["t"] = t
    table["p_value"] = p
    table["tested"] = table["outcome_n"] >= settings.min_accounts
    return Evidence(
        table=table,
        baseline=baseline,
        outcome=outcome,
        sums=sums,
        settings=settings,
        matrix=sums.to_numpy(dtype=np.float64),
    )
