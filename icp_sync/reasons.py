"""Readable reasons for an account's tier and score, as a sales rep sees them in the CRM.

"Healthcare, 200-999 employees: 95% logo retention, 44% win rate, 112% NRR (company: 84%,
21%, 98%). Strongest signals: Healthcare, 200-999 employees; uses Snowflake. Looks like
your customers Acme Health, Globex Care, Initech Med."

Pure: frames in, strings out.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from icp_sync.icp import IcpDefinition, rule_label
from icp_sync.model import Tier
from icp_sync.text import neutralize_list

__all__ = ["compose", "metric_sentence"]

_SHOWN = (
    ("retention", "logo retention"),
    ("win_rate", "win rate"),
    ("nrr", "NRR"),
)


def metric_sentence(metrics: Mapping[str, float], baseline: Mapping[str, float]) -> str:
    """``95% logo retention, 44% win rate, 112% NRR (company: 84%, 21%, 98%)``."""
    parts, base = [], []
    for key, words in _SHOWN:
        value = metrics.get(key)
        if value is None or not np.isfinite(value):
            continue
        parts.append(f"{value:.0%} {words}")
        reference = baseline.get(key)
        base.append(f"{reference:.0%}" if reference is not None and np.isfinite(reference) else "?")
    if not parts:
        return ""
    return f"{', '.join(parts)} (company: {', '.join(base)})"


def compose(
    tiers: pd.DataFrame,
    definition: IcpDefinition,
    *,
    signals: pd.Series,
    similar: pd.Series,
    note: str = "",
) -> pd.Series:
    """One reason text per account.

    Args:
        tiers: :class:`~icp_sync.icp.TierAssignment` frame (``tier``, ``rule_tier``,
            ``segment``, ``overridden``).
        definition: The ICP in force (rule metrics and the company baseline).
        signals: Strongest look-alike signals per account (may be empty strings).
        similar: Names of the most similar best customers per account.
        note: A sentence added to every account (e.g. why there is no look-alike model).
    """
    evidence: dict[str, str] = {}
    for rule in definition.rules:
        label = rule_label(rule.rule)
        sentence = metric_sentence(rule.metrics, definition.baseline)
        if rule.source == "exclusion":
            sentence = "excluded from the ICP (a segment we cannot serve)"
        evidence.setdefault(label, sentence)
    raw_segment = tiers["segment"].astype(str)
    matched = raw_segment.map(evidence).astype(object)  # all-missing would otherwise be float
    yellow = "outcomes in line with the company average"
    # values from the export are neutralised where they enter; our own numbers are not
    segment = _neutralized(raw_segment)
    signals = _neutralized(signals.astype(str))
    similar = _neutralized(similar.astype(str))
    first = segment + ": " + matched.fillna(yellow)
    first = first.where(matched.ne("") | matched.isna(), segment)
    text = first + "."
    has_signals = signals.astype(str).str.len() > 0
    text = text.where(~has_signals, text + " Strongest signals: " + signals.astype(str) + ".")
    has_similar = similar.astype(str).str.len() > 0
    text = text.where(
        ~has_similar, text + " Looks like your customers " + similar.astype(str) + "."
    )
    overridden = tiers["overridden"].astype(bool)
    by_hand = (
        "Tier set by hand: "
        + tiers["tier"].astype(str)
        + " (ICP rules say "
        + tiers["rule_tier"].astype(str)
        + "). "
    )
    text = text.where(~overridden, by_hand + text)
    if note:
        text = text + " " + note
    return text.str.strip()


def _neutralized(values: pd.Series) -> pd.Series:
    """:func:`neutralize_list` of every value, computed once per distinct value."""
    codes, uniques = pd.factorize(values.to_numpy(dtype=object))
    texts = np.array([neutralize_list(str(u)) for u in uniques] + [""], dtype=object)
    return pd.Series(texts[codes], index=values.index, dtype=object)


def tier_counts(tiers: pd.Series) -> dict[str, int]:
    """Accounts per tier, every tier present (zero when empty)."""
    return {str(t): int((tiers == str(t)).sum()) for t in Tier}
