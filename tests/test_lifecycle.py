"""Lifecycle outcomes per account, derived from deals where the CRM has no lifecycle fields."""

from __future__ import annotations

import pandas as pd
import pytest

from icp_sync.lifecycle import LifecycleSettings, account_outcomes, history_as_of
from icp_sync.model import CrmObject, conform

AS_OF = pd.Timestamp("2026-01-01", tz="UTC")


def _accounts(**columns: list[object]) -> pd.DataFrame:
    return conform(pd.DataFrame(columns), CrmObject.ACCOUNT)


def _deal(
    account: str, deal_type: str, stage: str, close: str, amount: float = 100.0
) -> dict[str, object]:
    closed = stage != "open"
    return {
        "opportunity_id": f"{account}-{deal_type}-{close}",
        "account_id": account,
        "deal_type": deal_type,
        "stage": stage,
        "is_closed": closed,
        "is_won": stage == "won",
        "amount": amount,
        "created_at": pd.Timestamp(close, tz="UTC") - pd.Timedelta(days=40),
        "close_date": pd.Timestamp(close, tz="UTC"),
    }


def _deals(*rows: dict[str, object]) -> pd.DataFrame:
    return conform(pd.DataFrame(list(rows)), CrmObject.OPPORTUNITY)


def test_customer_since_and_churn_are_derived_from_deals() -> None:
    """First won new business starts the customer; a lost renewal with no later win ends it."""
    accounts = _accounts(account_id=["a", "b", "c"])
    deals = _deals(
        _deal("a", "new_business", "lost", "2021-02-01"),
        _deal("a", "new_business", "won", "2021-06-01"),
        _deal("a", "renewal", "lost", "2023-06-01"),
        _deal("b", "new_business", "won", "2022-01-01"),
        _deal("b", "renewal", "lost", "2023-01-01"),
        _deal("b", "renewal", "won", "2023-02-01"),
        _deal("c", "new_business", "open", "2026-03-01"),
    )

    out = account_outcomes(accounts, deals, as_of=AS_OF)

    assert out.loc["a", "customer_since"] == pd.Timestamp("2021-06-01", tz="UTC")
    assert out.loc["a", "churned_at"] == pd.Timestamp("2023-06-01", tz="UTC")
    assert pd.isna(out.loc["b", "churned_at"])
    assert out["is_customer"].tolist() == [True, True, False]
    assert out["active"].tolist() == [False, True, False]
    assert (out.loc["a", "nb_won"], out.loc["a", "nb_lost"]) == (1, 1)


def test_lifecycle_fields_from_the_crm_take_precedence() -> None:
    """A customer_since or churned_at the CRM already holds is used as it is."""
    accounts = _accounts(
        account_id=["a"],
        customer_since=[pd.Timestamp("2020-01-01", tz="UTC")],
        churned_at=[pd.Timestamp("2025-06-01", tz="UTC")],
    )

    out = account_outcomes(
        accounts, _deals(_deal("a", "new_business", "won", "2021-01-01")), as_of=AS_OF
    )

    assert out.loc["a", "customer_since"] == pd.Timestamp("2020-01-01", tz="UTC")
    assert not out.loc["a", "active"]


def test_retention_counts_customers_from_their_start_and_censors_the_recent() -> None:
    """Retention is entered at acquisition; a customer younger than the horizon is censored."""
    accounts = _accounts(account_id=["stays", "leaves", "young", "quits"])
    deals = _deals(
        _deal("stays", "new_business", "won", "2022-06-01", 100),
        _deal("stays", "renewal", "won", "2023-06-01", 100),
        _deal("stays", "renewal", "won", "2024-06-01", 100),
        _deal("stays", "expansion", "won", "2025-03-01", 50),
        _deal("stays", "renewal", "won", "2025-06-01", 100),
        _deal("leaves", "new_business", "won", "2022-06-01", 100),
        _deal("leaves", "renewal", "lost", "2025-06-01", 100),
        _deal("young", "new_business", "won", "2025-05-01", 100),
        _deal("quits", "new_business", "won", "2024-06-01", 100),
        _deal("quits", "renewal", "lost", "2024-11-15", 100),
    )

    out = account_outcomes(accounts, deals, as_of=AS_OF, settings=LifecycleSettings(windows=3))

    assert out["eligible"].tolist() == [1, 1, 0, 1]
    assert out["retained"].tolist() == [1, 1, 0, 0]
    # "young" was observed for 8 whole months and is censored during month 8
    at_risk = out.loc["young", [f"km_at_{k}" for k in range(12)]].tolist()
    assert at_risk == [1.0] * 9 + [0.0] * 3
    # "quits" churned in its sixth month
    assert out.loc["quits", "km_ev_5"] == 1.0
    assert out.loc["stays", "arr"] == 150.0
    assert out.loc["leaves", "arr"] == 0.0
    assert out.loc["stays", "arr_end"] > out.loc["stays", "arr_start"] * 0.99


def test_nrr_windows_opening_before_the_history_are_not_counted() -> None:
    """A window whose start the history never saw adds nothing to NRR (no partial cohorts)."""
    accounts = _accounts(account_id=["a"])
    deals = _deals(
        _deal("a", "new_business", "won", "2022-06-01", 100),
        _deal("a", "renewal", "won", "2023-06-01", 100),
        _deal("a", "renewal", "won", "2024-06-01", 100),
        _deal("a", "renewal", "won", "2025-06-01", 100),
    )
    first = pd.Timestamp("2024-06-01", tz="UTC")

    every = account_outcomes(accounts, deals, as_of=AS_OF)
    observed = account_outcomes(
        accounts, deals, as_of=AS_OF, settings=LifecycleSettings(observed_from=first)
    )

    assert every.loc["a", "arr_start"] == 300.0
    assert observed.loc["a", "arr_start"] == 100.0


def test_history_as_of_hides_the_future() -> None:
    """Deals and accounts after the as-of date vanish; later closes are open again."""
    accounts = _accounts(
        account_id=["old", "new"],
        created_at=[pd.Timestamp("2020-01-01", tz="UTC"), pd.Timestamp("2026-06-01", tz="UTC")],
        churned_at=[pd.Timestamp("2026-03-01", tz="UTC"), pd.NaT],
    )
    deals = _deals(
        _deal("old", "new_business", "won", "2025-12-15"),
        _deal("old", "expansion", "won", "2026-02-10"),
    )
    deals.loc[1, "created_at"] = pd.Timestamp("2025-12-20", tz="UTC")

    past_accounts, past_deals = history_as_of(accounts, deals, AS_OF)

    assert past_accounts["account_id"].tolist() == ["old"]
    assert pd.isna(past_accounts["churned_at"].iloc[0])
    assert past_deals["stage"].tolist() == ["won", "open"]
    assert past_deals["is_won"].tolist() == [True, False]


@pytest.mark.parametrize("snapshot", [True, False], ids=["today", "backtest"])
def test_snapshot_fields_only_describe_today(snapshot: bool) -> None:
    """NPS and adoption are used for today's outcomes, never for a past as-of date."""
    accounts = _accounts(account_id=["a"], nps=[40.0], adoption=[0.7])
    deals = _deals(_deal("a", "new_business", "won", "2025-01-01"))

    out = account_outcomes(
        accounts, deals, as_of=AS_OF, settings=LifecycleSettings(snapshot_fields=snapshot)
    )

    assert bool(out.loc["a", "nps"] == 40.0) is snapshot
    assert bool(pd.isna(out.loc["a", "adoption"])) is not snapshot
