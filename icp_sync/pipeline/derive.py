"""``derive``: a new ICP version from the mirror, stored with its evidence and model.

Also the ICP in force for scoring (the edited definition file, else the latest version),
and the look-alike model's storage form.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd

from icp_sync import evidence as evidence_report
from icp_sync.config import Settings
from icp_sync.icp import DeriveSettings, IcpDefinition, derive, to_toml
from icp_sync.log import get_logger
from icp_sync.lookalike import LookalikeModel, best_fit_labels, train
from icp_sync.model import Tier
from icp_sync.pipeline.history import History, evidence_settings, lookalike_settings
from icp_sync.segments import METRICS, evidence_table
from icp_sync.store import Store

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

    def as_dict(self) -> dict[str, Any]:
        """The ``derive --json`` document (contract: ``version`` and ``segments``)."""
        return {
            "version": self.definition.version,
            "as_of": self.definition.as_of.isoformat(),
            "segments": self.segments,
            "baseline": self.definition.baseline,
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
    """Derive a new ICP version from the history and store it with its evidence and model."""
    cut = pd.Timestamp(as_of or now)
    base = history.base(settings, as_of=cut, now=now)
    evidence = evidence_table(base.accounts, base.outcomes, evidence_settings(settings))
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
    model = train(base.accounts, labels, settings.segments.dimensions, lookalike_settings(settings))
    if model.fallback_reason:
        log.warning("lookalike_not_trained", reason=model.fallback_reason)
    seq = store.versions.next_seq()
    definition = IcpDefinition(
        version=f"v{seq}",
        as_of=cut.to_pydatetime(),
        derived_at=now,
        dimensions=tuple(settings.segments.dimensions),
        employee_bands=tuple(settings.segments.employee_bands),
        revenue_bands=tuple(settings.segments.revenue_bands),
        rules=derivation.rules,
        baseline={str(k): float(v) for k, v in evidence.baseline.items() if _is_metric(str(k), v)},
    )
    segments = evidence_report.segment_records(derivation.segments)
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
    files = _write_files(settings, definition, derivation.segments, summary, model.summary())
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
    )


def load_model(blob: bytes | None) -> LookalikeModel | None:
    """A stored look-alike model, or None when there is none (or it is not one)."""
    if blob is None:
        return None
    loaded = joblib.load(io.BytesIO(blob))
    return loaded if isinstance(loaded, LookalikeModel) else None


def _dump(model: LookalikeModel) -> bytes:
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
) -> dict[str, Path]:
    folder = settings.resolve(settings.icp.output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    definition_file = folder / f"icp-{definition.version}.toml"
    report_file = folder / f"icp-{definition.version}-evidence.md"
    definition_file.write_text(to_toml(definition), encoding="utf-8")
    report_file.write_text(
        evidence_report.markdown(definition, segments, summary, model), encoding="utf-8"
    )
    return {"definition": definition_file, "evidence": report_file}
