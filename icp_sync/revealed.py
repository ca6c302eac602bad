"""The revealed ICP: what sales actually pursues and closes, set against the committed ICP (pure).

The committed ICP says where the company should sell; the last 90 days of new-business
pipeline and wins say where it does. Every segment up to the configured depth over the same
dimensions ``derive`` uses is measured the way ``derive`` measures segments: only segments with
at least ``min_accounts`` accounts are tested, each against the rest (an exact binomial test of
its share of recent deals against its share of the prospects: the accounts that were not
customers when the window opened, the market new business is chosen from), the false
discovery rate is held over every test (Benjamini-Hochberg), and a segment is
*over-represented* (revealed Green) or *under-represented* (revealed Red) only if it is
significant and its index (share of deals / share of prospects) clears the minimum lift.

Where the revealed profile contradicts the committed tier (a Red segment being closed, a Green
segment no longer pursued, a Yellow segment closed well above its share), the agreement is
eroding: those segments are listed, broadest first (a narrower segment inside a listed one
with the same finding is left out).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from icp_sync.icp import rule_label
from icp_sync.model import DealType, Tier

__all__ = ["Revealed", "RevealedSettings", "revealed_icp"]

OVER = "over-represented"
UNDER = "under-represented"
NEUTRAL = "as expected"
MIXED = "mixed"


@dataclass(frozen=True, slots=True, kw_only=True)
class RevealedSettings:
    """How the revealed profile is measured (the ``derive`` settings, and the window)."""

    dimensions: tuple[str, ...]
    max_depth: int = 2
    min_accounts: int = 30
    fdr: float = 0.05
    min_lift: float = 0.15
    days: int = 90
    dominant_share: float = 0.8
    """A segment has a committed tier when at least this share of its accounts hold it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Revealed:
    """The revealed profile, per segment, and where it disagrees with the committed ICP."""

    window_start: pd.Timestamp
    window_end: pd.Timestamp
    pipeline_deals: int
    won_deals: int
    segments: pd.DataFrame
    disagreements: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (segments limited to the tested ones)."""
        tested = self.segments[self.segments["tested"]]
        return {
            "profile": {
                kind: [
                    {
                        "segment": r["segment"],
                        "committed_tier": r["committed_tier"],
                        "index": r[f"{kind}_index"],
                    }
                    for r in tested[tested[f"revealed_{kind}"] == OVER]
                    .sort_values(["depth", f"{kind}_index"], ascending=[True, False])
                    .to_dict("records")
                ]
                for kind in ("pipeline", "won")
            },
            "window": {"start": self.window_start.isoformat(), "end": self.window_end.isoformat()},
            "pipeline_deals": self.pipeline_deals,
            "won_deals": self.won_deals,
            "disagreements": _records(self.disagreements),
            "segments_tested": len(tested),
            "notes": self.notes,
        }


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    out = frame.drop(columns=["rule"], errors="ignore").astype(object)
    return [
        {str(k): v for k, v in row.items()}
        for row in out.where(out.notna(), None).to_dict("records")
    ]


def _segments(
    accounts: pd.DataFrame, dims: Sequence[str], depth: int
) -> list[tuple[dict[str, str], int, pd.Series]]:
    found: list[tuple[dict[str, str], int, pd.Series]] = []
    for size in range(1, depth + 1):
        for combo in itertools.combinations(dims, size):
            keys = [accounts[d].astype("string") for d in combo]
            for values, part in accounts.groupby(keys, dropna=True):
                key = values if isinstance(values, tuple) else (values,)
                rule = {d: str(v) for d, v in zip(combo, key, strict=True)}
                found.append((rule, size, part["account_id"]))
    return found


def revealed_icp(
    accounts: pd.DataFrame,
    opportunities: pd.DataFrame,
    settings: RevealedSettings,
    *,
    now: pd.Timestamp,
) -> Revealed:
    """Measure the revealed profile over the ``settings.days`` before ``now``.

    Args:
        accounts: Accounts with their dimension columns and ``tier`` under the committed ICP.
        opportunities: Canonical opportunities.
        settings: Dimensions, depth, size floor, FDR, minimum lift, window.
        now: The end of the observed history.
    """
    from scipy import stats
    from statsmodels.stats.multitest import multipletests

    start = now - pd.Timedelta(days=settings.days)
    nb = opportunities[opportunities["deal_type"] == str(DealType.NEW_BUSINESS)]
    pipeline = nb[(nb["created_at"] > start) & (nb["created_at"] <= now)]
    won = nb[nb["is_won"] & (nb["close_date"] > start) & (nb["close_date"] <= now)]
    # new business goes to prospects: customers before the window are not the market it chose
    # from (else segments that convert well look neglected once their accounts are customers)
    since = accounts.get("customer_since", pd.Series(pd.NaT, index=accounts.index))
    market = accounts[~(since <= start)]
    dims = [d for d in settings.dimensions if d in market.columns]
    table = _segments(market, dims, settings.max_depth)
    notes: list[str] = []
    total = len(market)
    tiers = market.set_index("account_id")["tier"].astype(str)
    pipe_per = pipeline.groupby("account_id").size()
    won_per = won.groupby("account_id").size()
    rows = []
    for rule, depth, ids in table:
        held = tiers.reindex(ids).value_counts(normalize=True)
        committed = (
            str(held.index[0]) if len(held) and held.iloc[0] >= settings.dominant_share else MIXED
        )
        rows.append(
            {
                "rule": rule,
                "segment": rule_label(rule),
                "depth": depth,
                "prospects": len(ids),
                "committed_tier": committed,
                "pipeline": int(pipe_per.reindex(ids).fillna(0).sum()),
                "won": int(won_per.reindex(ids).fillna(0).sum()),
            }
        )
    frame = pd.DataFrame(
        rows, columns=["rule", "segment", "depth", "prospects", "committed_tier", "pipeline", "won"]
    )
    frame["share_of_prospects"] = frame["prospects"] / max(total, 1)
    frame["tested"] = frame["prospects"] >= settings.min_accounts
    for kind, n in (("pipeline", len(pipeline)), ("won", len(won))):
        frame[f"{kind}_share"] = frame[kind] / n if n else np.nan
        with np.errstate(divide="ignore", invalid="ignore"):
            frame[f"{kind}_index"] = frame[f"{kind}_share"] / frame["share_of_prospects"]
        frame[f"{kind}_p"] = [
            stats.binomtest(int(k), n, float(p)).pvalue if tested and n else np.nan
            for k, p, tested in zip(
                frame[kind], frame["share_of_prospects"], frame["tested"], strict=True
            )
        ]
        if n < 20:
            notes.append(
                f"only {n} new-business {'deals created' if kind == 'pipeline' else 'wins'} in "
                f"the last {settings.days} days: the {kind} profile is not judged"
            )
            frame[f"{kind}_p"] = np.nan
    p_values = np.concatenate([frame["pipeline_p"].to_numpy(), frame["won_p"].to_numpy()])
    q = np.full(len(p_values), np.nan)
    finite = np.isfinite(p_values)
    if finite.any():
        q[finite] = multipletests(p_values[finite], alpha=settings.fdr, method="fdr_bh")[1]
    frame["pipeline_q"], frame["won_q"] = q[: len(frame)], q[len(frame) :]
    for kind in ("pipeline", "won"):
        significant = frame[f"{kind}_q"] <= settings.fdr
        index = frame[f"{kind}_index"]
        frame[f"revealed_{kind}"] = np.select(
            [
                significant & (index >= 1 + settings.min_lift),
                significant & (index <= 1 - settings.min_lift),
            ],
            [OVER, UNDER],
            default=NEUTRAL,
        )
    for column in [c for c in frame.columns if c.endswith(("_share", "_index", "_prospects"))]:
        frame[column] = frame[column].astype(float).round(4)
    return Revealed(
        window_start=start,
        window_end=now,
        pipeline_deals=len(pipeline),
        won_deals=len(won),
        segments=frame,
        disagreements=_disagreements(frame),
        notes=notes,
    )


_FINDINGS = (
    # committed tier, revealed column, revealed value, finding
    (str(Tier.RED), "revealed_won", OVER, "Red segment being closed"),
    (str(Tier.RED), "revealed_pipeline", OVER, "Red segment being pursued"),
    (str(Tier.GREEN), "revealed_pipeline", UNDER, "Green segment not pursued"),
    (str(Tier.GREEN), "revealed_won", UNDER, "Green segment not closed"),
    (str(Tier.YELLOW), "revealed_won", OVER, "Yellow segment closed above its share"),
)


def _disagreements(frame: pd.DataFrame) -> pd.DataFrame:
    found: list[dict[str, Any]] = []
    for severity, (tier, column, value, finding) in enumerate(_FINDINGS):
        kind = column.removeprefix("revealed_")
        hits = frame[(frame["committed_tier"] == tier) & (frame[column] == value)]
        ordered = hits.sort_values(["depth", f"{kind}_index"], ascending=[True, False])
        for row in ordered.to_dict("records"):
            rule: dict[str, Any] = dict(row["rule"])
            if any(f["finding"] == finding and _inside(rule, f["rule"]) for f in found):
                continue
            found.append(
                {
                    "rule": rule,
                    "segment": row["segment"],
                    "finding": finding,
                    "severity": severity,
                    "committed_tier": tier,
                    "prospects": row["prospects"],
                    "pipeline": row["pipeline"],
                    "won": row["won"],
                    "share_of_prospects": row["share_of_prospects"],
                    "index": row[f"{kind}_index"],
                    "q_value": round(float(row[f"{kind}_q"]), 6),
                }
            )
    columns = [
        "rule", "segment", "finding", "severity", "committed_tier", "prospects", "pipeline",
        "won", "share_of_prospects", "index", "q_value",
    ]  # fmt: skip
    if not found:
        return pd.DataFrame(columns=columns)
    result = pd.DataFrame(found)[columns]
    return result.sort_values(["severity", "index"], ascending=[True, False])


def _inside(inner: dict[str, Any], outer: dict[str, Any]) -> bool:
    return len(outer) < len(inner) and all(inner.get(k) == v for k, v in outer.items())
