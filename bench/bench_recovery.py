"""How well derive recovers a planted ICP, on generated CRMs of several shapes and seeds.

For each seed: the Green and Red segments derive chooses, against the ones the generator
planted (precision and recall), at the end of the history and at a backtest as-of date, on
plain data, on data without any signal, and on a history that ended three years ago with
attributes recorded only for won deals. The pure core runs as ``derive`` runs it, without
the store. ``ICP_SYNC_BENCH_RECOVERY_SEEDS`` (default 7) and
``ICP_SYNC_BENCH_RECOVERY_ACCOUNTS`` (default 20000) set the size.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from icp_sync.config import IcpConfig, SegmentsConfig
from icp_sync.diagnostics import coverage_asymmetry, observation_window
from icp_sync.icp import DeriveSettings, derive
from icp_sync.lifecycle import LifecycleSettings, account_outcomes, history_as_of
from icp_sync.sandbox.generate import GREEN, RED, SyntheticCrm, generate
from icp_sync.segments import EvidenceSettings, evidence_table, with_dimensions

BACKTEST = pd.Timestamp("2025-01-01", tz="UTC")
THREE_YEARS_AGO = datetime(2023, 11, 1, tzinfo=UTC)
Rule = frozenset[tuple[str, Any]]


def chosen(crm: SyntheticCrm, dimensions: Sequence[str], as_of: pd.Timestamp | None) -> set[Rule]:
    """The Green and Red rules derive chooses, tagged with their tier."""
    window = observation_window(crm.accounts, crm.opportunities, pd.Timestamp.now(tz="UTC"))
    cut = window.end if as_of is None else as_of
    accounts, opportunities = history_as_of(crm.accounts, crm.opportunities, cut)
    outcomes = account_outcomes(
        accounts,
        opportunities,
        as_of=cut,
        settings=LifecycleSettings(observed_from=window.start, snapshot_fields=as_of is None),
    ).reset_index(drop=True)
    frame = with_dimensions(accounts, SegmentsConfig(dimensions=list(dimensions)))
    frame = frame.reset_index(drop=True)
    leakage = coverage_asymmetry(frame, outcomes, dimensions)
    settings = EvidenceSettings(
        dimensions=tuple(dimensions),
        weights=IcpConfig().weights,
        win_rate_blind=frozenset(leakage.won_only),
    )
    segments = derive(evidence_table(frame, outcomes, settings), frame, DeriveSettings()).segments
    picked = segments[segments["tier"] != "Yellow"]
    return {
        frozenset({**dict(rule), "tier": tier}.items())
        for rule, tier in zip(picked["rule"], picked["tier"], strict=True)
    }


def planted() -> set[Rule]:
    """The generator's Green and Red segments, tagged with their tier."""
    return {frozenset({**r, "tier": "Green"}.items()) for r in GREEN} | {
        frozenset({**r, "tier": "Red"}.items()) for r in RED
    }


def main() -> None:
    """Print precision and recall of the planted segments per shape and seed."""
    seeds = int(os.environ.get("ICP_SYNC_BENCH_RECOVERY_SEEDS", "7"))
    n = int(os.environ.get("ICP_SYNC_BENCH_RECOVERY_ACCOUNTS", "20000"))
    truth = planted()
    print(f"recovery of the planted Green and Red segments, {n:,} accounts")
    print(f"{'shape':<36} {'seed':>4} {'found':>5} {'right':>5} {'precision':>9} {'recall':>6}")
    for seed in range(seeds):
        plain = generate(n, seed=seed)
        old = generate(n, seed=seed, history_end=THREE_YEARS_AGO, won_only_attributes=2)
        noise = generate(n, seed=seed, signal=False)
        leaked = list(old.truth["pathologies"]["won_only_attributes"])
        dims = ["industry", "employees_band", "region"]
        shapes = [
            ("end of history", plain, dims, None, truth),
            ("backtest as of 2025-01-01", plain, dims, BACKTEST, truth),
            ("ended 3 years ago, 2 won-only fields", old, [*dims, *leaked], None, truth),
            ("no signal", noise, dims, None, set()),
        ]
        for name, crm, dimensions, as_of, expected in shapes:
            started = time.perf_counter()
            found = chosen(crm, dimensions, as_of)
            right = len(found & expected)
            precision = right / len(found) if found else 1.0
            recall = right / len(expected) if expected else 1.0
            print(
                f"{name:<36} {seed:>4} {len(found):>5} {right:>5} {precision:>9.2f} "
                f"{recall:>6.2f}   ({time.perf_counter() - started:.1f} s)"
            )


if __name__ == "__main__":
    main()
