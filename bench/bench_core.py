"""ICP core at scale: derive (lifecycle, evidence, selection, look-alike) and score N accounts.

Runs the pure core on in-memory frames from the generator, stage by stage, and prints wall
time and peak memory (RSS) of the process. ``ICP_SYNC_BENCH_ACCOUNTS`` sets the sizes
(comma-separated; default ``100000,1000000``).
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable
from typing import Any

import pandas as pd

from icp_sync.config import IcpConfig, LookalikeConfig, SegmentsConfig
from icp_sync.diagnostics import coverage_asymmetry, observation_window
from icp_sync.icp import DeriveSettings, IcpDefinition, assign_tiers, derive
from icp_sync.lifecycle import LifecycleSettings, account_outcomes
from icp_sync.lookalike import (
    LookalikeSettings,
    best_fit_labels,
    score_accounts,
    train,
)
from icp_sync.model import Tier
from icp_sync.sandbox.generate import generate
from icp_sync.segments import EvidenceSettings, evidence_table, with_dimensions
from icp_sync.similar import similar_customers


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed(label: str, timings: dict[str, float], step: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    result = step()
    timings[label] = time.perf_counter() - started
    print(f"  {label:<28} {timings[label]:7.1f} s   peak RSS {_peak_mb():7.0f} MB", flush=True)
    return result


def run(n: int) -> dict[str, float]:
    """Time every stage of derive + score on ``n`` generated accounts."""
    timings: dict[str, float] = {}
    print(f"{n:,} accounts")
    crm = _timed("generate", timings, lambda: generate(n, seed=0))
    print(f"  ({len(crm.opportunities):,} opportunities)")
    as_of = pd.Timestamp(crm.truth["as_of"])
    segments = SegmentsConfig()
    icp = IcpConfig()
    accounts = _timed(
        "dimensions",
        timings,
        lambda: with_dimensions(crm.accounts, segments).reset_index(drop=True),
    )
    window = _timed(
        "observation window",
        timings,
        lambda: observation_window(crm.accounts, crm.opportunities, as_of),
    )
    lifecycle = LifecycleSettings(observed_from=window.start)
    outcomes = _timed(
        "lifecycle outcomes",
        timings,
        lambda: account_outcomes(
            crm.accounts, crm.opportunities, as_of=as_of, settings=lifecycle
        ).reset_index(drop=True),
    )
    leakage = _timed(
        "coverage (leakage guard)",
        timings,
        lambda: coverage_asymmetry(accounts, outcomes, segments.dimensions),
    )
    settings = EvidenceSettings(
        dimensions=tuple(segments.dimensions),
        weights=icp.weights,
        min_accounts=segments.min_accounts,
        win_rate_blind=frozenset(leakage.won_only),
    )
    evidence = _timed(
        "segment evidence", timings, lambda: evidence_table(accounts, outcomes, settings)
    )
    derivation = _timed(
        "ICP selection (FDR, greedy)", timings, lambda: derive(evidence, accounts, DeriveSettings())
    )
    labels = best_fit_labels(outcomes, evidence.outcome, LookalikeConfig().best_fit_share)
    model = _timed(
        "look-alike train + 5-fold CV",
        timings,
        lambda: train(accounts, labels, segments.dimensions, LookalikeSettings()),
    )
    definition = IcpDefinition(
        version="bench",
        as_of=as_of.to_pydatetime(),
        derived_at=as_of.to_pydatetime(),
        dimensions=tuple(segments.dimensions),
        employee_bands=tuple(segments.employee_bands),
        revenue_bands=tuple(segments.revenue_bands),
        rules=derivation.rules,
    )
    scores = _timed("score every account", timings, lambda: score_accounts(model, accounts))
    _timed(
        "tier every account",
        timings,
        lambda: assign_tiers(accounts, definition, scores=scores.score),
    )
    reference = model.reference if model.reference is not None else pd.DataFrame()
    _timed(
        "similar best customers",
        timings,
        lambda: similar_customers(accounts, reference, keys=list(segments.dimensions[:2])),
    )
    core = sum(v for k, v in timings.items() if k != "generate")
    green = len([r for r in derivation.rules if r.tier is Tier.GREEN])
    auc = model.cv_auc
    print(f"  derive + score total        {core:7.1f} s   ({green} Green segments, AUC {auc:.3f})")
    timings["derive_and_score"] = core
    return timings


def main() -> None:
    """Run the sizes from ``ICP_SYNC_BENCH_ACCOUNTS``."""
    sizes = os.environ.get("ICP_SYNC_BENCH_ACCOUNTS", "100000,1000000")
    for size in sizes.split(","):
        run(int(size))


if __name__ == "__main__":
    main()
