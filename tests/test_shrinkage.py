"""Empirical-Bayes shrinkage that cannot collapse, and that agrees with the segment test."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from icp_sync.icp import DeriveSettings, derive
from icp_sync.segments import EvidenceSettings, evidence_table
from icp_sync.shrinkage import floor_warnings, shrink


def _world(n: int, seed: int, tiny: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Win rates with one real effect (Healthcare) and a long tail of tiny micro-segments."""
    rng = np.random.default_rng(seed)
    industry = rng.choice(["Healthcare", "Retail", "Software", "Media", "Energy"], n)
    micro = np.char.add("M", rng.integers(0, tiny, n).astype(str))
    win_p = np.where(industry == "Healthcare", 0.45, 0.22)
    closed = rng.integers(1, 3, n)
    won = rng.binomial(closed, win_p)
    zeros = np.zeros(n)
    outcomes = pd.DataFrame(
        {
            "is_customer": won > 0,
            "active": won > 0,
            "nb_won": won,
            "nb_lost": closed - won,
            "eligible": zeros,
            "retained": zeros,
            "arr_start": zeros,
            "arr_end": zeros,
            "arr": zeros,
            "cycle_sum": zeros,
            "cycle_n": zeros,
            "cycle_sq": zeros,
            "acv_sum": zeros,
            "acv_n": zeros,
            "acv_sq": zeros,
            "nps": np.nan,
            "adoption": np.nan,
        }
    )
    accounts = pd.DataFrame({"industry": industry, "micro": micro})
    return accounts, outcomes


@pytest.mark.parametrize("seed", [0, 1, 2], ids=["seed-0", "seed-1", "seed-2"])
def test_tiny_segments_never_shrink_a_significant_lift_to_one(seed: int) -> None:
    """1,500 micro-segments of ~4 accounts: no segment has q ~ 0 and a lift of exactly 1.0."""
    accounts, outcomes = _world(6_000, seed, tiny=1_500)
    settings = EvidenceSettings(
        dimensions=("industry", "micro"), max_depth=1, weights={"win_rate": 1.0}
    )

    segments = derive(evidence_table(accounts, outcomes, settings), accounts, DeriveSettings())
    significant = segments.segments[segments.segments["q_value"] <= 0.05]

    assert len(significant) >= 1
    assert (significant["lift"].sub(1).abs() > 0.05).all()
    assert (np.sign(significant["lift"] - 1) == np.sign(significant["lift_raw"] - 1)).all()
    healthcare = segments.segments[segments.segments["rule"] == {"industry": "Healthcare"}]
    assert healthcare["tier"].iloc[0] == "Green"


def test_prior_is_held_at_its_floor_when_segments_do_not_differ() -> None:
    """Estimates no more spread than noise: the prior stays at its floor, and says so."""
    table = pd.DataFrame(
        {
            "rule": [{"industry": f"I{i}"} for i in range(8)],
            "win_rate": [0.30, 0.31, 0.29, 0.30, 0.30, 0.31, 0.29, 0.30],
            "win_rate_n": [100.0] * 8,
        }
    )

    floors = shrink(table, pd.Series({"win_rate": 0.30}), ["win_rate"], min_n=30)

    assert floors
    assert floors[0]["metric"] == "win_rate"
    # a segment of the minimum tested size keeps half its deviation; a larger one more
    deviation = (table["win_rate_shrunk"] - 0.30) / (table["win_rate"] - 0.30)
    assert (deviation.dropna() > 0.5).all()


def test_only_a_flat_prior_is_a_finding() -> None:
    """A prior held at its floor is reported when the tested segments showed no spread beyond
    noise, with the measured variance; a real spread smaller than the floor is no warning."""
    floors = [
        {
            "metric": "win_rate",
            "dimensions": "industry",
            "between_variance": -0.002,
            "floor": 0.005,
        },
        {"metric": "win_rate", "dimensions": "region", "between_variance": 0.0016, "floor": 0.005},
        {"metric": "nrr", "dimensions": "industry", "between_variance": 0.001, "floor": 0.004},
    ]

    [warning] = floor_warnings(floors, ["win_rate", "nrr"])

    assert warning.code == "shrinkage_floor"
    assert warning.numbers["metric"] == "win_rate"
    assert warning.numbers["dimensions"] == ["industry"]
    assert warning.numbers["between_variance"] == [-0.002]
    assert floor_warnings(floors, ["nrr"]) == []
