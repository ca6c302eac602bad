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
    # values from the export are neutralised where they enter; our own numbers are not
    segment = _neutralized(raw_segment).to_numpy(dtype=object)
    signal_texts = _neutralized(signals.astype(str)).to_numpy(dtype=object)
    similar_texts = _neutralized(similar.astype(str)).to_numpy(dtype=object)
    matched = [evidence.get(value) for value in raw_segment.to_numpy(dtype=object)]
    overridden = tiers["overridden"].astype(bool).to_numpy(dtype=bool)
    tier = tiers["tier"].astype(str).to_numpy(dtype=object)
    rule_tier = tiers["rule_tier"].astype(str).to_numpy(dtype=object)
    texts = [
        _reason(row, note=note)
        for row in zip(
            segment, matched, signal_texts, similar_texts, overridden, tier, rule_tier, strict=True
        )
    ]
    return pd.Series(texts, index=tiers.index, dtype=object)


_YELLOW = "outcomes in line with the company average"


_Row = tuple[str, str | None, str, str, bool, str, str]


def _reason(row: _Row, *, note: str) -> str:
    """One account's reason text (a segment without a rule is Yellow: "in line").

    ``row``: neutralised segment, its evidence sentence (None: no rule), signals, similar
    customers, whether the tier was set by hand, the tier and the tier the rules give.
    """
    segment, matched, signals, similar, overridden, tier, rule_tier = row
    if matched is None:
        text = f"{segment}: {_YELLOW}."
    elif matched:
        text = f"{segment}: {matched}."
    else:
        text = f"{segment}."
    if signals:
        text = f"{text} Strongest signals: {signals}."
    if similar:
        text = f"{text} Looks like your customers {similar}."
    if overridden:
        text = f"Tier set by hand: {tier} (ICP rules say {rule_tier}). {text}"
    if note:
        text = f"{text} {note}"
    return text.strip()


def _neutralized(values: pd.Series) -> pd.Series:
    """:func:`neutralize_list` of every value, computed once per distinct value."""
    codes, uniques = pd.factorize(values.to_numpy(dtype=object))
    texts = np.array([neutralize_list(str(u)) for u in uniques] + [""], dtype=object)
    return pd.Series(texts[codes], index=values.index, dtype=object)


def tier_counts(tiers: pd.Series) -> dict[str, int]:
    """Accounts per tier, every tier present (zero when empty)."""
    return {str(t): int((tiers == str(t)).sum()) for t in Tier}
