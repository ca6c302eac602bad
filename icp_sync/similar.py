"""The best-fit customers most like each account, named in its reasons ("looks like ...").

Pure: accounts and the look-alike model's reference customers in, names out. Similar means
the same segment keys first, then the closest size and revenue.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["similar_customers"]


def similar_customers(
    accounts: pd.DataFrame,
    reference: pd.DataFrame,
    *,
    keys: Sequence[str],
    count: int = 3,
) -> pd.Series:
    """For every account, the names of the ``count`` most similar best-fit customers.

    Similar means: same values of ``keys`` (e.g. industry and employee band), then the
    closest size and revenue; when a group holds too few best customers, the first key alone
    is used, then all of them. An account never lists itself.

    Args:
        accounts: Accounts with ``account_id``, ``employees``, ``annual_revenue`` and ``keys``.
        reference: The best-fit customers, same columns plus ``name``.
        keys: Grouping columns, most important first.
        count: How many names per account.
    """
    result = np.full(len(accounts), "", dtype=object)
    if reference.empty:
        return pd.Series(result, index=accounts.index)
    fill = _fill_values(reference)
    query_point, pool_point = _point(accounts, fill), _point(reference, fill)
    names = reference["name"].fillna(reference["account_id"]).astype(str).to_numpy(dtype=object)
    query_ids = accounts["account_id"].astype(str).to_numpy(dtype=object)
    pool_ids = reference["account_id"].astype(str).to_numpy(dtype=object)
    pending = np.ones(len(accounts), dtype=bool)
    for level in ([*keys[:i]] for i in range(len(keys), -1, -1)):
        query_group, pool_group = _group(accounts, level), _group(reference, level)
        for value in pd.unique(query_group[pending]):
            pool = np.flatnonzero(pool_group == value)
            if len(pool) < count + 1 and level:
                continue
            queries = np.flatnonzero(pending & (query_group == value))
            nearest = _nearest(
                query_point[queries], query_ids[queries], pool_point[pool], pool_ids[pool], count
            )
            chosen = names[pool][nearest]
            joined = chosen[:, 0]
            for column in range(1, chosen.shape[1]):
                joined = joined + ", " + chosen[:, column]
            result[queries] = joined
            pending[queries] = False
        if not pending.any():
            break
    return pd.Series(result, index=accounts.index)


def _fill_values(frame: pd.DataFrame) -> tuple[float, float]:
    return float(frame["employees"].median()), float(frame["annual_revenue"].median())


def _point(frame: pd.DataFrame, fill: tuple[float, float]) -> np.ndarray:
    size = np.log1p(frame["employees"].fillna(fill[0]).clip(lower=0).to_numpy(dtype=float))
    revenue = np.log1p(frame["annual_revenue"].fillna(fill[1]).clip(lower=0).to_numpy(dtype=float))
    return np.asarray(np.nan_to_num(size) + 0.5 * np.nan_to_num(revenue), dtype=float)


def _group(frame: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    if not columns:
        return np.zeros(len(frame), dtype=object)
    key = frame[columns[0]].astype("string").fillna("?")
    for column in columns[1:]:
        key = key + "\x1f" + frame[column].astype("string").fillna("?")
    return key.to_numpy(dtype=object)


def _nearest(
    query: np.ndarray, query_ids: np.ndarray, pool: np.ndarray, pool_ids: np.ndarray, count: int
) -> np.ndarray:
    """Positions in ``pool`` of the ``count`` nearest points to each query (never itself)."""
    order = np.argsort(pool, kind="stable")
    sorted_pool = pool[order]
    width = min(2 * (count + 1), len(order))
    position = np.searchsorted(sorted_pool, query)
    start = np.clip(position - width // 2, 0, len(order) - width)
    window = order[start[:, None] + np.arange(width)[None, :]]
    distance = np.abs(pool[window] - query[:, None])
    distance[pool_ids[window] == query_ids[:, None]] = np.inf
    best = np.argsort(distance, axis=1, kind="stable")[:, : min(count, width)]
    return np.asarray(np.take_along_axis(window, best, axis=1))
