"""Tiers, scores and the TAL under one ICP version, on frames alone (no store, no CRM)."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd

from icp_sync.icp import IcpDefinition, SegmentRule
from icp_sync.model import Tier
from icp_sync.tiering import build_tal, rule_lifts, score


def _definition() -> IcpDefinition:
    return IcpDefinition(
        version="v3",
        as_of=datetime(2026, 1, 1, tzinfo=UTC),
        derived_at=datetime(2026, 1, 2, tzinfo=UTC),
        dimensions=("industry", "employees_band"),
        employee_bands=(1, 50, 200, 1000, 5000),
        revenue_bands=(0, 1e6),
        rules=(
            SegmentRule(
                rule={"industry": "Healthcare"}, tier=Tier.GREEN, n=300, lift=1.5, q_value=0.001
            ),
            SegmentRule(rule={"industry": "Government"}, tier=Tier.RED, lift=0.5, q_value=0.01),
            SegmentRule(
                rule={"industry": "Healthcare", "employees_band": "1-49"},
                tier=Tier.RED,
                source="exclusion",
            ),
        ),
        baseline={"win_rate": 0.2, "retention": 0.85},
    )


def _scored(rows: list[tuple[str, int, str, bool]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "account_id": account_id,
                "name": f"Company {account_id}",
                "score": points,
                "tier": tier,
                "rule_tier": tier,
                "segment": "Healthcare" if tier == "Green" else "other",
                "reasons": "",
                "is_customer": customer,
            }
            for account_id, points, tier, customer in rows
        ]
    )


def test_tal_ranks_prospects_by_fit_and_leaves_out_customers_and_red() -> None:
    """Customers and Red accounts never make the TAL; ties go to the better tier."""
    scored = _scored(
        [
            ("A", 90, "Green", True),
            ("B", 80, "Red", False),
            ("C", 70, "Yellow", False),
            ("D", 70, "Green", False),
            ("E", 40, "Yellow", False),
        ]
    )

    members, coverage = build_tal(scored, _definition(), size=2)

    assert members["account_id"].tolist() == ["D", "C"]
    assert members["rank"].tolist() == [1, 2]
    assert coverage["prospects_considered"] == 3
    assert coverage["green_share"] == 0.5
    assert coverage["green_segments"] == {"Healthcare": 1}


def test_red_rules_decide_before_green_ones() -> None:
    """An account in a Green segment and a Red exclusion carries the Red rule's lift."""
    accounts = pd.DataFrame(
        {
            "industry": ["Healthcare", "Healthcare", "Government", "Retail"],
            "employees_band": ["200-999", "1-49", "50-199", "50-199"],
        }
    )

    lifts = rule_lifts(accounts, _definition())

    assert lifts.tolist()[0] == 1.5
    assert lifts.tolist()[2] == 0.5
    assert lifts.tolist()[3] == 1.0


def test_without_a_model_segment_lifts_rank_and_the_reasons_say_so() -> None:
    """No look-alike model: Green-segment accounts outscore Red ones, and reasons explain why."""
    accounts = pd.DataFrame(
        {
            "account_id": ["1", "2", "3"],
            "name": ["Mercy Health", "State Agency", "Shopfront"],
            "industry": ["Healthcare", "Government", "Retail"],
            "employees_band": ["200-999", "200-999", "200-999"],
        }
    )
    outcomes = pd.DataFrame({"is_customer": [False, False, True]})

    result = score(accounts, outcomes, _definition(), None, green_min_score=0)

    frame = result.frame.set_index("account_id")
    assert frame.loc["1", "tier"] == "Green"
    assert frame.loc["2", "tier"] == "Red"
    assert frame.loc["1", "score"] > frame.loc["3", "score"] > frame.loc["2", "score"]
    assert "segment rules" in frame.loc["1", "reasons"]
    assert result.tiers == {"Green": 1, "Yellow": 1, "Red": 1}
    assert frame["is_customer"].tolist() == [False, False, True]
