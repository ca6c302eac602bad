"""Dimensions of an account base: derived size and revenue bands, and a per-value summary.

Pure: frames in, frames out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from icp_sync.model import DealType

if TYPE_CHECKING:
    from icp_sync.config import SegmentsConfig

__all__ = ["band_labels", "dimension_summary", "with_dimensions"]


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
