"""Tiers, fit scores, reasons and the Target Account List under one ICP version (pure).

Frames in, frames out: the accounts (with their segment dimensions), their lifecycle
outcomes, an ICP definition and its look-alike model become one row per account with its
tier, 0-100 score, segment and reasons; the TAL is the best-fit prospects of that frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from icp_sync.icp import IcpDefinition, assign_tiers, rule_label
from icp_sync.model import Tier
from icp_sync.reasons import compose, tier_counts
from icp_sync.segments import members
from icp_sync.text import neutralize_list

if TYPE_CHECKING:
    from datetime import datetime

    from icp_sync.diagnostics import ObservationWindow
    from icp_sync.lookalike import LookalikeModel

__all__ = [
    "OUTCOME_INPUTS",
    "ScoreResult",
    "TalResult",
    "build_tal",
    "fitted_model",
    "rule_lifts",
    "score",
]

TAL_COLUMNS = ["account_id", "name", "rank", "score", "tier", "segment", "reasons"]
OUTCOME_INPUTS = ("is_customer",)
"""The only outcome columns :func:`score` reads (an account's score depends on its own row of
``accounts`` and these)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ScoreResult:
    """Every account's tier, score, segment and reasons under one ICP version."""

    version: str
    frame: pd.DataFrame
    tiers: dict[str, int]
    overrides: dict[str, int]
    invalid_overrides: int
    model: dict[str, Any]


def score(
    accounts: pd.DataFrame,
    outcomes: pd.DataFrame,
    definition: IcpDefinition,
    model: LookalikeModel | None,
    *,
    green_min_score: float,
) -> ScoreResult:
    """Tier and score every account.

    Args:
        accounts: One row per account, with the segment dimensions of ``definition``.
        outcomes: The accounts' lifecycle outcomes, row-aligned with ``accounts``.
        definition: The ICP version to apply.
        model: Its look-alike model; without one, segment lifts rank the accounts.
        green_min_score: Below this score a Green-segment account is shown as Yellow.
    """
    from icp_sync.lookalike import score_accounts
    from icp_sync.similar import similar_customers

    lifts = rule_lifts(accounts, definition)
    fitted = fitted_model(definition, model)
    scores = score_accounts(fitted, accounts, fallback=lifts)
    assignment = assign_tiers(
        accounts, definition, scores=scores.score, green_min_score=green_min_score
    )
    keys = [d for d in definition.dimensions[:2] if d in accounts.columns]
    reference = fitted.reference if fitted.reference is not None else pd.DataFrame()
    similar = similar_customers(accounts, reference, keys=keys)
    note = "" if fitted.pipeline is not None else f"({fitted.fallback_reason}.)"
    reasons = compose(
        assignment.frame, definition, signals=scores.signals, similar=similar, note=note
    )
    frame = pd.DataFrame(
        {
            "account_id": accounts["account_id"].astype(str).to_numpy(),
            "name": accounts["name"].astype("string").to_numpy(),
            "tier": assignment.frame["tier"].to_numpy(),
            "rule_tier": assignment.frame["rule_tier"].to_numpy(),
            "score": scores.score.to_numpy(dtype=int),
            "segment": assignment.frame["segment"].astype(str).to_numpy(),
            "reasons": reasons.to_numpy(),
            "overridden": assignment.frame["overridden"].to_numpy(dtype=bool),
            "is_customer": outcomes["is_customer"].to_numpy(dtype=bool),
        }
    )
    return ScoreResult(
        version=definition.version,
        frame=frame,
        tiers=tier_counts(frame["tier"]),
        overrides=assignment.overrides,
        invalid_overrides=assignment.invalid_overrides,
        model=fitted.summary(),
    )


def fitted_model(definition: IcpDefinition, model: LookalikeModel | None) -> LookalikeModel:
    """``model``, or the stand-in that scores by segment rules when the version has none."""
    from icp_sync.lookalike import LookalikeModel

    return model or LookalikeModel(
        pipeline=None,
        dimensions=definition.dimensions,
        fallback_reason="no look-alike model for this ICP version; scores come from segment rules",
    )


def rule_lifts(accounts: pd.DataFrame, definition: IcpDefinition) -> pd.Series:
    """Each account's segment lift under the definition's rules (Red first, then Green)."""
    lift = pd.Series(1.0, index=accounts.index)
    decided = np.zeros(len(accounts), dtype=bool)
    for tier in (Tier.RED, Tier.GREEN):
        for rule in definition.rules_of(tier):
            mask = members(accounts, rule.rule) & ~decided
            lift[mask] = rule.lift if np.isfinite(rule.lift) else 1.0
            decided |= mask
    return lift


@dataclass(frozen=True, slots=True, kw_only=True)
class TalResult:
    """A Target Account List."""

    name: str
    version: str
    accounts: pd.DataFrame
    coverage: dict[str, Any]
    tal_id: int | None
    as_of: datetime | None = None
    """The ICP version's as-of date (what its segments were measured on)."""
    window: ObservationWindow | None = None
    """The history the accounts were scored on."""

    def as_dict(self) -> dict[str, Any]:
        """The ``tal --json`` document (contract: ``version`` and ``accounts``)."""
        records = self.accounts[TAL_COLUMNS].astype(object)
        records = records.where(self.accounts[TAL_COLUMNS].notna(), None)
        for column in ("name", "segment"):
            records[column] = records[column].map(
                lambda v: None if v is None else neutralize_list(str(v))
            )
        return {
            "name": self.name,
            "version": self.version,
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "observation_window": self.window.as_dict() if self.window else None,
            "size": len(self.accounts),
            "coverage": self.coverage,
            "accounts": records.to_dict("records"),
        }


def build_tal(
    scored: pd.DataFrame, definition: IcpDefinition, size: int
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Top ``size`` prospects (not customers, not Red) by fit, with Green-segment coverage."""
    prospects = scored[~scored["is_customer"] & (scored["tier"] != str(Tier.RED))]
    tier_order = prospects["tier"].map({str(Tier.GREEN): 0, str(Tier.YELLOW): 1}).fillna(2)
    ranked = prospects.assign(_tier=tier_order).sort_values(
        ["score", "_tier", "account_id"], ascending=[False, True, True]
    )
    chosen = ranked.head(size).drop(columns="_tier").reset_index(drop=True)
    chosen.insert(2, "rank", np.arange(1, len(chosen) + 1))
    green_labels = [rule_label(r.rule) for r in definition.rules_of(Tier.GREEN)]
    by_segment = {label: int((chosen["segment"] == label).sum()) for label in green_labels}
    coverage = {
        "tiers": tier_counts(chosen["tier"]),
        "green_share": round(float((chosen["tier"] == str(Tier.GREEN)).mean()), 4)
        if len(chosen)
        else 0.0,
        "green_segments": by_segment,
        "green_segments_covered": sum(1 for n in by_segment.values() if n > 0),
        "prospects_considered": len(prospects),
        "accounts": len(scored),
        "customers": int(scored["is_customer"].sum()),
        "red_prospects": int((~scored["is_customer"] & (scored["tier"] == str(Tier.RED))).sum()),
    }
    return chosen, coverage
