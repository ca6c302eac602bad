"""Segments of the customer base: dimensions, and the evidence of how each segment performs.

A segment is a rule over one or more dimensions (``{"industry": "Healthcare",
"employees_band": "200-999"}``). For every segment up to the configured depth this module
measures the lifecycle metrics (win rate, Kaplan-Meier logo retention, NRR, CLV, sales cycle,
ACV, NPS, adoption) with confidence intervals, shrinks small segments toward the company
baseline (empirical Bayes, :mod:`icp_sync.shrinkage`), and tests the segment's composite
outcome against the rest of the accounts (Welch's t-test on a per-account composite score, so
the correlation between metrics is accounted for). Metrics with no information on the data
leave the composite; segments on a dimension recorded only for won deals are tested on a
composite without the win rate. Multiple-comparison control happens where segments are
chosen (:mod:`icp_sync.icp`).

Pure: frames in, frames out.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from icp_sync.diagnostics import DataWarning, informative_weights, metric_components
from icp_sync.dimensions import band_labels, dimension_summary, with_dimensions
from icp_sync.shrinkage import floor_warnings, intervals, shrink
from icp_sync.survival import at_risk_columns, event_columns, km_from_sums

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
        horizon: Months of the logo-retention horizon.
        win_rate_blind: Dimensions recorded only for one deal outcome: segments on them get
            no win rate and are tested on the post-sale composite.
    """

    dimensions: tuple[str, ...]
    max_depth: int = 2
    min_accounts: int = 30
    weights: Mapping[str, float]
    gross_margin: float = 0.8
    min_churn: float = 0.02
    horizon: int = 12
    win_rate_blind: frozenset[str] = frozenset()


_SUMS = (
    "accounts",
    "outcome_n",
    "outcome_sum",
    "outcome_sq",
    "post_n",
    "post_sum",
    "post_sq",
    "customers",
    "active",
    "arr",
    "nb_won",
    "nb_closed",
    "nrr_accounts",
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


def _sum_columns(horizon: int) -> list[str]:
    return [*_SUMS, *at_risk_columns(horizon), *event_columns(horizon)]


def composite_outcome(outcomes: pd.DataFrame, weights: Mapping[str, float]) -> pd.Series:
    """One outcome score per account: the weighted mean of its standardised outcomes.

    Components an account lacks (a prospect has no retention) are left out of its mean;
    accounts with no outcome at all get NaN.
    """
    components = metric_components(outcomes)
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


def _account_sums(
    outcomes: pd.DataFrame, outcome: pd.Series, post: pd.Series, horizon: int
) -> pd.DataFrame:
    o = outcomes
    frame = pd.DataFrame(
        {
            "accounts": 1,
            "outcome_n": outcome.notna().astype(int),
            "outcome_sum": outcome.fillna(0.0),
            "outcome_sq": (outcome**2).fillna(0.0),
            "post_n": post.notna().astype(int),
            "post_sum": post.fillna(0.0),
            "post_sq": (post**2).fillna(0.0),
            "customers": o["is_customer"].astype(int),
            "active": o["active"].astype(int),
            "arr": o["arr"],
            "nb_won": o["nb_won"],
            "nb_closed": o["nb_won"] + o["nb_lost"],
            "nrr_accounts": (o["arr_start"] > 0).astype(int),
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
    at_risk, events = at_risk_columns(horizon), event_columns(horizon)
    if at_risk[0] in o.columns:
        frame[at_risk] = o[at_risk].to_numpy()
        frame[events] = o[events].to_numpy()
    else:
        # outcomes without monthly counts: the eligible enter, the others churn in the
        # first month, the retained stay at risk to the horizon
        frame[at_risk] = np.repeat(o["retained"].to_numpy(dtype=float)[:, None], horizon, 1)
        frame[events] = 0.0
        frame[at_risk[0]] = o["eligible"]
        frame[events[0]] = o["eligible"] - o["retained"]
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
    """Metric estimates and standard errors from summed columns (numpy: cheap on one row)."""

    def column(name: str) -> np.ndarray:
        return np.asarray(sums[name].to_numpy(dtype=np.float64))

    def positive(values: np.ndarray) -> np.ndarray:
        return np.where(values > 0, values, np.nan)

    def at_least(values: np.ndarray, lower: float) -> np.ndarray:
        return np.where(values < lower, lower, values)

    out: dict[str, np.ndarray] = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        out["win_rate"] = column("nb_won") / positive(column("nb_closed"))
        out["win_rate_n"] = column("nb_closed")
        out["retention"], out["retention_se"], out["retention_n"] = km_from_sums(
            sums[at_risk_columns(settings.horizon)].to_numpy(dtype=float),
            sums[event_columns(settings.horizon)].to_numpy(dtype=float),
        )
        start = positive(column("arr_start"))
        ratio = column("arr_end") / start
        residual = column("end_sq") - 2 * ratio * column("cross") + ratio**2 * column("start_sq")
        out["nrr"] = ratio
        out["nrr_se"] = np.sqrt(at_least(residual, 0.0)) / start
        out["nrr_n"] = column("nrr_accounts")
        for name, key in (
            ("sales_cycle_days", "cycle"),
            ("acv", "acv"),
            ("nps", "nps"),
            ("adoption", "adoption"),
        ):
            n = column(f"{key}_n")
            mean = column(f"{key}_sum") / positive(n)
            spread = at_least(column(f"{key}_sq") / positive(n) - mean**2, 0.0)
            var = spread * n / np.where(n > 1, n - 1, np.nan)
            out[name] = mean
            out[f"{name}_se"] = np.sqrt(var / positive(n))
            out[f"{name}_n"] = n
        churn = at_least(1 - out["retention"], settings.min_churn)
        mean_arr = column("arr") / positive(column("active"))
        out["clv"] = mean_arr * settings.gross_margin / churn
        out["clv_n"] = column("active")
    return pd.DataFrame(out, index=sums.index)


_Moments = tuple[np.ndarray, np.ndarray, np.ndarray]


def _welch(a: _Moments, b: _Moments) -> tuple[np.ndarray, np.ndarray]:
    from scipy import stats

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
        post_sale: The composite without the win rate (for win-rate-blind dimensions).
        weights: The metric weights actually used (uninformative metrics at zero).
        warnings: Metrics dropped, priors held at their floor.
    """

    table: pd.DataFrame
    baseline: pd.Series
    outcome: pd.Series
    sums: pd.DataFrame
    settings: EvidenceSettings
    matrix: np.ndarray
    post_sale: pd.Series
    weights: dict[str, float]
    warnings: tuple[DataWarning, ...] = ()

    def blind(self, rule: Mapping[str, object]) -> bool:
        """Whether a rule uses a dimension that cannot carry win-rate evidence."""
        return any(d in self.settings.win_rate_blind for d in rule)

    def outcome_for(self, rule: Mapping[str, object]) -> pd.Series:
        """The composite a rule is tested on (post-sale only for win-rate-blind rules)."""
        return self.post_sale if self.blind(rule) else self.outcome


def subset_metrics(
    evidence: Evidence, mask: np.ndarray, *, blind: bool = False
) -> tuple[pd.Series, float]:
    """The (unshrunk) metrics of the accounts in ``mask`` and their weighted lift.

    ``blind``: leave the win rate out (a rule on a won-only dimension).
    """
    totals = mask.astype(np.float64) @ evidence.matrix
    sums = pd.DataFrame([totals], columns=evidence.sums.columns)
    metrics = _metrics(sums, evidence.settings).iloc[0]
    if blind:
        metrics["win_rate"] = np.nan
    return metrics, _lift(metrics.to_frame().T, evidence.baseline, evidence.weights, "")[0]


def _lift(
    table: pd.DataFrame, baseline: pd.Series, weights: Mapping[str, float], suffix: str
) -> np.ndarray:
    weighted = np.zeros(len(table))
    weight = np.zeros(len(table))
    for name in METRICS:
        w = float(weights.get(name, 0.0))
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
        settings: Dimensions, depth, size floor, metric weights, win-rate-blind dimensions.
    """
    weights, warnings = informative_weights(outcomes, settings.weights)
    outcome = composite_outcome(outcomes, weights)
    post_sale = composite_outcome(outcomes, weights | {"win_rate": 0.0})
    sums = _account_sums(outcomes, outcome, post_sale, settings.horizon)
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
    evidence = Evidence(
        table=pd.DataFrame(columns=["rule", "depth", "accounts", "lift", "p_value", "tested"]),
        baseline=baseline,
        outcome=outcome,
        sums=sums,
        settings=settings,
        matrix=sums.to_numpy(dtype=np.float64),
        post_sale=post_sale,
        weights=weights,
        warnings=tuple(warnings),
    )
    if not frames:
        return evidence
    table = pd.concat(frames, ignore_index=True)
    columns = _sum_columns(settings.horizon)
    metrics = _metrics(table[columns], settings)
    blind = table["rule"].map(evidence.blind).to_numpy(dtype=bool)
    # a won-only dimension's win rate is 100% by construction: not evidence
    metrics.loc[blind, ["win_rate", "win_rate_n"]] = np.nan
    kept = [c for c in columns if c not in metrics.columns]
    table = pd.concat([table[["rule", "depth", *kept]], metrics], axis=1)
    floors = shrink(
        table, baseline, [m for m in METRICS if m != "clv"], min_n=settings.min_accounts
    )
    churn = (1 - table["retention_shrunk"]).clip(lower=settings.min_churn)
    table["clv_shrunk"] = (
        table["clv"] * (1 - table["retention"]).clip(lower=settings.min_churn) / churn
    )
    intervals(table)
    lifts = {}
    for name in METRICS:
        base = baseline[name]
        for suffix in ("_shrunk", ""):
            value = table[f"{name}{suffix}"]
            with np.errstate(divide="ignore", invalid="ignore"):
                lift = base / value if name in _LOWER_IS_BETTER else value / base
            lifts[f"{name}_lift" if suffix else f"{name}_raw_lift"] = lift
    # one concat instead of many inserts keeps the frame in few blocks
    table = pd.concat([table, pd.DataFrame(lifts, index=table.index)], axis=1)
    table["lift"] = _lift(table, baseline, weights, "_shrunk")
    table["lift_raw"] = _lift(table, baseline, weights, "")
    t, p = _test_all(table, total, blind)
    table["t"] = t
    table["p_value"] = p
    n = np.where(blind, table["post_n"], table["outcome_n"])
    table["tested"] = n >= settings.min_accounts
    used = [m for m in METRICS if weights.get(m, 0.0) > 0]
    warnings += floor_warnings(floors, used)
    return Evidence(
        table=table,
        baseline=baseline,
        outcome=outcome,
        sums=sums,
        settings=settings,
        matrix=evidence.matrix,
        post_sale=post_sale,
        weights=weights,
        warnings=tuple(warnings),
    )


def _test_all(
    table: pd.DataFrame, total: pd.Series, blind: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Welch's test of every segment against the rest, on the composite its rule allows."""
    results = []
    for prefix in ("outcome", "post"):
        columns = [f"{prefix}_n", f"{prefix}_sum", f"{prefix}_sq"]
        inside = table[columns].set_axis(["outcome_n", "outcome_sum", "outcome_sq"], axis=1)
        rest = pd.DataFrame(
            total[columns].to_numpy() - table[columns].to_numpy(), columns=inside.columns
        )
        results.append(_welch(_moments(inside), _moments(rest)))
    (t_all, p_all), (t_post, p_post) = results
    return np.where(blind, t_post, t_all), np.where(blind, p_post, p_all)
