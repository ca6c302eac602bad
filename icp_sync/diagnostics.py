"""What a CRM history can and cannot support: observation window, leakage, empty metrics.

Real exports differ from clean data in ways that silently change what ``derive`` measures:
the history ends long before today, some fields are filled in only once a deal is won, some
metrics carry no information at all. This module finds those and says so, as structured
:class:`DataWarning` items that the evidence report and the console render.

Pure: frames in, frames and warnings out; no clock (``now`` is passed in).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "DataWarning",
    "LeakageReport",
    "ObservationWindow",
    "coverage_asymmetry",
    "informative_weights",
    "metric_components",
    "observation_window",
]

MIN_COVERAGE_RATIO = 0.1
"""A field filled for one group at most this share as often as for the other is one-sided."""
MIN_COVERAGE = 0.2
"""... provided the better-covered group has it at least this often."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DataWarning:
    """One finding about the data (contract: ``code``, ``message``, ``numbers``).

    Attributes:
        code: Stable identifier (``history_ended``, ``metric_dropped``, ...).
        message: One sentence a reader can act on.
        numbers: The figures behind it.
    """

    code: str
    message: str
    numbers: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"code": self.code, "message": self.message, "numbers": self.numbers}


@dataclass(frozen=True, slots=True, kw_only=True)
class ObservationWindow:
    """First and last dated activity in the history (never after ``now``)."""

    start: pd.Timestamp
    end: pd.Timestamp

    def as_dict(self) -> dict[str, str]:
        """``{"start", "end"}`` as ISO dates (contract)."""
        return {"start": self.start.date().isoformat(), "end": self.end.date().isoformat()}


_DATES = {
    "accounts": ("created_at", "modified_at", "customer_since", "churned_at"),
    "opportunities": ("created_at", "close_date", "modified_at"),
}


def observation_window(
    accounts: pd.DataFrame, opportunities: pd.DataFrame, now: pd.Timestamp
) -> ObservationWindow:
    """The span of dated activity in the mirror, ignoring dates after ``now``.

    Close dates count only for closed deals (an open deal's is a forecast).

    Falls back to ``now`` for both ends when nothing is dated.
    """
    cut = pd.Timestamp(now)
    lows: list[pd.Timestamp] = []
    highs: list[pd.Timestamp] = []
    frames = ((accounts, _DATES["accounts"]), (opportunities, _DATES["opportunities"]))
    for frame, columns in frames:
        for column in columns:
            if column not in frame.columns:
                continue
            values = pd.to_datetime(frame[column], utc=True)
            if column == "close_date" and "is_closed" in frame.columns:
                # an open deal's close date is a forecast, not activity
                values = values[frame["is_closed"].fillna(False).astype(bool)]
            values = values[values.notna() & (values <= cut)]
            if len(values):
                lows.append(values.min())
                highs.append(values.max())
    if not highs:
        return ObservationWindow(start=cut, end=cut)
    return ObservationWindow(start=min(lows), end=max(highs))


def metric_components(outcomes: pd.DataFrame) -> dict[str, pd.Series]:
    """Each metric's per-account value (NaN where the account has none)."""
    o = outcomes
    closed = o["nb_won"] + o["nb_lost"]
    return {
        "win_rate": o["nb_won"] / closed.where(closed > 0),
        "retention": o["retained"] / o["eligible"].where(o["eligible"] > 0),
        "nrr": (o["arr_end"] / o["arr_start"].where(o["arr_start"] > 0)).clip(upper=3.0),
        "clv": np.log1p(o["arr"].where(o["active"])),
        "sales_cycle_days": -np.log1p(o["cycle_sum"] / o["cycle_n"].where(o["cycle_n"] > 0)),
        "acv": np.log1p(o["acv_sum"] / o["acv_n"].where(o["acv_n"] > 0)),
        "nps": o["nps"].astype(float),
        "adoption": o["adoption"].astype(float),
    }


def informative_weights(
    outcomes: pd.DataFrame, weights: Mapping[str, float]
) -> tuple[dict[str, float], list[DataWarning]]:
    """The metric weights with every metric that carries no information set to zero.

    Every metric is checked, weighted or not, so none is reported that the data cannot
    support. A metric is uninformative when fewer than two accounts have it, or when every account
    has the same value (a win rate of 1.0 everywhere, a sales cycle of 0 days, no ARR).
    """
    kept = dict(weights)
    found = []
    for name, values in metric_components(outcomes).items():
        present = values.dropna()
        reason = ""
        if len(present) < 2:
            reason = f"only {len(present)} account(s) have it"
        elif not float(present.std()) > 0:
            reason = f"every account has the same value ({_raw(name, float(present.iloc[0]))})"
        if reason:
            kept[name] = 0.0
            found.append(
                DataWarning(
                    code="metric_dropped",
                    message=f"{name} carries no information on this data: {reason}; "
                    "it is not reported and is left out of the composite",
                    numbers={"metric": name, "accounts_with_value": len(present)},
                )
            )
    return kept, found


def _raw(name: str, value: float) -> str:
    if name in ("clv", "acv"):
        return f"{np.expm1(value):g}"
    if name == "sales_cycle_days":
        return f"{np.expm1(-value):g} days"
    return f"{value:g}"


@dataclass(frozen=True, slots=True, kw_only=True)
class LeakageReport:
    """Dimensions whose coverage depends on the outcome.

    Attributes:
        won_only: Recorded (almost) only for won (or only for lost) deals: no win-rate evidence.
        customer_only: Recorded (almost) only for customers: cannot rank prospects.
        coverage: Per dimension, the share non-blank among won / lost / customers / prospects.
        warnings: One per finding.
    """

    won_only: tuple[str, ...]
    customer_only: tuple[str, ...]
    coverage: dict[str, dict[str, float | None]]
    warnings: tuple[DataWarning, ...]


def coverage_asymmetry(
    accounts: pd.DataFrame,
    outcomes: pd.DataFrame,
    dimensions: Sequence[str],
    model_inputs: Sequence[str] = (),
) -> LeakageReport:
    """Coverage of each dimension among won vs lost accounts and customers vs prospects.

    Args:
        accounts: Accounts with dimension columns, aligned with ``outcomes``.
        outcomes: :func:`icp_sync.lifecycle.account_outcomes`.
        dimensions: Dimensions (also the look-alike model's categorical features).
        model_inputs: The model's other inputs (size, revenue, tech stack): checked for
            customers vs prospects only, since they carry no win-rate evidence.
    """
    won = outcomes["nb_won"].to_numpy() > 0
    lost = ~won & (outcomes["nb_lost"].to_numpy() > 0)
    customer = outcomes["is_customer"].to_numpy(dtype=bool)
    groups = {"won": won, "lost": lost, "customers": customer, "prospects": ~customer}
    won_only: list[str] = []
    customer_only: list[str] = []
    coverage: dict[str, dict[str, float | None]] = {}
    found: list[DataWarning] = []
    for dimension in [*dimensions, *(i for i in model_inputs if i not in dimensions)]:
        if dimension not in accounts.columns:
            continue
        values = accounts[dimension]
        filled = values.notna().to_numpy(dtype=bool, copy=True)
        if values.dtype == object or isinstance(values.dtype, pd.StringDtype):
            filled &= (values.astype("string").str.strip() != "").fillna(False).to_numpy(bool)
        shares = {g: _share(filled, mask) for g, mask in groups.items()}
        coverage[dimension] = shares
        if dimension in dimensions and _one_sided(shares["won"], shares["lost"]):
            won_only.append(dimension)
            found.append(
                DataWarning(
                    code="won_only_dimension",
                    message=f"{dimension} is recorded for {_pct(shares['won'])} of won and "
                    f"{_pct(shares['lost'])} of lost accounts: filled in after the outcome, so "
                    "it is left out of win-rate evidence (post-sale metrics still use it)",
                    numbers={"dimension": dimension} | _rounded(shares),
                )
            )
        if _one_sided(shares["customers"], shares["prospects"]):
            customer_only.append(dimension)
            found.append(
                DataWarning(
                    code="prospect_blind_feature",
                    message=f"{dimension} is recorded for {_pct(shares['customers'])} of "
                    f"customers and {_pct(shares['prospects'])} of prospects: it cannot rank "
                    "prospects and is left out of the look-alike model",
                    numbers={"dimension": dimension} | _rounded(shares),
                )
            )
    return LeakageReport(
        won_only=tuple(won_only),
        customer_only=tuple(customer_only),
        coverage={d: _rounded(s) for d, s in coverage.items()},
        warnings=tuple(found),
    )


def _share(filled: np.ndarray, mask: np.ndarray) -> float | None:
    return float(filled[mask].mean()) if mask.any() else None


def _one_sided(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return False
    high, low = max(a, b), min(a, b)
    return high >= MIN_COVERAGE and low <= MIN_COVERAGE_RATIO * high


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def _rounded(shares: Mapping[str, float | None]) -> dict[str, float | None]:
    return {k: None if v is None else round(v, 4) for k, v in shares.items()}
