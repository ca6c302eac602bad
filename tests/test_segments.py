"""Segment dimensions and the per-dimension summary."""

from __future__ import annotations

import pandas as pd
import pytest

from icp_sync.config import SegmentsConfig
from icp_sync.model import CrmObject, conform
from icp_sync.segments import band_labels, dimension_summary, with_dimensions


def test_band_labels_for_counts_and_money() -> None:
    """Employee bands end one below the next bound; money bands use K/M/B."""
    assert band_labels([1, 50, 200, 1000, 5000]) == [
        "1-49",
        "50-199",
        "200-999",
        "1000-4999",
        "5000+",
    ]
    assert band_labels([0, 1e6, 1e7], compact=True) == ["0-1M", "1M-10M", "10M+"]


def test_accounts_fall_into_the_right_bands() -> None:
    """Boundaries belong to the band they start; missing values have no band."""
    accounts = conform(
        pd.DataFrame({"account_id": list("abcd"), "employees": [49, 50, 5000, None]}),
        CrmObject.ACCOUNT,
    )

    banded = with_dimensions(accounts, SegmentsConfig())

    assert banded["employees_band"].tolist()[:3] == ["1-49", "50-199", "5000+"]
    assert pd.isna(banded["employees_band"].iloc[3])


def test_summary_counts_customers_win_rate_and_acv() -> None:
    """Win rate is won / closed new business; ACV averages won new-business amounts."""
    accounts = conform(
        pd.DataFrame({"account_id": ["a", "b"], "industry": ["Health", "Health"]}),
        CrmObject.ACCOUNT,
    )
    opps = conform(
        pd.DataFrame(
            {
                "opportunity_id": ["1", "2", "3", "4"],
                "account_id": ["a", "a", "b", "b"],
                "stage": ["won", "lost", "lost", "open"],
                "is_closed": [True, True, True, False],
                "is_won": [True, False, False, False],
                "amount": [100.0, 50.0, 70.0, 10.0],
                "deal_type": ["new_business"] * 4,
            }
        ),
        CrmObject.OPPORTUNITY,
    )

    summary = dimension_summary(accounts, opps, SegmentsConfig(dimensions=["industry"]))
    row = summary.iloc[0]

    assert (row["accounts"], row["customers"], row["deals"], row["won"], row["lost"]) == (
        2,
        1,
        4,
        1,
        2,
    )
    assert row["win_rate"] == pytest.approx(1 / 3)
    assert row["acv"] == 100.0
