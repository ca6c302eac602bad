"""The backtest on frames alone: what happened after an ICP version's as-of date."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd

from icp_sync.icp import IcpDefinition, SegmentRule
from icp_sync.model import CrmObject, Tier, conform
from icp_sync.review import backtest

AS_OF = pd.Timestamp("2025-01-01", tz="UTC")
NOW = pd.Timestamp("2026-01-01", tz="UTC")
GREEN = [f"g{i}" for i in range(6)]
YELLOW = [f"y{i}" for i in range(6)]


def _definition() -> IcpDefinition:
    return IcpDefinition(
        version="v1",
        as_of=AS_OF.to_pydatetime(),
        derived_at=datetime(2025, 1, 2, tzinfo=UTC),
        dimensions=("industry",),
        employee_bands=(1, 50),
        revenue_bands=(0, 1e6),
        rules=(SegmentRule(rule={"industry": "Healthcare"}, tier=Tier.GREEN, lift=1.5),),
        baseline={"win_rate": 0.3},
    )


def _then() -> pd.DataFrame:
    """Twelve prospects as scored at the as-of date: six Green, six Yellow."""
    ids = GREEN + YELLOW
    tiers = ["Green"] * 6 + ["Yellow"] * 6
    return pd.DataFrame(
        {
            "account_id": ids,
            "name": ids,
            "tier": tiers,
            "rule_tier": tiers,
            "score": list(range(90, 84, -1)) + list(range(50, 44, -1)),
            "segment": ["Healthcare"] * 6 + ["Retail"] * 6,
            "reasons": "",
            "is_customer": False,
        }
    )


def _history() -> tuple[pd.DataFrame, pd.DataFrame]:
    """After the as-of date five of six Green prospects win their deal, one of six Yellow."""
    accounts = conform(pd.DataFrame({"account_id": GREEN + YELLOW}), CrmObject.ACCOUNT)
    won = set(GREEN[:5]) | {YELLOW[0]}
    close = pd.Timestamp("2025-06-01", tz="UTC")
    deals = pd.DataFrame(
        {
            "opportunity_id": [f"o-{a}" for a in GREEN + YELLOW],
            "account_id": GREEN + YELLOW,
            "deal_type": "new_business",
            "stage": ["won" if a in won else "lost" for a in GREEN + YELLOW],
            "is_closed": True,
            "is_won": [a in won for a in GREEN + YELLOW],
            "amount": 1000.0,
            "created_at": close - pd.Timedelta(days=60),
            "close_date": close,
        }
    )
    return accounts, conform(deals, CrmObject.OPPORTUNITY)


def test_backtest_compares_green_with_the_rest_after_the_as_of_date() -> None:
    """Win rates after the as-of date, Green against the rest, with lift and a p-value."""
    accounts, deals = _history()

    result = backtest(_then(), _definition(), accounts, deals, as_of=AS_OF, now=NOW, tal_size=6)

    assert result["observed_months"] == 12.0
    assert result["win_rate_after"]["Green"] == {"rate": 0.8333, "n": 6}
    assert result["win_rate_after"]["rest"] == {"rate": 0.1667, "n": 6}
    assert result["win_rate_after"]["green_vs_rest"]["lift"] == 5.0
    assert result["win_rate_after"]["green_vs_rest"]["p_value"] < 0.05


def test_the_tal_of_the_version_is_checked_against_the_other_prospects() -> None:
    """The TAL the version would have built converts more often than the other prospects."""
    accounts, deals = _history()

    result = backtest(_then(), _definition(), accounts, deals, as_of=AS_OF, now=NOW, tal_size=6)

    conversion = result["tal_conversion"]
    assert conversion["tal_size"] == 6
    assert conversion["tal"] == {"rate": 0.8333, "n": 6}
    assert conversion["other_prospects"] == {"rate": 0.1667, "n": 6}


def test_no_customers_at_the_as_of_date_means_no_retention_to_report() -> None:
    """Retention after the as-of date is unknown (None, n 0) when nobody was a customer then."""
    accounts, deals = _history()

    result = backtest(_then(), _definition(), accounts, deals, as_of=AS_OF, now=NOW, tal_size=6)

    assert result["retention_after"]["Green"] == {"rate": None, "n": 0}
    assert result["retention_after"]["green_vs_rest"] == {"lift": None, "p_value": None}
