"""Canonical frames the store tests write."""

from __future__ import annotations

import numpy as np
import pandas as pd

from icp_sync.model import CrmObject, conform


def accounts(n: int = 3) -> pd.DataFrame:
    """``n`` canonical accounts with nulls, microsecond datetimes and one ``attr_`` column."""
    return conform(
        pd.DataFrame(
            {
                "account_id": [f"A{i}" for i in range(n)],
                "name": [f"Company {i}" for i in range(n)],
                "industry": ["Healthcare", None, "Retail"][:n] + ["Retail"] * max(0, n - 3),
                "employees": [10.0, np.nan, 2500.0][:n] + [1.0] * max(0, n - 3),
                "created_at": pd.to_datetime(["2024-01-02T03:04:05.123456Z"] * n, utc=True),
                "customer_since": [pd.Timestamp("2025-02-01", tz="UTC"), pd.NaT, pd.NaT][:n]
                + [pd.NaT] * max(0, n - 3),
                "attr_plan": ["Growth", None, "Starter"][:n] + ["Starter"] * max(0, n - 3),
            }
        ),
        CrmObject.ACCOUNT,
    )


def opportunities(n: int = 2) -> pd.DataFrame:
    """``n`` canonical opportunities on account ``A0``."""
    return conform(
        pd.DataFrame(
            {
                "opportunity_id": [f"O{i}" for i in range(n)],
                "account_id": ["A0"] * n,
                "amount": [1000.0 * (i + 1) for i in range(n)],
                "created_at": pd.to_datetime(["2024-03-01T00:00:00Z"] * n, utc=True),
            }
        ),
        CrmObject.OPPORTUNITY,
    )
