"""The annual review on frames: predictions checked with intervals, tiers to change, refinement."""

from __future__ import annotations

import dataclasses

import pandas as pd

from icp_sync.adherence import parse_period
from icp_sync.icp import SegmentRule, from_toml, to_toml
from icp_sync.model import Tier
from icp_sync.period_review import predictions, refine, segment_changes
from tests.planted import END, crm, live_opportunities, planted_definition, tiered

PERIOD = parse_period("2026")


def _top_prospects(accounts: pd.DataFrame, n: int) -> frozenset[str]:
    """The Green prospects at the period start, as a TAL would hold them."""
    before = ~(accounts["customer_since"] < PERIOD.start) & (accounts["tier"] == "Green")
    return frozenset(accounts.loc[before, "account_id"].head(n))


def test_on_planted_data_every_prediction_holds() -> None:
    """Green wins and retains more than the rest, and Green TAL prospects convert more."""
    data = crm()
    accounts = tiered(data)
    checks = predictions(
        accounts,
        live_opportunities(data),
        period=PERIOD,
        tal=_top_prospects(accounts, 150),
        now=END,
    )
    assert [c["verdict"] for c in checks] == ["held", "held", "held"]
    assert all(c["difference"]["low"] > 0 for c in checks)


def test_with_tiers_shuffled_the_green_prediction_does_not_hold() -> None:
    """Tiers assigned at random carry no edge: the win-rate prediction is not shown to hold."""
    data = crm()
    accounts = tiered(data)
    accounts["tier"] = accounts["tier"].sample(frac=1, random_state=3).to_numpy()
    checks = predictions(
        accounts, live_opportunities(data), period=PERIOD, tal=frozenset(), now=END
    )
    assert checks[0]["verdict"] in ("not shown", "failed")
    assert checks[2]["verdict"] == "not enough data"


def test_a_wrong_green_rule_is_proposed_for_yellow_and_dropped_from_the_refinement() -> None:
    """A committed Green rule on an average segment (Retail) fails its test and is dropped."""
    data = crm()
    definition = planted_definition()
    wrong = SegmentRule(rule={"industry": "Retail"}, tier=Tier.GREEN)
    definition = dataclasses.replace(definition, rules=(*definition.rules, wrong))
    accounts = tiered(data)
    retail = accounts["industry"] == "Retail"
    accounts.loc[retail, "tier"] = "Green"
    changes = segment_changes(
        accounts, live_opportunities(data), definition, period=PERIOD, now=END
    )
    proposals = dict(zip(changes["segment"], changes["proposal"], strict=True))
    assert proposals.get("Retail") == "Green -> Yellow"
    for rule in planted_definition().rules_of(Tier.GREEN):
        assert rule.rule not in list(changes["rule"])
    refined = refine(definition, changes, period="2026")
    assert {"industry": "Retail"} not in [r.rule for r in refined.rules]
    assert refined.version == "v1-review-2026"
    again = from_toml(to_toml(refined))
    assert [r.rule for r in again.rules] == [r.rule for r in refined.rules]


def test_a_period_with_no_closed_deal_proposes_nothing() -> None:
    """No outcome in the period: no segment can contradict its tier."""
    data = crm()
    changes = segment_changes(
        tiered(data),
        live_opportunities(data),
        planted_definition(),
        period=parse_period("2027"),
        now=END,
    )
    assert changes.empty
