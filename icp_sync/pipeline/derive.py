"""``derive``: a new ICP version from the mirror, stored with its evidence and model.

Also the ICP in force for scoring (the edited definition file, else the latest version),
and the look-alike model's storage form.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from icp_sync import evidence as evidence_report
from icp_sync.config import Settings
from icp_sync.diagnostics import DataWarning, ObservationWindow, coverage_asymmetry
from icp_sync.errors import PipelineError
from icp_sync.icp import DeriveSettings, IcpDefinition, derive, to_toml
from icp_sync.log import get_logger
from icp_sync.model import Tier
from icp_sync.pipeline.history import History, evidence_settings, lookalike_settings
from icp_sync.quality import (
    baseline_detail,
    data_quality,
    history_warnings,
    model_warnings,
    plausibility_warnings,
)
from icp_sync.segments import METRICS, evidence_table
from icp_sync.store import Store

if TYPE_CHECKING:
    from icp_sync.lookalike import LookalikeModel

__all__ = ["DeriveResult", "derive_icp", "load_model"]

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


def derive_icp(
    settings: Settings,
    store: Store,
    history: History,
    *,
    now: datetime,
    as_of: datetime | None = None,
) -> DeriveResult:
    """Derive a new ICP version from the history and store it with its evidence and model.

    ``as_of`` defaults to the end of the mirror's observed history, not ``now``.
    """
    from icp_sync.lookalike import MODEL_INPUTS, best_fit_labels, train

    base = history.base(settings, as_of=as_of, now=now)
    cut = base.as_of
    _require_history(base.outcomes, history, cut)
    dimensions = settings.segments.dimensions
    leakage = coverage_asymmetry(base.accounts, base.outcomes, dimensions, MODEL_INPUTS)
    evidence = evidence_table(
        base.accounts, base.outcomes, evidence_settings(settings, leakage.won_only)
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
    model = train(
        base.accounts,
        labels,
        model_dims,
        lookalike_settings(settings),
        without=leakage.customer_only,
    )
    if model.fallback_reason:
        log.warning("lookalike_not_trained", reason=model.fallback_reason)
    warnings = [
        *history_warnings(base.window, pd.Timestamp(now), cut, base.outcomes, settings),
        *evidence.warnings,
        *plausibility_warnings({"nrr": float(evidence.baseline.get("nrr", float("nan")))}),
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
    seq = store.versions.next_seq()
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
    store.versions.save(
        version=definition.version,
        seq=seq,
        as_of=definition.as_of,
        definition=to_toml(definition),
        evidence=segments,
        model_summary=model.summary(),
        model=_dump(model),
        now=now,
    )
    # a dropped metric carries no information: no value, no interval
    detail = {
        name: figures
        for name, figures in baseline_detail(evidence.baseline).items()
        if name not in dropped
    }
    files = _write_files(
        settings,
        definition,
        derivation.segments,
        summary,
        model.summary(),
        quality=data_quality(base.window, warnings, evidence.weights),
        detail=detail,
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
        baseline_detail=detail,
        leakage=leakage.coverage,
    )


def _require_history(outcomes: pd.DataFrame, history: History, cut: pd.Timestamp) -> None:
    """Refuse to derive from a history with no customer and no closed deal before ``cut``."""
    closed = int((outcomes["nb_won"] + outcomes["nb_lost"]).sum())
    if closed or outcomes["is_customer"].any():
        return
    dates = history.opportunities.get("close_date", pd.Series(dtype="datetime64[ns, UTC]"))
    earliest = dates.dropna().min() if len(dates) else None
    since = (
        ""
        if earliest is None or pd.isna(earliest)
        else (f"; the earliest deal closed on {earliest:%Y-%m-%d}")
    )
    raise PipelineError(
        f"no customer and no closed deal before {cut:%Y-%m-%d}: nothing to learn an ICP from"
        f"{since}. Pick a later --as-of"
    )


def load_model(blob: bytes | None) -> LookalikeModel | None:
    """A stored look-alike model, or None when there is none (or it is not one)."""
    if blob is None:
        return None
    import joblib

    from icp_sync.lookalike import LookalikeModel

    loaded = joblib.load(io.BytesIO(blob))
    if not isinstance(loaded, LookalikeModel):
        return None
    # a model stored by an earlier release lacks the attributes added since: their defaults
    for name, default in (("without", ()),):
        if not hasattr(loaded, name):
            object.__setattr__(loaded, name, default)
    return loaded


def _dump(model: LookalikeModel) -> bytes:
    import joblib

    buffer = io.BytesIO()
    joblib.dump(model, buffer, compress=3)
    return buffer.getvalue()


def _is_metric(name: str, value: Any) -> bool:
    return name in METRICS and value is not None and bool(np.isfinite(float(value)))


def _write_files(
    settings: Settings,
    definition: IcpDefinition,
    segments: pd.DataFrame,
    summary: list[str],
    model: dict[str, Any],
    *,
    quality: list[str],
    detail: dict[str, dict[str, float | int | None]],
) -> dict[str, Path]:
    folder = settings.resolve(settings.icp.output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    definition_file = folder / f"icp-{definition.version}.toml"
    report_file = folder / f"icp-{definition.version}-evidence.md"
    definition_file.write_text(to_toml(definition), encoding="utf-8")
    report_file.write_text(
        evidence_report.markdown(
            definition, segments, summary, model, quality=quality, baseline_detail=detail
        ),
        encoding="utf-8",
    )
    return {"definition": definition_file, "evidence": report_file}
