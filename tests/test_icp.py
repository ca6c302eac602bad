"""ICP derivation: FDR-controlled, parsimonious segment choice; definitions; tiering."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from icp_sync.errors import ConfigError
from icp_sync.icp import (
    DeriveSettings,
    IcpDefinition,
    SegmentRule,
    assign_tiers,
    derive,
    from_toml,
    rule_label,
    to_toml,
)
from icp_sync.model import Tier
from icp_sync.segments import EvidenceSettings, evidence_table

WEIGHTS = {"win_rate": 0.4, "retention": 0.6}
INDUSTRIES = ["Software", "Healthcare", "Retail", "Finance", "Education", "Government"]
BANDS = ["1-49", "50-199", "200-999", "1000-4999"]


def _world(
    n: int = 12_000, seed: int = 0, effects: dict[tuple[str, str | None], float] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Accounts with dimensions and per-account outcomes; ``effects`` multiply win odds."""
    rng = np.random.default_rng(seed)
    industry = rng.choice(INDUSTRIES, n)
    band = rng.choice(BANDS, n)
    accounts = pd.DataFrame(
        {"account_id": [f"A{i}" for i in range(n)], "industry": industry, "employees_band": band}
    )
    quality = np.zeros(n)
    for (ind, bnd), effect in (effects or {}).items():
        hit = (industry == ind) & ((band == bnd) if bnd else True)
        quality[hit] += effect
    win_p = 1 / (1 + np.exp(-(-1.3 + quality)))
    closed = rng.integers(1, 4, n)
    won = rng.binomial(closed, win_p)
    customer = won > 0
    eligible = np.where(customer, rng.integers(1, 4, n), 0)
    keep_p = 1 / (1 + np.exp(-(1.6 + quality)))
    retained = rng.binomial(eligible, keep_p)
    outcomes = pd.DataFrame(
        {
            "is_customer": customer,
            "active": customer,
            "nb_won": won,
            "nb_lost": closed - won,
            "eligible": eligible,
            "retained": retained,
            "arr_start": np.where(eligible > 0, 100.0, 0.0),
            "arr_end": np.where(eligible > 0, 100.0 * retained / np.maximum(eligible, 1), 0.0),
            "arr": np.where(customer, 100.0, 0.0),
            "cycle_sum": 0.0,
            "cycle_n": 0,
            "cycle_sq": 0.0,
            "acv_sum": 0.0,
            "acv_n": 0,
            "acv_sq": 0.0,
            "nps": np.nan,
            "adoption": np.nan,
        }
    )
    return accounts, outcomes


def _derive(
    accounts: pd.DataFrame, outcomes: pd.DataFrame, **settings: object
) -> list[SegmentRule]:
    evidence = evidence_table(
        accounts,
        outcomes,
        EvidenceSettings(dimensions=("industry", "employees_band"), weights=WEIGHTS),
    )
    return list(derive(evidence, accounts, DeriveSettings(**settings)).rules)  # type: ignore[arg-type]


def test_planted_narrow_segment_is_found_without_its_parent() -> None:
    """A strong Healthcare x 200-999 effect yields that segment, not all of Healthcare."""
    accounts, outcomes = _world(effects={("Healthcare", "200-999"): 1.5})

    rules = _derive(accounts, outcomes)

    assert [(r.rule, r.tier) for r in rules] == [
        ({"industry": "Healthcare", "employees_band": "200-999"}, Tier.GREEN)
    ]
    assert rules[0].q_value < 0.001
    assert rules[0].lift > 1.15


def test_planted_broad_segment_is_not_split_into_children() -> None:
    """A whole-industry Red effect yields the industry once, not each of its size bands."""
    accounts, outcomes = _world(effects={("Government", None): -1.5})

    rules = _derive(accounts, outcomes)

    assert [(r.rule, r.tier) for r in rules] == [({"industry": "Government"}, Tier.RED)]


@pytest.mark.parametrize("seed", [1, 2, 3, 4], ids=lambda s: f"seed-{s}")
def test_noise_produces_no_tiered_segment(seed: int) -> None:
    """With no real segment effect, FDR control leaves every segment Yellow."""
    accounts, outcomes = _world(seed=seed)

    assert _derive(accounts, outcomes) == []


def test_small_real_effects_stay_yellow_below_the_minimum_lift() -> None:
    """A significant but small difference does not make a segment Green."""
    accounts, outcomes = _world(n=40_000, effects={("Retail", "50-199"): 0.15})

    assert _derive(accounts, outcomes, min_lift=0.15) == []


def test_exclusions_are_red_whatever_the_data_say() -> None:
    """Configured exclusions become Red rules marked as such, with measured figures."""
    accounts, outcomes = _world()

    rules = _derive(accounts, outcomes, exclusions=({"industry": ["Education", "Government"]},))

    assert len(rules) == 1
    assert rules[0].tier is Tier.RED
    assert rules[0].source == "exclusion"
    assert rules[0].n == int(accounts["industry"].isin(["Education", "Government"]).sum())


def _definition() -> IcpDefinition:
    return IcpDefinition(
        version="v7",
        as_of=datetime(2026, 1, 1, tzinfo=UTC),
        derived_at=datetime(2026, 1, 2, tzinfo=UTC),
        dimensions=("industry", "employees_band"),
        employee_bands=(1, 50, 200, 1000, 5000),
        revenue_bands=(0, 1e6),
        rules=(
            SegmentRule(
                rule={"industry": "Healthcare", "employees_band": "200-999"},
                tier=Tier.GREEN,
                n=400,
                lift=1.4,
                q_value=0.0001,
                metrics={"win_rate": 0.45},
            ),
            SegmentRule(
                rule={"industry": "Healthcare", "employees_band": "200-999"},
                tier=Tier.RED,
                source="exclusion",
            ),
            SegmentRule(rule={"industry": "Government"}, tier=Tier.RED, lift=0.6),
        ),
        baseline={"win_rate": 0.2},
    )


def test_definition_round_trips_through_toml() -> None:
    """The TOML a marketer edits reads back to the same definition."""
    definition = _definition()

    text = to_toml(definition)
    again = from_toml(text)

    assert "# Healthcare, 200-999 employees" in text
    assert again == definition


def test_edited_definition_problems_are_listed_with_paths() -> None:
    """A broken hand edit reports every problem with its TOML path."""
    text = to_toml(_definition()).replace('tier = "Red"', 'tier = "Purple"', 1)
    text = text.replace('industry = "Government"', 'shoe = "Government"')

    with pytest.raises(ConfigError) as caught:
        from_toml(text, source="icp-v7.toml")

    assert any(p.startswith("segments[1].tier:") for p in caught.value.problems)
    assert any(p.startswith("segments[2].rule.shoe:") for p in caught.value.problems)


def test_tiers_red_first_then_green_then_overrides() -> None:
    """Red rules beat Green ones; valid overrides win and are counted; bad ones are ignored."""
    accounts = pd.DataFrame(
        {
            "industry": ["Healthcare", "Healthcare", "Government", "Retail", "Retail"],
            "employees_band": ["200-999", "50-199", "1-49", "50-199", "50-199"],
            "attr_icp_tier_override": [None, None, "green", "maybe", None],
        }
    )
    definition = _definition()
    green_only = replace(definition, rules=definition.rules[::2])

    result = assign_tiers(accounts, green_only)
    blocked = assign_tiers(accounts, definition)

    assert result.frame["rule_tier"].tolist() == ["Green", "Yellow", "Red", "Yellow", "Yellow"]
    assert result.frame["tier"].tolist() == ["Green", "Yellow", "Green", "Yellow", "Yellow"]
    assert result.overrides["Green"] == 1
    assert result.invalid_overrides == 1
    assert result.frame["segment"].tolist()[:2] == [
        "Healthcare, 200-999 employees",
        "Healthcare, 50-199 employees",
    ]
    assert blocked.frame["rule_tier"].iloc[0] == "Red"


def test_low_scores_demote_green_accounts() -> None:
    """A Green-segment account scoring under green_min_score is Yellow."""
    accounts = pd.DataFrame({"industry": ["Healthcare"] * 2, "employees_band": ["200-999"] * 2})

    result = assign_tiers(accounts, _definition(), scores=pd.Series([80, 10]), green_min_score=20)

    assert result.frame["rule_tier"].tolist() == ["Red", "Red"]
    relaxed = replace(_definition(), rules=_definition().rules[:1])
    assert assign_tiers(accounts, relaxed, scores=pd.Series([80, 10]), green_min_score=20).frame[
        "tier"
    ].tolist() == ["Green", "Yellow"]


def test_rule_labels_read_as_words() -> None:
    """Rules print the way a rep would say them."""
    assert rule_label({"industry": "Retail", "employees_band": "1-49"}) == "Retail, 1-49 employees"
    assert rule_label({"attr_plan_tier": "Pro", "region": ["EMEA", "APAC"]}) == (
        "plan tier Pro, EMEA or APAC"
    )
