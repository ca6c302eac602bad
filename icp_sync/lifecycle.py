"""Lifecycle outcomes per account, as of a date: what each account's history says.

Pure: canonical frames and a date in, one row per account out. Only history before
``as_of`` is used, so the same code serves today's ICP and backtests of past ones.

Where the CRM lacks lifecycle fields they are derived from deals (ARCHITECTURE section 4):
``customer_since`` is the first won new-business close date, ``churned_at`` a lost renewal
not followed by any win, ARR the value of won deals over the trailing year. Snapshot fields
(NPS, adoption) describe today and are only used when ``as_of`` is today.

Columns of the result (per account; counts are summed, ratios are left to the segments):

========================  ==================================================================
``is_customer``           became a customer on or before ``as_of``
``active``                a customer not churned by ``as_of``
``nb_won``, ``nb_lost``   closed new-business deals won / lost
``eligible``, ``retained``  retention windows the account entered as a customer / survived
``arr_start``, ``arr_end``  ARR at the start / end of those windows (NRR = sum end / sum start)
``cycle_days``, ``cycle_n``, ``cycle_sq``  sum, count and sum of squares of won sales cycles
``acv_sum``, ``acv_n``, ``acv_sq``         the same for won new-business amounts
``arr``                   ARR now (derived from deals)
``nps``, ``adoption``     snapshot values (only when ``as_of`` is today)
========================  ==================================================================
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from icp_sync.model import DealType

__all__ = ["LifecycleSettings", "account_outcomes", "history_as_of"]


@dataclass(frozen=True, slots=True, kw_only=True)
class LifecycleSettings:
    """Assumptions of the lifecycle metrics.

    Attributes:
        window_months: Length of a logo-retention / NRR window.
        windows: How many consecutive windows, ending at ``as_of``, are pooled.
        snapshot_fields: Use the CRM's current NPS and adoption (only sensible for today).
    """

    window_months: int = 12
    windows: int = 3
    snapshot_fields: bool = True


def history_as_of(
    accounts: pd.DataFrame, opportunities: pd.DataFrame, as_of: pd.Timestamp
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The CRM as it stood at ``as_of``: later accounts and deals removed, later closes reopened.

    Lifecycle fields dated after ``as_of`` are cleared; deals that closed after it are open.
    """
    accounts = accounts[~(accounts["created_at"] > as_of)].copy()
    for column in ("customer_since", "churned_at"):
        accounts.loc[accounts[column] > as_of, column] = pd.NaT
    started = opportunities["created_at"].fillna(opportunities["close_date"])
    opps = opportunities[~(started > as_of)].copy()
    later = opps["is_closed"] & (opps["close_date"] > as_of)
    opps.loc[later, ["is_closed", "is_won"]] = False
    opps.loc[later, "stage"] = "open"
    return accounts, opps


def account_outcomes(
    accounts: pd.DataFrame,
    opportunities: pd.DataFrame,
    *,
    as_of: pd.Timestamp,
    settings: LifecycleSettings = LifecycleSettings(),
) -> pd.DataFrame:
    """Per-account lifecycle outcomes as of ``as_of`` (see the module docstring for columns).

    Args:
        accounts: Canonical accounts (already cut to ``as_of`` by :func:`history_as_of`).
        opportunities: Canonical opportunities (likewise).
        as_of: The moment the outcomes describe.
        settings: Window lengths and whether snapshot fields may be used.

    Returns:
        One row per account, indexed by ``account_id``.
    """
    ids = pd.Index(accounts["account_id"], name="account_id")
    opps = opportunities[opportunities["account_id"].isin(ids)]
    closed_by = opps["is_closed"] & (opps["close_date"] <= as_of)
    won = opps[opps["is_won"] & closed_by]
    lost = opps[closed_by & ~opps["is_won"]]
    new_won = won[won["deal_type"] == DealType.NEW_BUSINESS]
    new_lost = lost[lost["deal_type"] == DealType.NEW_BUSINESS]

    out = pd.DataFrame(index=ids)
    given_since = accounts["customer_since"].set_axis(ids)
    first_new = new_won.groupby("account_id")["close_date"].min()
    first_any = won.groupby("account_id")["close_date"].min()
    since = given_since.fillna(first_new.reindex(ids)).fillna(first_any.reindex(ids))
    out["customer_since"] = since

    given_churn = accounts["churned_at"].set_axis(ids)
    lost_renewal = (
        lost[lost["deal_type"] == DealType.RENEWAL].groupby("account_id")["close_date"].max()
    )
    last_win = won.groupby("account_id")["close_date"].max()
    derived_churn = lost_renewal.where(~(last_win.reindex(lost_renewal.index) > lost_renewal))
    churned = given_churn.fillna(derived_churn.reindex(ids))
    churned = churned.where(since.notna() & ~(churned < since))
    out["churned_at"] = churned

    out["is_customer"] = since.notna().to_numpy()
    out["active"] = (since.notna() & ~(churned <= as_of)).to_numpy()
    out["nb_won"] = _count(new_won, ids)
    out["nb_lost"] = _count(new_lost, ids)

    _retention(out, won, as_of=as_of, settings=settings)

    cycle = (new_won["close_date"] - new_won["created_at"]).dt.total_seconds() / 86_400
    cycle = cycle[cycle >= 0]
    _sums(out, "cycle", cycle, new_won.loc[cycle.index, "account_id"], ids)
    priced = new_won[new_won["amount"] > 0]
    _sums(out, "acv", priced["amount"], priced["account_id"], ids)

    out["arr"] = _arr_at(won, ids, as_of, settings.window_months) * out["active"]
    snapshot = settings.snapshot_fields
    for column in ("nps", "adoption"):
        values = accounts[column].set_axis(ids)
        out[column] = values.where(out["is_customer"]) if snapshot else np.nan
    return out


def _count(frame: pd.DataFrame, ids: pd.Index) -> np.ndarray:
    return frame.groupby("account_id").size().reindex(ids, fill_value=0).to_numpy()


def _sums(
    out: pd.DataFrame, prefix: str, values: pd.Series, keys: pd.Series, ids: pd.Index
) -> None:
    frame = pd.DataFrame({"key": keys.to_numpy(), "v": values.to_numpy(dtype=float)})
    frame["sq"] = frame["v"] ** 2
    grouped = frame.groupby("key").agg(total=("v", "sum"), n=("v", "size"), sq=("sq", "sum"))
    grouped = grouped.reindex(ids, fill_value=0)
    out[f"{prefix}_sum"] = grouped["total"].to_numpy()
    out[f"{prefix}_n"] = grouped["n"].to_numpy()
    out[f"{prefix}_sq"] = grouped["sq"].to_numpy()


def _arr_at(won: pd.DataFrame, ids: pd.Index, moment: pd.Timestamp, months: int) -> np.ndarray:
    start = moment - pd.DateOffset(months=months)
    recent = won[(won["close_date"] > start) & (won["close_date"] <= moment)]
    return recent.groupby("account_id")["amount"].sum().reindex(ids, fill_value=0.0).to_numpy()


def _retention(
    out: pd.DataFrame, won: pd.DataFrame, *, as_of: pd.Timestamp, settings: LifecycleSettings
) -> None:
    ids = out.index
    since = out["customer_since"]
    churned = out["churned_at"]
    eligible = np.zeros(len(out), dtype=np.int64)
    retained = np.zeros(len(out), dtype=np.int64)
    arr_start = np.zeros(len(out))
    arr_end = np.zeros(len(out))
    months = settings.window_months
    for k in range(settings.windows):
        end = as_of - pd.DateOffset(months=months * k)
        start = end - pd.DateOffset(months=months)
        alive_at_start = (since <= start) & ~(churned <= start)
        survived = alive_at_start & ~(churned <= end)
        eligible += alive_at_start.to_numpy(dtype=np.int64)
        retained += survived.to_numpy(dtype=np.int64)
        begin_arr = _arr_at(won, ids, start, months)
        finish_arr = _arr_at(won, ids, end, months)
        counted = alive_at_start.to_numpy() & (begin_arr > 0)
        arr_start += np.where(counted, begin_arr, 0.0)
        arr_end += np.where(counted & survived.to_numpy(), finish_arr, 0.0)
    out["eligible"] = eligible
    out["retained"] = retained
    out["arr_start"] = arr_start
    out["arr_end"] = arr_end
