"""The annual review of a commitment: did the committed ICP's predictions hold? (pure)

A commitment freezes an ICP version derived before the period; the period is therefore
out-of-sample, and its outcomes can falsify the ICP. Three predictions are checked, each as a
difference of rates with its 95% interval (Newcombe) and a verdict (``held``: the interval is
above zero; ``failed``: below zero; ``not shown``: it contains zero; ``not enough data``):

- Green accounts win more new-business deals than the rest (deals closed in the period);
- Green customers churn less than the rest (customers at the period start, over the period);
- TAL prospects convert more than the other eligible (non-Red) prospects.

Then every segment (the ``derive`` dimensions and depth, at least ``min_accounts`` accounts)
is tested on the period's win rate against the other deals, with the false discovery rate
held over all of them (Benjamini-Hochberg): a committed Green rule that no longer wins more is
proposed for Yellow (not significantly better, and short of the minimum lift), a Red rule
that wins like the rest for review, a Yellow segment that wins
at least ``1 + min_lift`` times the rest for Green, and one at most ``1 - min_lift`` for Red.
The proposal is a refined definition (:func:`refine`) that ``icp-sync activate FILE`` takes and
the next ``derive`` is checked against.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from icp_sync.adherence import Period, deal_tiers
from icp_sync.estimates import MIN_RATE_N, compare_rates, rate_estimate
from icp_sync.icp import IcpDefinition, SegmentRule, rule_label
from icp_sync.model import DealType, Tier
from icp_sync.segments import members

__all__ = ["predictions", "refine", "segment_changes"]


def _key(rule: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in rule.items()))


def _verdict(test: dict[str, Any]) -> str:
    if not test.get("supported"):
        return "not enough data"
    if test["low"] > 0:
        return "held"
    if test["high"] < 0:
        return "failed"
    return "not shown"


def _check(name: str, a: pd.Series, b: pd.Series, labels: tuple[str, str]) -> dict[str, Any]:
    test = compare_rates(int(a.sum()), len(a), int(b.sum()), len(b))
    return {
        "prediction": name,
        labels[0]: rate_estimate(int(a.sum()), len(a)),
        labels[1]: rate_estimate(int(b.sum()), len(b)),
        "difference": test,
        "verdict": _verdict(test),
    }


def predictions(
    accounts: pd.DataFrame,
    opportunities: pd.DataFrame,
    *,
    period: Period,
    tal: frozenset[str],
    now: pd.Timestamp,
) -> list[dict[str, Any]]:
    """Check the three predictions of the committed ICP over ``period`` (up to ``now``).

    Args:
        accounts: ``account_id``, ``tier`` (under the committed version), ``customer_since``,
            ``churned_at``.
        opportunities: Canonical opportunities.
        period: The commitment period.
        tal: The committed TAL's account ids.
        now: The end of the observed history.
    """
    until = min(period.end, now)
    tiers = accounts.set_index("account_id")["tier"].astype(str)
    nb = opportunities[opportunities["deal_type"] == str(DealType.NEW_BUSINESS)]
    closed = nb[nb["is_closed"] & (nb["close_date"] >= period.start) & (nb["close_date"] < until)]
    green_deal = deal_tiers(closed, tiers) == str(Tier.GREEN)
    won = closed["is_won"].astype(bool)
    since, churned = accounts["customer_since"], accounts["churned_at"]
    customers = accounts[(since < period.start) & ~(churned < period.start)]
    kept = ~(customers["churned_at"] < until)
    green_customer = customers["tier"] == str(Tier.GREEN)
    prospects = accounts[~(since < period.start) & (accounts["tier"] != str(Tier.RED))]
    won_ids = set(closed.loc[won, "account_id"])
    converted = prospects["account_id"].isin(won_ids)
    on_tal = prospects["account_id"].isin(tal)
    return [
        _check("Green wins more new business than the rest", won[green_deal], won[~green_deal],
               ("green", "rest")),
        _check("Green customers are retained more than the rest", kept[green_customer],
               kept[~green_customer], ("green", "rest")),
        _check("TAL prospects convert more than other prospects", converted[on_tal],
               converted[~on_tal], ("tal", "other_prospects")),
    ]  # fmt: skip


def _segments(
    accounts: pd.DataFrame, dims: Sequence[str], depth: int, min_accounts: int
) -> list[dict[str, str]]:
    rules = []
    for size in range(1, depth + 1):
        for combo in itertools.combinations(dims, size):
            counts = accounts.groupby([accounts[d].astype("string") for d in combo]).size()
            for key, n in counts.items():
                if n >= min_accounts:
                    values = key if isinstance(key, tuple) else (key,)
                    rules.append({d: str(v) for d, v in zip(combo, values, strict=True)})
    return rules


def segment_changes(
    accounts: pd.DataFrame,
    opportunities: pd.DataFrame,
    definition: IcpDefinition,
    *,
    period: Period,
    now: pd.Timestamp,
    max_depth: int = 2,
    min_accounts: int = 30,
    fdr: float = 0.05,
    min_lift: float = 0.15,
) -> pd.DataFrame:
    """Segments whose period win rate contradicts their committed tier (see module docstring).

    ``accounts`` carries the definition's dimension columns and ``tier``.
    """
    from statsmodels.stats.multitest import multipletests
    from statsmodels.stats.proportion import test_proportions_2indep

    until = min(period.end, now)
    nb = opportunities[opportunities["deal_type"] == str(DealType.NEW_BUSINESS)]
    closed = nb[nb["is_closed"] & (nb["close_date"] >= period.start) & (nb["close_date"] < until)]
    by_account = closed.groupby("account_id")["is_won"].agg(["sum", "count"])
    stats = by_account.reindex(accounts["account_id"]).fillna(0).to_numpy()
    total_won, total_n = stats[:, 0].sum(), stats[:, 1].sum()
    committed = [(dict(r.rule), r.tier) for r in definition.rules]
    dims = [d for d in definition.dimensions if d in accounts.columns]
    candidates: dict[tuple[Any, ...], tuple[dict[str, Any], Tier | None]] = {
        _key(r): (r, t) for r, t in committed
    }
    for segment in _segments(accounts, dims, max_depth, min_accounts):
        candidates.setdefault(_key(segment), (dict(segment), None))
    rows = []
    tiers = accounts["tier"].astype(str).to_numpy()
    for rule, tier in candidates.values():
        mask = members(accounts, rule)
        won, n = stats[mask, 0].sum(), stats[mask, 1].sum()
        rest_won, rest_n = total_won - won, total_n - n
        if n < MIN_RATE_N or rest_n < MIN_RATE_N or total_won in (0, total_n):
            continue
        held = pd.Series(tiers[mask]).value_counts(normalize=True)
        committed_tier = (
            str(tier) if tier is not None else (str(held.index[0]) if held.iloc[0] >= 0.8 else "")
        )
        if committed_tier == "":
            continue
        p = test_proportions_2indep(won, n, rest_won, rest_n, method="wald").pvalue
        rows.append(
            {
                "rule": rule,
                "segment": rule_label(rule),
                "committed_tier": committed_tier,
                "is_rule": tier is not None,
                "deals": int(n),
                "win_rate": round(won / n, 4),
                "rest_win_rate": round(rest_won / rest_n, 4),
                "ratio": round((won / n) / (rest_won / rest_n), 3) if rest_won else np.nan,
                "p_value": float(p),
            }
        )
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame["q_value"] = multipletests(frame["p_value"].fillna(1.0), method="fdr_bh")[1]
    significant = frame["q_value"] <= fdr
    green, red, yellow = str(Tier.GREEN), str(Tier.RED), str(Tier.YELLOW)
    ratio, ruled, held_tier = frame["ratio"], frame["is_rule"], frame["committed_tier"]
    # a committed rule fails when the period shows no edge: not significantly better (worse)
    # and not even the minimum lift on the point estimate
    frame["proposal"] = np.select(
        [
            ruled & (held_tier == green) & ~(significant & (ratio > 1)) & (ratio < 1 + min_lift),
            ruled & (held_tier == red) & ~(significant & (ratio < 1)) & (ratio > 1 - min_lift),
            (held_tier == yellow) & significant & (ratio >= 1 + min_lift),
            (held_tier == yellow) & significant & (ratio <= 1 - min_lift),
        ],
        ["Green -> Yellow", "Red: review", "Yellow -> Green", "Yellow -> Red"],
        default="",
    )
    changes = frame[frame["proposal"] != ""]
    return _broadest(changes).sort_values(["proposal", "q_value"]).reset_index(drop=True)


def _broadest(frame: pd.DataFrame) -> pd.DataFrame:
    """Leave out a segment inside another listed one with the same proposal."""
    keep = []
    rules = list(zip(frame["rule"], frame["proposal"], strict=True))
    for rule, proposal in rules:
        inside = any(
            p == proposal and len(r) < len(rule) and all(rule.get(k) == v for k, v in r.items())
            for r, p in rules
        )
        keep.append(not inside)
    return frame[keep]


def refine(definition: IcpDefinition, changes: pd.DataFrame, *, period: str) -> IcpDefinition:
    """The committed definition with the proposed changes applied: a new, editable version.

    Green rules proposed for Yellow are dropped; Yellow segments proposed for Green or Red
    become rules (``source = "review"``); Red rules under review are kept (a Red exclusion is
    a decision, not only a measurement) and flagged in the notes.
    """
    demoted = {
        _key(r)
        for r, p in zip(changes.get("rule", []), changes.get("proposal", []), strict=True)
        if p == "Green -> Yellow"
    }
    rules = [r for r in definition.rules if _key(r.rule) not in demoted]
    review: list[str] = []
    for row in changes.to_dict("records") if len(changes) else []:
        proposal = str(row["proposal"])
        if proposal in ("Yellow -> Green", "Yellow -> Red"):
            tier = Tier.GREEN if proposal.endswith("Green") else Tier.RED
            rules.append(
                SegmentRule(
                    rule=dict(row["rule"]),
                    tier=tier,
                    n=int(row["deals"]),
                    lift=float(row["ratio"]),
                    q_value=float(row["q_value"]),
                    source="review",
                )
            )
        elif proposal == "Red: review":
            review.append(str(row["segment"]))
    notes = f"Proposed by the {period} review of {definition.version}."
    if review:
        notes += " Red rules that won like the rest (kept; decide): " + "; ".join(review) + "."
    return dataclasses.replace(
        definition,
        version=f"{definition.version}-review-{period}",
        rules=tuple(rules),
        notes=notes,
    )
