"""Lifecycle outcomes per account, as of a date: what each account's history says.

Pure: canonical frames and a date in, one row per account out. Only history before
``as_of`` is used, so the same code serves today's ICP and backtests of past ones.

Where the CRM lacks lifecycle fields they are derived from deals:
``customer_since`` is the first won new-business close date, ``churned_at`` a lost renewal
not followed by any win, ARR the value of won deals over the trailing year. Snapshot fields
(NPS, adoption) describe today and are only used when ``as_of`` is today.

Columns of the result (per account; counts are summed, ratios are left to the segments):

========================  ==================================================================
``is_customer``           became a customer on or before ``as_of``
``active``                a customer not churned by ``as_of``
``nb_won``, ``nb_lost``   closed new-business deals won / lost
``eligible``, ``retained``  1 / 1 when the customer was seen alive ``window_months`` after
                          it started, 1 / 0 when it churned before; 0 / 0 when censored
``km_at_k``, ``km_ev_k``  at risk at month ``k`` of its customer life / churned during it
                          (summed, they give the Kaplan-Meier retention: :mod:`icp_sync.survival`)
``arr_start``, ``arr_end``  ARR at the start / end of the fully observed NRR windows
                          (NRR = sum end / sum start)
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
from icp_sync.survival import km_columns, months_observed

__all__ = ["LifecycleSettings", "account_outcomes", "history_as_of"]


@dataclass(frozen=True, slots=True, kw_only=True)
class LifecycleSettings:
    """Assumptions of the lifecycle metrics.

    Attributes:
        window_months: Length of a logo-retention / NRR window.
        windows: How many consecutive NRR windows, ending at ``as_of``, are pooled.
        snapshot_fields: Use the CRM's current NPS and adoption (only sensible for the
            end of the history).
        observed_from: Start of the observed history; an NRR window that opens before it is
            not counted (partial cohorts are not extrapolated).
    """

    window_months: int = 12
    windows: int = 3
    snapshot_fields: bool = True
    observed_from: pd.Timestamp | None = None


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
    n = len(ids)
    # every deal gets its account's row number once; all grouping is then on integers
    position = ids.get_indexer(opportunities["account_id"])
    deals = _Deals.of(opportunities, position, as_of)
    new_won = deals.won & deals.new_business
    new_lost = deals.lost & deals.new_business

    out = pd.DataFrame(index=ids)
    first_new = deals.first(new_won, n)
    first_any = deals.first(deals.won, n)
    given_since = _naive(accounts["customer_since"])
    since = np.where(
        pd.isna(given_since), np.where(pd.isna(first_new), first_any, first_new), given_since
    )
    lost_renewal = deals.last(deals.lost & deals.renewal, n)
    last_win = deals.last(deals.won, n)
    derived_churn = np.where(last_win > lost_renewal, np.datetime64("NaT"), lost_renewal)
    given_churn = _naive(accounts["churned_at"])
    churned = np.where(pd.isna(given_churn), derived_churn, given_churn)
    # a churn before the account ever was a customer cannot be measured: left out, and said
    ignored = ~pd.isna(churned) & (pd.isna(since) | (churned < since))
    churned = np.where(ignored, np.datetime64("NaT"), churned)
    out["customer_since"] = pd.DatetimeIndex(since).tz_localize("UTC")
    out["churned_at"] = pd.DatetimeIndex(churned).tz_localize("UTC")
    cut = np.datetime64(deals.as_of)
    is_customer = ~pd.isna(since)
    active = is_customer & ~(churned <= cut)
    out["is_customer"] = is_customer
    out["churn_ignored"] = ignored
    out["active"] = active
    out["nb_won"] = np.bincount(deals.key[new_won], minlength=n)
    out["nb_lost"] = np.bincount(deals.key[new_lost], minlength=n)

    months, event = months_observed(since, churned, cut)
    horizon = settings.window_months
    out["eligible"] = ((months >= horizon) | (event & (months < horizon))).astype(np.int64)
    out["retained"] = (months >= horizon).astype(np.int64)
    km = km_columns(months, event, horizon)
    km.index = out.index
    out[km.columns] = km
    _nrr(out, deals, since, churned, settings=settings)

    cycle = (deals.close - deals.created).astype("timedelta64[s]").astype(float) / 86_400
    timed = new_won & (cycle >= 0)
    _sums(out, "cycle", deals.key[timed], cycle[timed], n)
    priced = new_won & (deals.amount > 0)
    _sums(out, "acv", deals.key[priced], deals.amount[priced], n)

    out["arr"] = deals.arr_at(cut, settings.window_months, n) * active
    for column in ("nps", "adoption"):
        values = accounts[column].to_numpy(dtype=float)
        out[column] = np.where(is_customer, values, np.nan) if settings.snapshot_fields else np.nan
    return out


def _naive(series: pd.Series) -> np.ndarray:
    """UTC datetimes as naive datetime64[ns] (NaT kept)."""
    return np.asarray(
        series.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(), dtype="datetime64[ns]"
    )


@dataclass(frozen=True, slots=True)
class _Deals:
    """Deal columns as arrays, with each deal's account row number (``key``)."""

    key: np.ndarray
    close: np.ndarray
    created: np.ndarray
    amount: np.ndarray
    won: np.ndarray
    lost: np.ndarray
    new_business: np.ndarray
    renewal: np.ndarray
    as_of: np.datetime64

    @classmethod
    def of(cls, opportunities: pd.DataFrame, position: np.ndarray, as_of: pd.Timestamp) -> _Deals:
        known = position >= 0
        opps = opportunities[known]
        close = _naive(opps["close_date"])
        cut = np.datetime64(pd.Timestamp(as_of).tz_convert("UTC").tz_localize(None), "ns")
        closed = opps["is_closed"].to_numpy(dtype=bool) & (close <= cut)
        won = opps["is_won"].to_numpy(dtype=bool) & closed
        kind = opps["deal_type"].astype("string").to_numpy(dtype=object)
        return cls(
            key=position[known],
            close=close,
            created=_naive(opps["created_at"]),
            amount=opps["amount"].to_numpy(dtype=float),
            won=won,
            lost=closed & ~won,
            new_business=kind == DealType.NEW_BUSINESS,
            renewal=kind == DealType.RENEWAL,
            as_of=cut,
        )

    def first(self, mask: np.ndarray, n: int) -> np.ndarray:
        """Earliest close date per account among ``mask`` deals (NaT when none)."""
        return _extreme(self.key[mask], self.close[mask], n, np.minimum)

    def last(self, mask: np.ndarray, n: int) -> np.ndarray:
        """Latest close date per account among ``mask`` deals (NaT when none)."""
        return _extreme(self.key[mask], self.close[mask], n, np.maximum)

    def arr_at(self, moment: np.datetime64, months: int, n: int) -> np.ndarray:
        """Won deal value per account over the ``months`` before ``moment``."""
        start = np.datetime64(pd.Timestamp(moment) - pd.DateOffset(months=months), "ns")
        recent = self.won & (self.close > start) & (self.close <= moment)
        return np.bincount(self.key[recent], weights=self.amount[recent], minlength=n)


def _extreme(key: np.ndarray, values: np.ndarray, n: int, ufunc: np.ufunc) -> np.ndarray:
    ticks = values.astype("int64")
    fill = np.iinfo(np.int64).max if ufunc is np.minimum else np.iinfo(np.int64).min
    out = np.full(n, fill, dtype=np.int64)
    ufunc.at(out, key, ticks)
    result = out.astype("datetime64[ns]")
    result[out == fill] = np.datetime64("NaT")
    return result


def _sums(out: pd.DataFrame, prefix: str, key: np.ndarray, values: np.ndarray, n: int) -> None:
    out[f"{prefix}_sum"] = np.bincount(key, weights=values, minlength=n)
    out[f"{prefix}_n"] = np.bincount(key, minlength=n)
    out[f"{prefix}_sq"] = np.bincount(key, weights=values**2, minlength=n)


def _nrr(
    out: pd.DataFrame,
    deals: _Deals,
    since: np.ndarray,
    churned: np.ndarray,
    *,
    settings: LifecycleSettings,
) -> None:
    n = len(out)
    arr_start = np.zeros(n)
    arr_end = np.zeros(n)
    months = settings.window_months
    first = settings.observed_from
    floor = None if first is None else pd.Timestamp(first).tz_convert("UTC").tz_localize(None)
    for k in range(settings.windows):
        end = np.datetime64(pd.Timestamp(deals.as_of) - pd.DateOffset(months=months * k), "ns")
        start = np.datetime64(pd.Timestamp(end) - pd.DateOffset(months=months), "ns")
        # a window that opens before the history does was never observed at its start
        if floor is not None and pd.Timestamp(start) < floor:
            continue
        alive_at_start = (since <= start) & ~(churned <= start)
        survived = alive_at_start & ~(churned <= end)
        begin_arr = deals.arr_at(start, months, n)
        finish_arr = deals.arr_at(end, months, n)
        counted = alive_at_start & (begin_arr > 0)
        arr_start += np.where(counted, begin_arr, 0.0)
        arr_end += np.where(counted & survived, finish_arr, 0.0)
    out["arr_start"] = arr_start
    out["arr_end"] = arr_end
