"""The ICP definition: derived from evidence, versioned, human-editable, applied to accounts.

Derivation turns the segment evidence into tiers:

1. Segments with enough accounts are tested (Welch, composite outcome vs the rest); the
   p-values of all of them are controlled for the false discovery rate (Benjamini-Hochberg).
2. Significant segments that outperform (underperform) the baseline by at least the minimum
   lift are Green (Red) candidates: both the raw lift (the effect the test saw) and the
   shrunk one must clear it; both are reported, so a significant segment never reads as
   average. Segments on a dimension recorded only for won deals are tested (and lifted)
   without the win rate.
3. Candidates are taken greedily, strongest effect first (Green and Red together), each
   re-tested on the accounts no segment taken before covers, against the accounts no segment
   covers, and kept only if it still beats (or trails) that rest by the minimum lift. A parent
   whose effect lives in one of its sub-segments drops out here ("Healthcare" after
   "Healthcare, 200-999"), and so does a segment that only looked good next to a bad one.
4. A taken segment inside another taken segment of the same tier is dropped: it changes no
   account's tier ("Government, 1-49" inside "Government").

Everything else is Yellow. Configured exclusions are Red whatever the data say.

The definition is written as TOML a product marketer can read and edit; an edited file can be
used in place of the derived one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import tomlkit

from icp_sync.errors import ConfigError
from icp_sync.model import Tier
from icp_sync.segments import METRICS, Evidence, members, subset_metrics, test_subset

__all__ = [
    "DeriveSettings",
    "IcpDefinition",
    "SegmentRule",
    "TierAssignment",
    "assign_tiers",
    "derive",
    "from_toml",
    "override_counts",
    "rule_label",
    "to_toml",
]

Rule = dict[str, str | list[str]]

OVERRIDE_COLUMN = "attr_icp_tier_override"


@dataclass(frozen=True, slots=True, kw_only=True)
class DeriveSettings:
    """How segments become tiers.

    Attributes:
        fdr: False discovery rate controlled across all tested segments.
        min_lift: A Green segment's composite lift is at least ``1 + min_lift``; a Red one's at
            most ``1 - min_lift``.
        exclusions: Rules that are Red whatever the data say (segments you cannot serve).
    """

    fdr: float = 0.05
    min_lift: float = 0.15
    exclusions: Sequence[Rule] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class SegmentRule:
    """One rule of the ICP: a segment and its tier, with the evidence behind it.

    Attributes:
        rule: Dimension -> value (or list of values).
        tier: Green or Red (everything no rule matches is Yellow).
        n: Accounts in the segment when derived.
        lift: Composite outcome relative to the baseline (1.0 = average), unshrunk: the
            effect the segment's test saw.
        q_value: False-discovery-rate adjusted p-value (1.0 when not tested).
        metrics: Metric -> shrunk estimate, as derived.
        source: ``evidence`` (derived), ``exclusion`` (configured) or ``edited``.
    """

    rule: Rule
    tier: Tier
    n: int = 0
    lift: float = 1.0
    q_value: float = 1.0
    metrics: dict[str, float] = field(default_factory=dict)
    source: str = "evidence"


@dataclass(frozen=True, slots=True, kw_only=True)
class IcpDefinition:
    """A versioned ICP: the Green and Red rules and how they were derived."""

    version: str
    as_of: datetime
    derived_at: datetime
    dimensions: tuple[str, ...]
    employee_bands: tuple[float, ...]
    revenue_bands: tuple[float, ...]
    rules: tuple[SegmentRule, ...]
    baseline: dict[str, float] = field(default_factory=dict)
    notes: str = ""

    def rules_of(self, tier: Tier) -> list[SegmentRule]:
        """The rules of one tier, most specific first."""
        return sorted(
            (r for r in self.rules if r.tier is tier), key=lambda r: (-len(r.rule), -r.lift)
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Derivation:
    """The outcome of :func:`derive`: the rules, and every segment with its tier."""

    rules: tuple[SegmentRule, ...]
    segments: pd.DataFrame
    significance_threshold: float


def derive(evidence: Evidence, accounts: pd.DataFrame, settings: DeriveSettings) -> Derivation:
    """Choose Green and Red segments from the evidence (see the module docstring).

    Args:
        evidence: Segment measurements (:func:`icp_sync.segments.evidence_table`).
        accounts: The accounts the evidence was measured on, with dimension columns, in the
            same row order.
        settings: FDR level, minimum lift, exclusions.
    """
    table = evidence.table.copy()
    table["q_value"] = 1.0
    table["tier"] = str(Tier.YELLOW)
    tested = table["tested"].to_numpy(dtype=bool) if len(table) else np.array([], dtype=bool)
    threshold = 0.0
    if tested.any():
        from statsmodels.stats.multitest import multipletests

        reject, q, _, _ = multipletests(
            table.loc[tested, "p_value"].to_numpy(dtype=float), alpha=settings.fdr, method="fdr_bh"
        )
        table.loc[tested, "q_value"] = q
        significant_p = table.loc[tested, "p_value"].to_numpy()[reject]
        threshold = float(significant_p.max()) if reject.any() else 0.0
    significant = table["q_value"] <= settings.fdr
    # both the effect the test saw and its shrunk estimate must clear the minimum lift
    lifts = table[["lift", "lift_raw"]]
    green = significant & (lifts.min(axis=1) >= 1 + settings.min_lift) & (table["t"] > 0)
    red = significant & (lifts.max(axis=1) <= 1 - settings.min_lift) & (table["t"] < 0)
    rule_of: dict[int, Rule] = dict(zip(table.index, table["rule"], strict=True))
    depth_of: dict[int, int] = dict(zip(table.index, table["depth"], strict=True))
    masks = {i: members(accounts, rule_of[i]) for i in table.index[green | red]}
    covered = np.zeros(len(accounts), dtype=bool)
    chosen: dict[int, Tier] = {}
    # strongest first by the shrunk lift: a small segment's extreme raw lift is mostly noise,
    # and taken first it would claim the accounts of the larger segment it is part of
    candidates = table.loc[green | red, "lift"]
    strongest_first = candidates.map(lambda v: -abs(np.log(v))).sort_values(kind="stable").index
    for i in strongest_first:
        tier = Tier.GREEN if green[i] else Tier.RED
        inside = masks[i] & ~covered
        reference = ~masks[i] & ~covered
        blind = evidence.blind(rule_of[i])
        _, p, n = test_subset(evidence.outcome_for(rule_of[i]), inside, reference)
        _, lift_inside = subset_metrics(evidence, inside, blind=blind)
        _, lift_reference = subset_metrics(evidence, reference, blind=blind)
        relative = lift_inside / lift_reference
        if tier is Tier.GREEN:
            strong = relative >= 1 + settings.min_lift
        else:
            strong = relative <= 1 - settings.min_lift
        if p <= threshold and n >= evidence.settings.min_accounts and strong:
            chosen[i] = tier
            covered |= masks[i]
    for i in sorted(chosen, key=lambda k: -depth_of[k]):
        # a segment inside a chosen segment of the same tier changes no account's tier
        if any(
            chosen[j] is chosen[i] and _contains(rule_of[j], rule_of[i]) for j in chosen if j != i
        ):
            del chosen[i]
    for i, tier in chosen.items():
        table.at[i, "tier"] = str(tier)
    rules = [_rule_from_row(table.loc[i], tier) for i, tier in chosen.items()]
    rules += [_exclusion(evidence, accounts, exclusion) for exclusion in settings.exclusions]
    return Derivation(rules=tuple(rules), segments=table, significance_threshold=threshold)


def _contains(outer: Mapping[str, object], inner: Mapping[str, object]) -> bool:
    return len(outer) < len(inner) and all(inner.get(k) == v for k, v in outer.items())


def _rule_from_row(row: Any, tier: Tier) -> SegmentRule:
    return SegmentRule(
        rule=dict(row["rule"]),
        tier=tier,
        n=int(row["accounts"]),
        lift=_round(row["lift_raw"]),
        q_value=_round(row["q_value"], 6),
        metrics={m: _round(row[f"{m}_shrunk"]) for m in METRICS if pd.notna(row[f"{m}_shrunk"])},
    )


def _exclusion(evidence: Evidence, accounts: pd.DataFrame, rule: Rule) -> SegmentRule:
    mask = members(accounts, rule)
    metrics, lift = subset_metrics(evidence, mask, blind=evidence.blind(rule))
    return SegmentRule(
        rule=dict(rule),
        tier=Tier.RED,
        n=int(mask.sum()),
        lift=_round(lift) if np.isfinite(lift) else 1.0,
        q_value=1.0,
        metrics={m: _round(metrics[m]) for m in METRICS if pd.notna(metrics[m])},
        source="exclusion",
    )


def _round(value: Any, digits: int = 4) -> float:
    number = float(value)
    return round(number, digits) if np.isfinite(number) else float("nan")


def rule_label(rule: Mapping[str, object]) -> str:
    """A rule in words: ``Healthcare, 200-999 employees, EMEA``."""
    parts = []
    for dimension, value in rule.items():
        shown = " or ".join(map(str, value)) if isinstance(value, list | tuple) else str(value)
        if dimension == "employees_band":
            parts.append(f"{shown} employees")
        elif dimension == "revenue_band":
            parts.append(f"{shown} revenue")
        elif dimension.startswith("attr_"):
            parts.append(f"{dimension.removeprefix('attr_').replace('_', ' ')} {shown}")
        else:
            parts.append(shown)
    return ", ".join(parts)


@dataclass(frozen=True, slots=True, kw_only=True)
class TierAssignment:
    """Tiers of every account.

    Attributes:
        frame: Per account: ``tier``, ``segment`` (label), ``rule_tier`` (before overrides),
            ``overridden``.
        overrides: How many accounts carry a valid human override, per tier.
        invalid_overrides: Override values that are not a tier (ignored).
    """

    frame: pd.DataFrame
    overrides: dict[str, int]
    invalid_overrides: int


def assign_tiers(
    accounts: pd.DataFrame,
    definition: IcpDefinition,
    *,
    scores: pd.Series | None = None,
    green_min_score: float = 0.0,
) -> TierAssignment:
    """Tier every account: Red rules first, then Green, else Yellow; then human overrides.

    Args:
        accounts: Accounts with the definition's dimension columns (and optionally
            ``attr_icp_tier_override``).
        definition: The ICP in force.
        scores: Look-alike fit scores (0-100), aligned with ``accounts``.
        green_min_score: A Green-segment account scoring below this is Yellow instead.
    """
    n = len(accounts)
    tier = np.full(n, str(Tier.YELLOW), dtype=object)
    label = np.full(n, "", dtype=object)
    decided = np.zeros(n, dtype=bool)
    for wanted in (Tier.RED, Tier.GREEN):
        for rule in definition.rules_of(wanted):
            mask = members(accounts, rule.rule) & ~decided
            tier[mask] = str(wanted)
            label[mask] = rule_label(rule.rule)
            decided |= mask
    if scores is not None and green_min_score > 0:
        weak = (tier == str(Tier.GREEN)) & (scores.to_numpy() < green_min_score)
        tier[weak] = str(Tier.YELLOW)
    own = [d for d in definition.dimensions if d in accounts.columns]
    if own:
        values = accounts[own].astype("string").fillna("?")
        key = values[own[0]]
        for column in own[1:]:
            key = key + "\x1f" + values[column]
        words = {k: rule_label(dict(zip(own, k.split("\x1f"), strict=True))) for k in key.unique()}
        label = np.where(label == "", key.map(words).to_numpy(dtype=object), label)
    frame = pd.DataFrame({"rule_tier": tier, "segment": label}, index=accounts.index)
    final = frame["rule_tier"].copy()
    overrides, invalid = override_counts(accounts)
    if OVERRIDE_COLUMN in accounts.columns:
        raw, valid = _overrides(accounts)
        final = final.where(~valid, raw)
        frame["overridden"] = valid.to_numpy()
    else:
        frame["overridden"] = False
    frame["tier"] = final.astype(str)
    return TierAssignment(frame=frame, overrides=overrides, invalid_overrides=invalid)


def _overrides(accounts: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """The override values as tier names, and which of them are valid tiers."""
    raw = accounts[OVERRIDE_COLUMN].astype("string").str.strip().str.capitalize()
    return raw, raw.isin([str(t) for t in Tier]).fillna(False)


def override_counts(accounts: pd.DataFrame) -> tuple[dict[str, int], int]:
    """(valid human overrides per tier, override values that are not a tier) of ``accounts``."""
    if OVERRIDE_COLUMN not in accounts.columns:
        return {}, 0
    raw, valid = _overrides(accounts)
    invalid = int((raw.notna() & ~valid).sum())
    return {str(t): int((raw[valid] == str(t)).sum()) for t in Tier}, invalid


def to_toml(definition: IcpDefinition) -> str:
    """The definition as commented, human-editable TOML."""
    doc = tomlkit.document()
    doc.add(tomlkit.comment(f"icp-sync ICP definition {definition.version}"))
    doc.add(tomlkit.comment("Edit tiers or rules, then make it live: icp-sync activate FILE"))
    doc.add(tomlkit.comment("Accounts no rule matches are Yellow; Red rules win over Green."))
    doc["version"] = definition.version
    doc["as_of"] = definition.as_of
    doc["derived_at"] = definition.derived_at
    doc["dimensions"] = list(definition.dimensions)
    doc["employee_bands"] = list(definition.employee_bands)
    doc["revenue_bands"] = list(definition.revenue_bands)
    if definition.notes:
        doc["notes"] = definition.notes
    baseline = tomlkit.table()
    for name, value in definition.baseline.items():
        if np.isfinite(value):
            baseline[name] = value
    doc["baseline"] = baseline
    rules = tomlkit.aot()
    for rule in definition.rules:
        table = tomlkit.table()
        table.add(tomlkit.comment(rule_label(rule.rule)))
        table["tier"] = str(rule.tier)
        inline = tomlkit.inline_table()
        inline.update(rule.rule)
        table["rule"] = inline
        table["source"] = rule.source
        table["n"] = rule.n
        table["lift"] = rule.lift if np.isfinite(rule.lift) else 1.0
        table["q_value"] = rule.q_value if np.isfinite(rule.q_value) else 1.0
        metrics = tomlkit.inline_table()
        metrics.update({k: v for k, v in rule.metrics.items() if np.isfinite(v)})
        table["metrics"] = metrics
        rules.append(table)
    doc["segments"] = rules
    return tomlkit.dumps(doc)


def from_toml(text: str, *, source: str = "ICP definition") -> IcpDefinition:
    """Read a (possibly hand-edited) definition back.

    Raises:
        ConfigError: Listing every problem, each with its TOML path.
    """
    try:
        data = tomlkit.parse(text).unwrap()
    except tomlkit.exceptions.ParseError as exc:
        raise ConfigError([f"{source}: not valid TOML: {exc}"]) from None
    problems = [
        f"{key}: required value missing"
        for key in ("version", "as_of", "dimensions")
        if key not in data
    ]
    rules = []
    for i, item in enumerate(data.get("segments", [])):
        where = f"segments[{i}]"
        tier = str(item.get("tier", "")).capitalize()
        if tier not in (Tier.GREEN, Tier.RED):
            problems.append(f"{where}.tier: must be Green or Red (Yellow is everything else)")
            continue
        rule = item.get("rule")
        if not isinstance(rule, dict) or not rule:
            problems.append(f"{where}.rule: must be a table of dimension = value")
            continue
        unknown = [
            d for d in rule if d not in data.get("dimensions", []) and d not in _ANY_DIMENSION
        ]
        problems.extend(f"{where}.rule.{d}: not a dimension of this definition" for d in unknown)
        rules.append(
            SegmentRule(
                rule=rule,
                tier=Tier(tier),
                n=int(item.get("n", 0)),
                lift=float(item.get("lift", 1.0)),
                q_value=float(item.get("q_value", 1.0)),
                metrics={k: float(v) for k, v in item.get("metrics", {}).items()},
                source=str(item.get("source", "edited")),
            )
        )
    if problems:
        raise ConfigError(problems, source=source)
    return IcpDefinition(
        version=str(data["version"]),
        as_of=_datetime(data["as_of"]),
        derived_at=_datetime(data.get("derived_at", data["as_of"])),
        dimensions=tuple(data["dimensions"]),
        employee_bands=tuple(data.get("employee_bands", (1, 50, 200, 1000, 5000))),
        revenue_bands=tuple(data.get("revenue_bands", (0, 1e6, 1e7, 1e8, 1e9))),
        rules=tuple(rules),
        baseline={k: float(v) for k, v in data.get("baseline", {}).items()},
        notes=str(data.get("notes", "")),
    )


_ANY_DIMENSION = frozenset(
    {"industry", "employees_band", "revenue_band", "region", "country", "tech_stack", "owner_id"}
)


def _datetime(value: object) -> datetime:
    if isinstance(value, datetime):
        return value
    return pd.Timestamp(str(value)).to_pydatetime()
