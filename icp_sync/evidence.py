"""The evidence report behind an ICP version: a table per segment and a summary in words.

Written for the product marketer who presents the ICP and for anyone who wants to challenge
it: what was measured, on how many accounts, what stands out, how sure we are, and what the
look-alike model adds. Pure: results in, text out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

import numpy as np
import pandas as pd

from icp_sync.icp import IcpDefinition, SegmentRule, rule_label
from icp_sync.model import Tier
from icp_sync.reasons import metric_sentence
from icp_sync.text import neutralize_list

__all__ = ["markdown", "segment_records", "summary"]

_COLUMNS = (
    ("win_rate", "win rate", "pct"),
    ("retention", "logo retention", "pct"),
    ("nrr", "NRR", "pct"),
    ("clv", "CLV", "money"),
    ("sales_cycle_days", "sales cycle (days)", "days"),
    ("acv", "ACV", "money"),
    ("nps", "NPS", "num"),
    ("adoption", "adoption", "pct"),
)


def _format(value: Any, kind: str) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "-"
    if kind == "pct":
        return f"{value:.0%}"
    if kind == "money":
        return f"{value:,.0f}"
    if kind == "days":
        return f"{value:.0f}"
    return f"{value:.1f}"


def segment_records(segments: pd.DataFrame) -> list[dict[str, Any]]:
    """The contract form of every measured segment: rule, tier, n, metrics, lift, q_value.

    ``lift`` is the shrunk composite lift; ``lift_raw`` the effect the segment's test saw.
    """
    records = []
    for row in _rows(segments):
        metrics: dict[str, Any] = {}
        for name, _, _ in _COLUMNS:
            value = row[name]
            if value is None or not np.isfinite(value):
                continue
            metrics[name] = {
                "value": _num(value),
                "low": _num(row[f"{name}_low"]),
                "high": _num(row[f"{name}_high"]),
                "shrunk": _num(row[f"{name}_shrunk"]),
                "n": int(row[f"{name}_n"]),
            }
        records.append(
            {
                "rule": dict(row["rule"]),
                "tier": row["tier"],
                "n": int(row["accounts"]),
                "customers": int(row["customers"]),
                "metrics": metrics,
                "lift": _num(row["lift"]),
                "lift_raw": _num(row.get("lift_raw", np.nan)),
                "q_value": _num(row["q_value"]) if np.isfinite(row["q_value"]) else 1.0,
                "p_value": _num(row["p_value"]),
                "tested": bool(row["tested"]),
            }
        )
    return records


def _rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return cast(list[dict[str, Any]], frame.to_dict("records"))


def _q(value: float, *, bare: bool = False) -> str:
    if not np.isfinite(value):
        return "-"
    if value < 0.001:
        return "<0.001" if bare else "q < 0.001"
    return f"{value:.2g}" if bare else f"q = {value:.2g}"


def _num(value: Any) -> float | None:
    number = float(value)
    return round(number, 6) if np.isfinite(number) else None


def summary(
    definition: IcpDefinition,
    *,
    accounts: int,
    customers: int,
    closed_deals: int,
    tested: int,
    measured: int,
    model: Mapping[str, Any],
    fdr: float,
) -> list[str]:
    """The ICP in a few plain sentences."""
    green = definition.rules_of(Tier.GREEN)
    red = [r for r in definition.rules_of(Tier.RED) if r.source != "exclusion"]
    excluded = [r for r in definition.rules if r.source == "exclusion"]
    dims = ", ".join(d.replace("_", " ") for d in definition.dimensions)
    lines = [
        (
            f"We analysed {accounts:,} accounts ({customers:,} customers, {closed_deals:,} "
            f"closed new-business deals) by {dims}: {measured:,} segments measured, {tested:,} "
            "large enough to test. Segments were tested against the rest of the base with the "
            f"false discovery rate held at {fdr:.0%}, so chance differences do not make the list."
        )
    ]
    if green:
        lines.append(f"{len(green)} segment(s) form the ICP core (Green):")
        lines += [f"  - {_rule_line(r, definition)}" for r in green]
    else:
        lines.append(
            "No segment outperforms the company average by a margin the data can support: "
            "there is no Green core yet. Everything not excluded is Yellow."
        )
    if red:
        lines.append(f"{len(red)} segment(s) perform measurably worse (Red):")
        lines += [f"  - {_rule_line(r, definition)}" for r in red]
    if excluded:
        labels = "; ".join(neutralize_list(rule_label(r.rule)) for r in excluded)
        lines.append(f"Excluded by policy (Red whatever the data say): {labels}.")
    if model.get("trained"):
        lines.append(
            f"The look-alike model tells best-fit customers from the rest with a cross-validated "
            f"AUC of {model['cv_auc']:.2f} (0.5 is chance) on {model['n_train']:,} accounts; "
            "it ranks prospects for the Target Account List."
        )
    else:
        lines.append(f"Look-alike model: {model.get('fallback_reason')}.")
    return lines


def _rule_line(rule: SegmentRule, definition: IcpDefinition) -> str:
    sentence = metric_sentence(rule.metrics, definition.baseline)
    return (
        f"{neutralize_list(rule_label(rule.rule))}: {rule.n:,} accounts; {sentence}; "
        f"composite lift {rule.lift:.2f}x ({_q(rule.q_value)})"
    )


def markdown(
    definition: IcpDefinition,
    segments: pd.DataFrame,
    summary_lines: Sequence[str],
    model: Mapping[str, Any],
    *,
    quality: Sequence[str] = (),
    baseline_detail: Mapping[str, Mapping[str, float | int | None]] | None = None,
) -> str:
    """The full evidence report as Markdown (the data-quality section first).

    ``baseline_detail``: per metric, its 95% interval (``low``, ``high``) and ``n``."""
    detail = baseline_detail or {}
    out = [
        f"# ICP evidence, version {definition.version}",
        "",
        (
            f"History up to {definition.as_of:%Y-%m-%d}; "
            f"derived {definition.derived_at:%Y-%m-%d %H:%M} UTC."
        ),
        "",
        "## Data quality: what this history can and cannot support",
        "",
        *[f"- {line}" for line in quality],
        "",
        "## Summary",
        "",
        *summary_lines,
        "",
        "## Company baseline",
        "",
        _table(
            ["metric", "value", "95% interval", "n"],
            [
                [
                    label,
                    _format(definition.baseline.get(name), kind),
                    _interval(detail.get(name, {}), kind),
                    _count(detail.get(name, {}).get("n")),
                ]
                for name, label, kind in _COLUMNS
            ],
        ),
        "",
        "## Proposed tiers",
        "",
    ]
    chosen = segments[segments["tier"] != str(Tier.YELLOW)]
    out.append(_segment_table(chosen) if len(chosen) else "No Green or Red segment.")
    out += ["", "## Every tested segment, most significant first", ""]
    tested = segments[segments["tested"]].sort_values(
        ["p_value", "accounts"], ascending=[True, False]
    )
    out.append(_segment_table(tested))
    out += ["", "## Look-alike model", ""]
    if model.get("trained"):
        out.append(
            f"Logistic regression on dimensions, their pairwise crosses, size, revenue and tech "
            f"stack. Cross-validated AUC {model['cv_auc']:.3f} (sd {model['cv_auc_sd']:.3f}), "
            f"Brier score {model['brier']:.3f}, {model['n_train']:,} accounts of which "
            f"{model['n_best']:,} best-fit."
        )
        out += ["", "Calibration (cross-validated):", ""]
        out.append(
            _table(
                ["predicted", "observed", "accounts"],
                [
                    [f"{c['predicted']:.1%}", f"{c['observed']:.1%}", f"{c['accounts']:,}"]
                    for c in model["calibration"]
                ],
            )
        )
    else:
        out.append(str(model.get("fallback_reason")))
    out += [
        "",
        "## Method",
        "",
        _METHOD,
        "",
    ]
    return "\n".join(out)


_METHOD = (
    "Metrics per segment come with 95% confidence intervals (Wilson for rates, delta "
    "method for NRR, normal for means). Small segments are shrunk toward the company "
    "baseline (empirical Bayes) before lifts are computed. Each segment's composite "
    "outcome (the weighted, standardised mix of its accounts' outcomes) is compared with "
    "the rest by Welch's t-test; q-values control the false discovery rate "
    "(Benjamini-Hochberg). Chosen segments are re-tested on the accounts no stronger "
    "segment already covers, so a broad segment is only kept when its effect is not "
    "explained by a narrower one."
)


def _interval(figures: Mapping[str, float | int | None], kind: str) -> str:
    low, high = figures.get("low"), figures.get("high")
    if low is None or high is None:
        return "-"
    return f"{_format(low, kind)} to {_format(high, kind)}"


def _count(n: float | int | None) -> str:
    return "-" if n is None else f"{int(n):,}"


def _segment_table(frame: pd.DataFrame) -> str:
    header = ["tier", "segment", "accounts", "customers"] + [label for _, label, _ in _COLUMNS]
    header += ["lift (shrunk)", "lift (tested)", "q"]
    rows = []
    for row in _rows(frame):
        cells = [
            str(row["tier"]),
            neutralize_list(rule_label(row["rule"])),
            f"{int(row['accounts']):,}",
            f"{int(row['customers']):,}",
        ]
        cells += [_format(row[f"{name}_shrunk"], kind) for name, _, kind in _COLUMNS]
        lifts = [row["lift"], row.get("lift_raw", np.nan)]
        cells += [f"{lift:.2f}" if np.isfinite(lift) else "-" for lift in lifts]
        cells.append(_q(row["q_value"], bare=True))
        rows.append(cells)
    return _table(header, rows)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows]
    return "\n".join(lines)
