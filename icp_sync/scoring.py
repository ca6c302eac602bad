"""Derive, score, list and review: the ICP core wired to the state store.

The orchestration behind ``derive``, ``tal`` and ``review`` (and the scoring step of a sync
cycle): load the mirror, run the pure core, store what must be kept (versions, models,
scores, TALs), write the human-readable files. The core itself never touches the store.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd

from icp_sync import evidence as evidence_report
from icp_sync.config import Settings
from icp_sync.diagnostics import (
    DataWarning,
    ObservationWindow,
    coverage_asymmetry,
    observation_window,
)
from icp_sync.errors import PipelineError
from icp_sync.history import baseline_detail, data_quality, history_warnings, model_warnings
from icp_sync.icp import (
    DeriveSettings,
    IcpDefinition,
    assign_tiers,
    derive,
    from_toml,
    rule_label,
    to_toml,
)
from icp_sync.lifecycle import LifecycleSettings, account_outcomes, history_as_of
from icp_sync.log import get_logger
from icp_sync.lookalike import (
    LookalikeModel,
    LookalikeSettings,
    best_fit_labels,
    score_accounts,
    similar_customers,
    train,
)
from icp_sync.model import CrmObject, Tier
from icp_sync.reasons import compose, tier_counts
from icp_sync.segments import METRICS, EvidenceSettings, evidence_table, members, with_dimensions
from icp_sync.store import Store

__all__ = ["DeriveResult", "ScoreResult", "TalResult", "derive_icp", "score", "tal"]

log = get_logger()


@dataclass(frozen=True, slots=True, kw_only=True)
class DeriveResult:
    """What ``derive`` produced."""

    definition: IcpDefinition
    segments: list[dict[str, Any]]
    summary: list[str]
    model: dict[str, Any]
    files: dict[str, Path]
    counts: dict[str, int]
    window: ObservationWindow
    warnings: list[DataWarning]
    metrics: dict[str, Any]
    baseline_detail: dict[str, dict[str, float | int | None]]
    leakage: dict[str, dict[str, float | None]]

    def as_dict(self) -> dict[str, Any]:
        """The ``derive --json`` document.

        Contract: ``version``, ``segments``, ``observation_window`` (``start``/``end`` ISO
        dates), ``warnings`` (``code``, ``message``, ``numbers``) and ``baseline`` (metric
        keys).
        """
        return {
            "version": self.definition.version,
            "as_of": self.definition.as_of.isoformat(),
            "observation_window": self.window.as_dict(),
            "warnings": [w.as_dict() for w in self.warnings],
            "metrics": self.metrics,
            "segments": self.segments,
            # every metric key stays; a metric the data cannot support is null
            "baseline": {m: self.definition.baseline.get(m) for m in METRICS},
            "baseline_detail": self.baseline_detail,
            "coverage": self.leakage,
            "summary": self.summary,
            "model": self.model,
            "counts": self.counts,
            "files": {k: str(v) for k, v in self.files.items()},
        }


def _evidence_settings(settings: Settings, blind: Sequence[str] = ()) -> EvidenceSettings:
    return EvidenceSettings(
        horizon=settings.lifecycle.window_months,
        win_rate_blind=frozenset(blind),
        dimensions=tuple(settings.segments.dimensions),
        max_depth=settings.segments.max_depth,
        min_accounts=settings.segments.min_accounts,
        weights=settings.icp.weights,
        gross_margin=settings.lifecycle.gross_margin,
        min_churn=settings.lifecycle.min_churn,
    )


def _lookalike_settings(settings: Settings) -> LookalikeSettings:
    config = settings.lookalike
    return LookalikeSettings(
        best_fit_share=config.best_fit_share,
        min_class=config.min_class,
        cv_folds=config.cv_folds,
        regularization=config.regularization,
        min_auc=config.min_auc,
    )


@dataclass(frozen=True, slots=True)
class _Base:
    accounts: pd.DataFrame
    outcomes: pd.DataFrame
    window: ObservationWindow
    as_of: pd.Timestamp


def _base(settings: Settings, store: Store, *, as_of: datetime | None, now: datetime) -> _Base:
    """The mirror as of ``as_of`` (default: the end of its observed history) with outcomes."""
    accounts = store.load_frame(CrmObject.ACCOUNT)
    opportunities = store.load_frame(CrmObject.OPPORTUNITY)
    if accounts.empty:
        raise PipelineError("the mirror holds no accounts: run `icp-sync sync` first")
    window = observation_window(accounts, opportunities, pd.Timestamp(now))
    cut = pd.Timestamp(as_of) if as_of is not None else window.end
    accounts, opportunities = history_as_of(accounts, opportunities, cut)
    lifecycle = LifecycleSettings(
        window_months=settings.lifecycle.window_months,
        windows=settings.lifecycle.windows,
        # snapshot fields (NPS, adoption) describe the export, not a past as-of date
        snapshot_fields=cut >= window.end - pd.Timedelta(days=1),
        observed_from=window.start,
    )
    outcomes = account_outcomes(accounts, opportunities, as_of=cut, settings=lifecycle)
    dims = with_dimensions(accounts, settings.segments).reset_index(drop=True)
    return _Base(accounts=dims, outcomes=outcomes.reset_index(drop=True), window=window, as_of=cut)


def derive_icp(
    settings: Settings, store: Store, *, now: datetime, as_of: datetime | None = None
) -> DeriveResult:
    """Derive a new ICP version from the mirror and store it with its evidence and model.

    ``as_of`` defaults to the end of the mirror's observed history, not ``now``.
    """
    base = _base(settings, store, as_of=as_of, now=now)
    cut = base.as_of
    dimensions = settings.segments.dimensions
    leakage = coverage_asymmetry(base.accounts, base.outcomes, dimensions)
    evidence = evidence_table(
        base.accounts, base.outcomes, _evidence_settings(settings, leakage.won_only)
    )
    derivation = derive(
        evidence,
        base.accounts,
        DeriveSettings(
            fdr=settings.icp.fdr,
            min_lift=settings.icp.min_lift,
            exclusions=tuple(settings.icp.exclusions),
        ),
    )
    labels = best_fit_labels(base.outcomes, evidence.outcome, settings.lookalike.best_fit_share)
    model_dims = [d for d in dimensions if d not in leakage.customer_only]
    model = train(base.accounts, labels, model_dims, _lookalike_settings(settings))
    if model.fallback_reason:
        log.warning("lookalike_not_trained", reason=model.fallback_reason)
    warnings = [
        *history_warnings(base.window, pd.Timestamp(now), cut, base.outcomes, settings),
        *evidence.warnings,
        *leakage.warnings,
        *model_warnings(
            model.cv_auc,
            trained=model.pipeline is not None,
            min_auc=settings.lookalike.min_auc,
        ),
    ]
    for warning in warnings:
        log.warning("data_warning", code=warning.code, message=warning.message)
    dropped = [str(w.numbers["metric"]) for w in evidence.warnings if w.code == "metric_dropped"]
    seq = store.next_icp_seq()
    definition = IcpDefinition(
        version=f"v{seq}",
        as_of=cut.to_pydatetime(),
        derived_at=now,
        dimensions=tuple(settings.segments.dimensions),
        employee_bands=tuple(settings.segments.employee_bands),
        revenue_bands=tuple(settings.segments.revenue_bands),
        rules=derivation.rules,
        baseline={
            str(k): float(v)
            for k, v in evidence.baseline.items()
            if _is_metric(str(k), v) and str(k) not in dropped
        },
    )
    segments = evidence_report.segment_records(derivation.segments)
    for record in segments:
        for name in dropped:
            record["metrics"].pop(name, None)
    outcomes = base.outcomes
    counts = {
        "accounts": len(base.accounts),
        "customers": int(outcomes["is_customer"].sum()),
        "closed_new_business": int((outcomes["nb_won"] + outcomes["nb_lost"]).sum()),
        "segments_measured": len(derivation.segments),
        "segments_tested": int(derivation.segments["tested"].sum()) if len(segments) else 0,
    }
    summary = evidence_report.summary(
        definition,
        accounts=counts["accounts"],
        customers=counts["customers"],
        closed_deals=counts["closed_new_business"],
        tested=counts["segments_tested"],
        measured=counts["segments_measured"],
        model=model.summary(),
        fdr=settings.icp.fdr,
    )
    store.save_icp_version(
        version=definition.version,
        seq=seq,
        as_of=definition.as_of,
        definition=to_toml(definition),
        evidence=segments,
        model_summary=model.summary(),
        model=_dump(model),
        now=now,
    )
    files = _write_files(
        settings,
        definition,
        derivation.segments,
        summary,
        model.summary(),
        quality=data_quality(base.window, warnings, evidence.weights),
    )
    log.info(
        "icp_derived",
        version=definition.version,
        green=len(definition.rules_of(Tier.GREEN)),
        red=len(definition.rules_of(Tier.RED)),
        cv_auc=model.summary()["cv_auc"],
    )
    return DeriveResult(
        definition=definition,
        segments=segments,
        summary=summary,
        model=model.summary(),
        files=files,
        counts=counts,
        window=base.window,
        warnings=warnings,
        metrics={
            "used": [m for m in METRICS if evidence.weights.get(m, 0.0) > 0],
            "dropped": dropped,
            "unweighted": [
                m for m in METRICS if evidence.weights.get(m, 0.0) <= 0 and m not in dropped
            ],
        },
        baseline_detail=baseline_detail(evidence.baseline),
        leakage=leakage.coverage,
    )


def _is_metric(name: str, value: Any) -> bool:
    from icp_sync.segments import METRICS

    return name in METRICS and value is not None and bool(np.isfinite(float(value)))


def _dump(model: LookalikeModel) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(model, buffer, compress=3)
    return buffer.getvalue()


def load_model(blob: bytes | None) -> LookalikeModel | None:
    if blob is None:
        return None
    loaded = joblib.load(io.BytesIO(blob))
    return loaded if isinstance(loaded, LookalikeModel) else None


def _write_files(
    settings: Settings,
    definition: IcpDefinition,
    segments: pd.DataFrame,
    summary: list[str],
    model: dict[str, Any],
    *,
    quality: list[str],
) -> dict[str, Path]:
    folder = settings.resolve(settings.icp.output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    definition_file = folder / f"icp-{definition.version}.toml"
    report_file = folder / f"icp-{definition.version}-evidence.md"
    definition_file.write_text(to_toml(definition), encoding="utf-8")
    report_file.write_text(
        evidence_report.markdown(definition, segments, summary, model, quality=quality),
        encoding="utf-8",
    )
    return {"definition": definition_file, "evidence": report_file}


def active_definition(
    settings: Settings, store: Store, *, now: datetime
) -> tuple[IcpDefinition, LookalikeModel | None]:
    """The ICP in force: the configured (edited) file, else the latest derived version.

    With neither, a first version is derived now.
    """
    if settings.icp.definition is not None:
        path = settings.icp.definition
        definition = from_toml(path.read_text(encoding="utf-8"), source=str(path))
        stored = store.icp_version(definition.version)
        return definition, load_model(stored.model) if stored else None
    stored = store.icp_version()
    if stored is None:
        log.info("icp_missing", action="deriving the first ICP version")
        derive_icp(settings, store, now=now)
        stored = store.icp_version()
        if stored is None:
            raise PipelineError("deriving the first ICP version stored nothing")
    return from_toml(stored.definition, source=f"stored {stored.version}"), load_model(stored.model)


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
    settings: Settings,
    store: Store,
    *,
    now: datetime,
    definition: IcpDefinition | None = None,
    model: LookalikeModel | None = None,
    as_of: datetime | None = None,
    keep: bool = True,
) -> ScoreResult:
    """Tier and score every account with the active ICP (stored unless ``keep`` is false)."""
    if definition is None:
        definition, model = active_definition(settings, store, now=now)
    base = _base(settings, store, as_of=as_of, now=now)
    accounts = base.accounts
    lifts = _rule_lifts(accounts, definition)
    fitted = model or LookalikeModel(
        pipeline=None,
        dimensions=definition.dimensions,
        fallback_reason="no look-alike model for this ICP version; scores come from segment rules",
    )
    scores = score_accounts(fitted, accounts, fallback=lifts)
    assignment = assign_tiers(
        accounts, definition, scores=scores.score, green_min_score=settings.tiers.green_min_score
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
            "is_customer": base.outcomes["is_customer"].to_numpy(dtype=bool),
        }
    )
    if keep:
        store.save_scores(definition.version, frame, now=now)
    return ScoreResult(
        version=definition.version,
        frame=frame,
        tiers=tier_counts(frame["tier"]),
        overrides=assignment.overrides,
        invalid_overrides=assignment.invalid_overrides,
        model=fitted.summary(),
    )


def _rule_lifts(accounts: pd.DataFrame, definition: IcpDefinition) -> pd.Series:
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

    def as_dict(self) -> dict[str, Any]:
        """The ``tal --json`` document (contract: ``version`` and ``accounts``)."""
        columns = ["account_id", "name", "rank", "score", "tier", "segment", "reasons"]
        records = self.accounts[columns].astype(object).where(self.accounts[columns].notna(), None)
        return {
            "name": self.name,
            "version": self.version,
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
    }
    return chosen, coverage


def tal(settings: Settings, store: Store, *, now: datetime, size: int | None = None) -> TalResult:
    """Build, store and return the named TAL of the active ICP version."""
    definition, model = active_definition(settings, store, now=now)
    scored = score(settings, store, now=now, definition=definition, model=model)
    members_frame, coverage = build_tal(scored.frame, definition, size or settings.tal.size)
    tal_id = store.save_tal(
        name=settings.tal.name,
        version=definition.version,
        members=members_frame,
        coverage=coverage,
        now=now,
    )
    log.info(
        "tal_built", name=settings.tal.name, version=definition.version, size=len(members_frame)
    )
    return TalResult(
        name=settings.tal.name,
        version=definition.version,
        accounts=members_frame,
        coverage=coverage,
        tal_id=tal_id,
    )
