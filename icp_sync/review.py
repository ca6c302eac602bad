"""The backtest: did an ICP version's predictions come true after its as-of date? (pure)

Compares, for deals closed and customers observed after the as-of date, the new-business
win rate and logo retention of Green accounts with the rest, and the conversion of the TAL
the version would have produced with the other prospects.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from icp_sync.icp import IcpDefinition
from icp_sync.lifecycle import LifecycleSettings, account_outcomes, history_as_of
from icp_sync.model import DealType, Tier
from icp_sync.tiering import build_tal

__all__ = ["MIN_MONTHS", "MIN_N", "backtest"]

MIN_MONTHS = 3.0
"""Below this many months after the as-of date, retention and conversion are not judged."""
MIN_N = 5
"""Below this many deals or accounts in a group, its rate is not reported (``rate`` is null)."""


def backtest(
    then: pd.DataFrame,
    definition: IcpDefinition,
    accounts: pd.DataFrame,
    opportunities: pd.DataFrame,
    *,
    as_of: pd.Timestamp,
    now: pd.Timestamp,
    tal_size: int,
) -> dict[str, Any]:
    """Measure what happened after ``as_of`` to the accounts as they were scored then.

    Args:
        then: The accounts scored with ``definition`` on the history before ``as_of``.
        definition: The ICP version under review.
        accounts: Every account in the mirror today.
        opportunities: Every opportunity in the mirror today.
        as_of: The version's as-of date.
        now: The end of the observation: the end of the observed history.
        tal_size: The size of the TAL the version would have produced.
    """
    tiers = then.set_index("account_id")["rule_tier"]
    deals = opportunities[
        (opportunities["deal_type"] == DealType.NEW_BUSINESS)
        & opportunities["is_closed"]
        & (opportunities["close_date"] > as_of)
        & opportunities["account_id"].isin(tiers.index)
    ]
    deal_tier = deals["account_id"].map(tiers)
    win = {str(t): _rate(deals["is_won"][deal_tier == str(t)]) for t in Tier}
    win["rest"] = _rate(deals["is_won"][deal_tier != str(Tier.GREEN)])
    win_test = _compare(
        deals["is_won"][deal_tier == str(Tier.GREEN)], deals["is_won"][deal_tier != str(Tier.GREEN)]
    )
    lifecycle = account_outcomes(
        *history_as_of(accounts, opportunities, now),
        as_of=now,
        settings=LifecycleSettings(windows=1, snapshot_fields=False),
    )
    active_then = then.set_index("account_id")
    customers_then = active_then.index[active_then["is_customer"]]
    churned = lifecycle["churned_at"].reindex(customers_then)
    retained = ~(churned > as_of)
    tier_then = active_then.loc[customers_then, "rule_tier"]
    retention = {str(t): _rate(retained[tier_then == str(t)]) for t in Tier}
    retention["rest"] = _rate(retained[tier_then != str(Tier.GREEN)])
    retention_test = _compare(
        retained[tier_then == str(Tier.GREEN)], retained[tier_then != str(Tier.GREEN)]
    )
    tal_members, _ = build_tal(then, definition, tal_size)
    prospects = then[~then["is_customer"] & (then["tier"] != str(Tier.RED))]
    converted = lifecycle["customer_since"].reindex(prospects["account_id"]).gt(as_of).to_numpy()
    in_tal = prospects["account_id"].isin(tal_members["account_id"]).to_numpy()
    conversion = {
        "tal": _rate(pd.Series(converted[in_tal])),
        "other_prospects": _rate(pd.Series(converted[~in_tal])),
    }
    conversion_test = _compare(pd.Series(converted[in_tal]), pd.Series(converted[~in_tal]))
    months = (now - as_of).days / 30.44
    enough_time = months >= MIN_MONTHS
    if not enough_time:
        # nobody can have churned or converted yet: 100% retention would be a fake result
        retention = {key: {"rate": None, "n": part["n"]} for key, part in retention.items()}
        retention_test = {"lift": None, "p_value": None}
        conversion = {key: {"rate": None, "n": part["n"]} for key, part in conversion.items()}
        conversion_test = {"lift": None, "p_value": None}
    judged = [*win.values(), *retention.values(), *conversion.values()]
    return {
        "version": definition.version,
        "as_of": as_of.isoformat(),
        "history_end": now.date().isoformat(),
        "observed_months": round(months, 1),
        "enough_data": any(part["rate"] is not None for part in judged),
        "note": _note(months, enough_time),
        "win_rate_after": win | {"green_vs_rest": win_test},
        "retention_after": retention | {"green_vs_rest": retention_test},
        "tal_conversion": conversion
        | {"tal_vs_other": conversion_test, "tal_size": len(tal_members)},
    }


def _note(months: float, enough_time: bool) -> str:
    if not enough_time:
        return (
            f"only {months:.1f} months observed after the as-of date (at least "
            f"{MIN_MONTHS:.0f} needed): not enough data to judge retention or conversion"
        )
    return f"rates need at least {MIN_N} deals or accounts per group; fewer: not enough data"


def _rate(values: pd.Series) -> dict[str, float | int | None]:
    n = int(values.count())
    return {"rate": round(float(values.mean()), 4) if n >= MIN_N else None, "n": n}


def _compare(a: pd.Series, b: pd.Series) -> dict[str, float | None]:
    from statsmodels.stats.proportion import proportions_ztest

    if a.count() < 5 or b.count() < 5:
        return {"lift": None, "p_value": None}
    rate_a, rate_b = float(a.mean()), float(b.mean())
    counts = np.array([int(a.sum()), int(b.sum())])
    sizes = np.array([int(a.count()), int(b.count())])
    if counts.sum() in (0, sizes.sum()):
        return {"lift": None, "p_value": None}
    _, p = proportions_ztest(counts, sizes)
    return {
        "lift": round(rate_a / rate_b, 3) if rate_b else None,
        "p_value": float(p),
    }
