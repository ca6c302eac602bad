"""Adherence on frames: share against target, out-of-ICP deals, TAL coverage, lift by tier."""

from __future__ import annotations

import pandas as pd
import pytest

from icp_sync.adherence import Period, Terms, measure, parse_period
from icp_sync.model import CrmObject, conform
from tests.planted import END, crm, live_opportunities, tiered


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        pytest.param("2027", "2027-01-01", "2028-01-01", id="year"),
        pytest.param("2027-q2", "2027-04-01", "2027-07-01", id="quarter"),
        pytest.param("2027-03", "2027-03-01", "2027-04-01", id="month"),
    ],
)
def test_a_period_names_its_bounds(text: str, start: str, end: str) -> None:
    """Years, quarters and months parse to [start, end) in UTC."""
    period = parse_period(text)
    assert period.start == pd.Timestamp(start, tz="UTC")
    assert period.end == pd.Timestamp(end, tz="UTC")


@pytest.mark.parametrize("text", ["27", "2027-13", "2027-Q5", "next year"])
def test_anything_else_is_not_a_period(text: str) -> None:
    """A malformed period is refused with the accepted forms in the message."""
    with pytest.raises(ValueError, match="2027-Q1"):
        parse_period(text)


def _terms(target: float | None = 0.1, tal: frozenset[str] = frozenset()) -> Terms:
    return Terms(period=parse_period("2026"), version="v1", target_green_share=target, tal=tal)


def test_on_planted_data_green_wins_more_than_the_rest_with_an_interval() -> None:
    """The planted ICP outperforms: Green's win-rate edge over the rest excludes zero."""
    data = crm()
    result = measure(tiered(data), live_opportunities(data), _terms(), now=END)
    test = result.green_vs_rest["win_rate"]
    assert test["supported"]
    assert test["low"] > 0
    lift = result.lift.set_index("group")
    assert lift.loc["Green", "win_rate_low"] > lift.loc["Red", "win_rate_high"]


def test_monthly_rows_add_up_to_the_new_pipeline() -> None:
    """Every new-business deal created in the period lands in exactly one month and tier."""
    data = crm()
    opportunities = live_opportunities(data)
    result = measure(tiered(data), opportunities, _terms(), now=END)
    created = opportunities["created_at"]
    expected = (
        (opportunities["deal_type"] == "new_business")
        & (created >= pd.Timestamp("2026-01-01", tz="UTC"))
        & (created < END)
    ).sum()
    assert result.headline["new_deals"] == expected
    assert result.monthly["deals"].sum() == expected
    assert (result.monthly[["Green", "Yellow", "Red"]].sum(axis=1) == result.monthly["deals"]).all()
    assert result.tier_mix["deals"].sum() == expected


def test_the_verdict_follows_the_interval_not_the_point() -> None:
    """A target (a share of the amount) under the interval is met, above it missed, inside it
    noise."""
    data = crm()
    accounts, opportunities = tiered(data), live_opportunities(data)
    share = measure(accounts, opportunities, _terms(), now=END).headline["green_amount_share"]
    below = measure(accounts, opportunities, _terms(share["low"] - 0.01), now=END)
    above = measure(accounts, opportunities, _terms(share["high"] + 0.01), now=END)
    inside = measure(accounts, opportunities, _terms(share["value"]), now=END)
    assert below.headline["verdict"] == "on target"
    assert above.headline["verdict"] == "below target"
    assert inside.headline["verdict"] == "within sampling noise of the target"


def _frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Four accounts (two Red) and their deals in 2026, by hand."""
    accounts = pd.DataFrame(
        {
            "account_id": ["a", "b", "c", "d"],
            "tier": ["Green", "Red", "Red", "Yellow"],
            "segment": ["S1", "Gov", "Gov", "Other"],
        }
    )
    day = pd.Timestamp("2026-03-01", tz="UTC")
    rows = [
        # id, account, stage, closed, won, extra
        ("o1", "a", "won", True, True),
        ("o2", "b", "open", False, False),
        ("o3", "b", "won", True, True),
        ("o4", "c", "lost", True, False),
        ("o5", "c", "open", False, False),
        ("o6", "d", "open", False, False),
    ]
    opportunities = conform(
        pd.DataFrame(
            {
                "opportunity_id": [r[0] for r in rows],
                "account_id": [r[1] for r in rows],
                "stage": [r[2] for r in rows],
                "is_closed": [r[3] for r in rows],
                "is_won": [r[4] for r in rows],
                "deal_type": "new_business",
                "amount": 1000.0,
                "created_at": day,
                "close_date": day + pd.Timedelta(days=30),
                "modified_at": day,
                "owner_id": "U1",
            }
        ),
        CrmObject.OPPORTUNITY,
    )
    return accounts, opportunities


def test_out_of_icp_deals_are_counted_by_status_and_waivers_apart() -> None:
    """Deals on Red accounts: open, won and lost; a deal with reason and approver is waived."""
    accounts, opportunities = _frames()
    opportunities["attr_icp_waiver_reason"] = [None, None, None, None, "strategic", None]
    opportunities["attr_icp_waiver_approved_by"] = [None, None, None, None, "CRO", None]
    result = measure(accounts, opportunities, _terms(), now=END)
    assert result.out_of_icp == {"deals": 4, "open": 1, "waived": 1, "won": 1, "lost": 1}


def test_the_tier_frozen_at_creation_wins_over_the_account_tier() -> None:
    """A deal created while its account was Green stays Green after the account turned Red."""
    accounts, opportunities = _frames()
    opportunities["attr_icp_tier_at_creation"] = ["Green", "green", None, None, None, "bogus"]
    result = measure(accounts, opportunities, _terms(), now=END)
    mix = result.tier_mix.set_index("tier")["deals"]
    assert mix.to_dict() == {"Green": 2, "Yellow": 1, "Red": 3}


def test_the_tal_funnel_counts_accounts_not_deals() -> None:
    """TAL of three (one never touched): two engaged, two with new pipeline, two won."""
    accounts, opportunities = _frames()
    result = measure(accounts, opportunities, _terms(tal=frozenset({"a", "b", "z"})), now=END)
    funnel = result.tal_funnel.set_index("stage")["accounts"].to_dict()
    assert funnel == {"TAL accounts": 3, "engaged": 2, "with new pipeline": 2, "won": 2}


def test_what_the_data_cannot_support_is_said_not_printed() -> None:
    """Six deals: no share, no lift, a note for each; retention not yet observable."""
    accounts, opportunities = _frames()
    result = measure(accounts, opportunities, _terms(), now=END)
    assert result.headline["green_share"]["value"] is None
    assert result.headline["verdict"] == "not enough new pipeline to judge"
    assert result.lift["win_rate"].isna().all()
    assert not result.green_vs_rest["win_rate"]["supported"]
    text = " ".join(result.notes)
    assert "green share" in text
    assert "not observable yet" in text
    assert "no owner team" in text


def test_teams_come_from_the_owners_table() -> None:
    """With an owners table the leaderboard groups by team."""
    data = crm()
    owners = data.owners
    result = measure(tiered(data), live_opportunities(data), _terms(), now=END, owners=owners)
    assert result.grouping == "owner team"
    assert set(result.teams["team"]) == set(owners["team"])
    assert result.teams["deals"].sum() == result.headline["new_deals"]
    assert result.owners["deals"].sum() == result.headline["new_deals"]


def test_new_green_customers_concentrate_in_the_planted_segments() -> None:
    """The planted Green segments take more of the new customers than of the accounts."""
    data = crm()
    result = measure(tiered(data), live_opportunities(data), _terms(), now=END)
    summary = result.concentration_summary
    share = summary["green_share_of_new_customers"]
    assert share["low"] > summary["green_share_of_accounts"]
    assert len(summary["top_segments"]) == 3


def test_a_period_after_the_history_says_so() -> None:
    """A period that starts after the data end counts nothing and says why."""
    data = crm()
    terms = Terms(
        period=parse_period("2027"), version="v1", target_green_share=0.5, tal=frozenset()
    )
    result = measure(tiered(data), live_opportunities(data), terms, now=END)
    assert result.headline["new_deals"] == 0
    assert any("before the period starts" in n for n in result.notes)
    assert isinstance(terms.period, Period)


def test_recorded_violations_and_frozen_tiers_come_first() -> None:
    """A monitor's violation flags a deal whatever its tier; its frozen tier wins; waived counts."""
    accounts, opportunities = _frames()
    violations = pd.DataFrame(
        {
            "opportunity_id": ["o6", "o5"],
            "status": ["out_of_icp", "resolved"],
            "resolution": [None, "waived"],
        },
        dtype="string[pyarrow]",
    )
    frozen = {"o1": "Red", "o2": "Green"}
    # the mirror hands out Arrow-backed strings, whose comparisons carry NA
    opportunities["opportunity_id"] = opportunities["opportunity_id"].astype("string[pyarrow]")
    opportunities["attr_icp_waiver_reason"] = pd.Series([None] * 6, dtype="string[pyarrow]")
    opportunities["attr_icp_waiver_approved_by"] = pd.Series([None] * 6, dtype="string[pyarrow]")
    result = measure(
        accounts, opportunities, _terms(), now=END, violations=violations, frozen_tiers=frozen
    )
    mix = result.tier_mix.set_index("tier")["deals"].to_dict()
    assert mix == {"Green": 1, "Yellow": 1, "Red": 4}
    # o1 (frozen Red, won), o3 (won), o4 (lost), o5 (waived), o6 (Yellow, recorded, open);
    # o2 was frozen Green: not out of ICP
    assert result.out_of_icp == {"deals": 5, "open": 1, "waived": 1, "won": 2, "lost": 1}
