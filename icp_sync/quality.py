"""What the observed history supports: its window, its limits, the baseline with intervals.

Turns the measurements of one derivation into the structured warnings and the data-quality
section of the evidence report. Pure: values in, warnings and lines out; ``now`` is passed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from icp_sync.diagnostics import DataWarning, ObservationWindow
from icp_sync.segments import METRICS
from icp_sync.shrinkage import intervals

if TYPE_CHECKING:
    from icp_sync.config import Settings

__all__ = [
    "baseline_detail",
    "data_quality",
    "history_warnings",
    "model_warnings",
    "plausibility_warnings",
]

STALE_DAYS = 90
"""A history that ended longer ago than this is reported as ended."""
CENSORED_SHARE = 0.25
"""Above this share of customers observed for less than the horizon, retention is flagged."""
LEAK_AUC = 0.97
"""A cross-validated AUC above this on CRM outcomes is a leak, not a result."""
NRR_PLAUSIBLE = (0.5, 1.5)
"""Company-wide NRR outside this range is rare enough in B2B SaaS to question the data first."""


def history_warnings(
    window: ObservationWindow,
    now: pd.Timestamp,
    as_of: pd.Timestamp,
    outcomes: pd.DataFrame,
    settings: Settings,
) -> list[DataWarning]:
    """Warnings about the time span of the history and the windowed metrics it allows."""
    found = []
    months = settings.lifecycle.window_months
    stale = (pd.Timestamp(now) - window.end).days
    if stale > STALE_DAYS:
        found.append(
            DataWarning(
                code="history_ended",
                message=f"the history ends on {window.end:%Y-%m-%d}, {stale:,} days before "
                "today: every metric is measured up to that date, not up to today",
                numbers={"end": window.end.date().isoformat(), "days_before_now": stale},
            )
        )
    ignored = int(outcomes["churn_ignored"].sum()) if "churn_ignored" in outcomes else 0
    if ignored:
        found.append(
            DataWarning(
                code="churn_before_customer",
                message=f"{ignored:,} accounts have a churn date but no purchase before it: "
                "their churn cannot be measured and is left out, so logo retention may read "
                "high; check how churn and the first purchase are recorded",
                numbers={"accounts": ignored},
            )
        )
    customers = outcomes["is_customer"].to_numpy(dtype=bool)
    censored = customers & (outcomes["eligible"].to_numpy() == 0)
    if customers.any() and censored.sum() / customers.sum() > CENSORED_SHARE:
        found.append(
            DataWarning(
                code="retention_censored",
                message=f"{censored.sum():,} of {customers.sum():,} customers were observed for "
                f"less than {months} months: logo retention is a Kaplan-Meier estimate that "
                "counts them for as long as they were seen, with a wider interval",
                numbers={
                    "customers": int(customers.sum()),
                    "censored": int(censored.sum()),
                    "horizon_months": months,
                },
            )
        )
    if not (outcomes["arr_start"] > 0).any():
        span = (window.end - window.start).days / 30.44
        found.append(
            DataWarning(
                code="nrr_unsupported",
                message=f"no customer cohort with revenue was observed for a full {months}-month "
                f"window ending {as_of:%Y-%m-%d} (history of {span:.0f} months): NRR is not "
                "reported",
                numbers={"history_months": round(span, 1), "window_months": months},
            )
        )
    return found


def plausibility_warnings(baseline: Mapping[str, float]) -> list[DataWarning]:
    """Warnings about baseline figures a sceptical analyst would question before using."""
    nrr = baseline.get("nrr")
    if nrr is None or not np.isfinite(nrr) or NRR_PLAUSIBLE[0] <= nrr <= NRR_PLAUSIBLE[1]:
        return []
    low, high = NRR_PLAUSIBLE
    return [
        DataWarning(
            code="nrr_implausible",
            message=f"company-wide NRR is {nrr:.0%}, outside the {low:.0%}-{high:.0%} that B2B "
            "SaaS companies report: check how revenue is mapped (overlapping or concurrent "
            "subscriptions summed as ARR inflate it; refunds or partial exports deflate it) "
            "before trusting NRR and CLV",
            numbers={"nrr": round(float(nrr), 4), "low": low, "high": high},
        )
    ]


def model_warnings(cv_auc: float, *, trained: bool, min_auc: float) -> list[DataWarning]:
    """Warnings about a look-alike model that is too good or no good."""
    if not np.isfinite(cv_auc):
        return []
    if cv_auc > LEAK_AUC:
        return [
            DataWarning(
                code="probable_leakage",
                message=f"the look-alike model's cross-validated AUC is {cv_auc:.3f}: CRM "
                "outcomes are not that predictable, so a feature probably records the outcome "
                "itself; check the coverage of each dimension",
                numbers={"cv_auc": round(cv_auc, 4), "threshold": LEAK_AUC},
            )
        ]
    if not trained and cv_auc < min_auc:
        return [
            DataWarning(
                code="model_at_chance",
                message=f"the look-alike model's cross-validated AUC is {cv_auc:.2f}, below "
                f"{min_auc:.2f}: it steps aside and segment lifts rank the Target Account List",
                numbers={"cv_auc": round(cv_auc, 4), "threshold": min_auc},
            )
        ]
    return []


def baseline_detail(baseline: pd.Series) -> dict[str, dict[str, float | int | None]]:
    """Each baseline metric with its 95% interval and the n behind it."""
    frame = baseline.to_frame().T.reset_index(drop=True)
    intervals(frame)
    out: dict[str, dict[str, float | int | None]] = {}
    row = {k: float(v) for k, v in frame.iloc[0].items() if isinstance(v, int | float)}
    for name in METRICS:
        value = row.get(name, float("nan"))
        if not np.isfinite(value):
            continue
        n = row.get(f"{name}_n", float("nan"))
        out[name] = {
            "value": round(value, 4),
            "low": _num(row.get(f"{name}_low", float("nan"))),
            "high": _num(row.get(f"{name}_high", float("nan"))),
            "n": int(n) if np.isfinite(n) else None,
        }
    return out


def _num(value: Any) -> float | None:
    number = float(value)
    return round(number, 4) if np.isfinite(number) else None


def data_quality(
    window: ObservationWindow, warnings: Sequence[DataWarning], weights: Mapping[str, float]
) -> list[str]:
    """The data-quality section: what this history can and cannot support, in sentences."""
    span = (window.end - window.start).days / 30.44
    used = [m for m in METRICS if weights.get(m, 0.0) > 0]
    dropped = [str(w.numbers["metric"]) for w in warnings if w.code == "metric_dropped"]
    lines = [
        f"Observed history: {window.start:%Y-%m-%d} to {window.end:%Y-%m-%d} ({span:.0f} months).",
        f"Metrics in the composite: {', '.join(used) or 'none'}."
        + (f" Left out: {', '.join(dropped)}." if dropped else ""),
    ]
    lines += [f"[{w.code}] {w.message}." for w in warnings]
    return lines
