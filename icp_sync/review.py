"""Review an ICP version: did its predictions come true after its as-of date?

Reads the mirror up to the end of its observed history (never the wall clock), scores the
accounts as the version would have on its as-of date, and compares what happened next.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from statsmodels.stats.proportion import proportions_ztest

from icp_sync.config import Settings
from icp_sync.diagnostics import observation_window
from icp_sync.errors import PipelineError
from icp_sync.icp import from_toml
from icp_sync.lifecycle import LifecycleSettings, account_outcomes, history_as_of
from icp_sync.model import CrmObject, DealType, Tier
from icp_sync.scoring import build_tal, load_model, score
from icp_sync.store import Store

__all__ = ["review"]


def review(
    settings: Settings, store: Store, *, now: datetime, version: str | None = None
) -> dict[str, Any]:
    """What happened after an ICP version's as-of date: did its predictions come true?

    Compares, for deals closed and customers observed after the as-of date, the new-business
    win rate and logo retention of Green accounts with the rest, and the conversion of the
    TAL the version would have produced with the other prospects.
    """
    stored = store.icp_version(version)
    if stored is None:
        raise PipelineError("no ICP version to review: run `icp-sync derive` first")
    definition = from_toml(stored.definition, source=f"stored {stored.version}")
    as_of = pd.Timestamp(stored.as_of)
    then = score(
        settings,
        store,
        now=now,
        definition=definition,
        model=load_model(stored.model),
        as_of=stored.as_of,
        keep=False,
    )
    accounts = store.load_frame(CrmObject.ACCOUNT)
    opportunities = store.load_frame(CrmObject.OPPORTUNITY)
    # what happened after the as-of date is read up to the end of the history, not today
    end = observation_window(accounts, opportunities, pd.Timestamp(now)).end
    tiers = then.frame.set_index("account_id")["rule_tier"]
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
        *history_as_of(accounts, opportunities, end),
        as_of=end,
        settings=LifecycleSettings(windows=1, snapshot_fields=False),
    )
    active_then = then.frame.set_index("account_id")
    customers_then = active_then.index[active_then["is_customer"]]
    churned = lifecycle["churned_at"].reindex(customers_then)
    retained = ~(churned > as_of)
    tier_then = active_then.loc[customers_then, "rule_tier"]
    retention = {str(t): _rate(retained[tier_then == str(t)]) for t in Tier}
    retention["rest"] = _rate(retained[tier_then != str(Tier.GREEN)])
    retention_test = _compare(
        retained[tier_then == str(Tier.GREEN)], retained[tier_then != str(Tier.GREEN)]
    )
    tal_members, _ = build_tal(then.frame, definition, settings.tal.size)
    prospects = then.frame[~then.frame["is_customer"] & (then.frame["tier"] != str(Tier.RED))]
    converted = lifecycle["customer_since"].reindex(prospects["account_id"]).gt(as_of).to_numpy()
    in_tal = prospects["account_id"].isin(tal_members["account_id"]).to_numpy()
    conversion = {
        "tal": _rate(pd.Series(converted[in_tal])),
        "other_prospects": _rate(pd.Series(converted[~in_tal])),
    }
    conversion_test = _compare(pd.Series(converted[in_tal]), pd.Series(converted[~in_tal]))
    months = (end - as_of).days / 30.44
    return {
        "version": definition.version,
        "as_of": as_of.isoformat(),
        "history_end": end.date().isoformat(),
        "observed_months": round(months, 1),
        "win_rate_after": win | {"green_vs_rest": win_test},
        "retention_after": retention | {"green_vs_rest": retention_test},
        "tal_conversion": conversion
        | {"tal_vs_other": conversion_test, "tal_size": len(tal_members)},
    }


def _rate(values: pd.Series) -> dict[str, float | int | None]:
    n = int(values.count())
    return {"rate": round(float(values.mean()), 4) if n else None, "n": n}


def _compare(a: pd.Series, b: pd.Series) -> dict[str, float | None]:
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
