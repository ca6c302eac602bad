"""The synthetic CRM generator: deterministic, consistent, and carrying its planted truth."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from icp_sync.config import load_settings
from icp_sync.model import CrmObject, conform
from icp_sync.sandbox.generate import BANDS, GREEN, RED, SyntheticCrm, generate, write_dataset
from icp_sync.segments import band_labels
from tests.clirun import icp_sync


@pytest.fixture(scope="module")
def crm() -> SyntheticCrm:
    """One 20k-account world with the planted ICP."""
    return generate(20_000, seed=0)


def test_same_seed_same_world_other_seed_other_world() -> None:
    """Generation is deterministic in its seed."""
    first, again, other = generate(2_000, seed=7), generate(2_000, seed=7), generate(2_000, seed=8)

    pd.testing.assert_frame_equal(first.accounts, again.accounts)
    pd.testing.assert_frame_equal(first.opportunities, again.opportunities)
    assert not first.accounts["industry"].equals(other.accounts["industry"])


def test_frames_are_canonical_and_keys_unique(crm: SyntheticCrm) -> None:
    """Frames pass through conform unchanged; ids, names and domains are unique."""
    pd.testing.assert_frame_equal(conform(crm.accounts, CrmObject.ACCOUNT), crm.accounts)
    pd.testing.assert_frame_equal(
        conform(crm.opportunities, CrmObject.OPPORTUNITY), crm.opportunities
    )
    for column in ("account_id", "name", "domain"):
        assert crm.accounts[column].is_unique
    assert crm.opportunities["opportunity_id"].is_unique


def test_bands_match_the_product_defaults() -> None:
    """The truth speaks of the same employee bands the product derives by default."""
    assert list(BANDS) == band_labels([1, 50, 200, 1000, 5000])


def test_deals_are_consistent_with_accounts(crm: SyntheticCrm) -> None:
    """Every deal has an account; flags follow stages; lifecycle fields follow the deals."""
    accounts = crm.accounts.set_index("account_id")
    opps = crm.opportunities
    closed = opps[opps["is_closed"]]
    first_won = (
        opps[opps["is_won"] & (opps["deal_type"] == "new_business")]
        .groupby("account_id")["close_date"]
        .min()
    )
    lost_renewal = opps[(opps["deal_type"] == "renewal") & opps["is_closed"] & ~opps["is_won"]]

    assert opps["account_id"].isin(accounts.index).all()
    assert (opps["is_closed"] == (opps["stage"] != "open")).all()
    assert (opps["is_won"] == (opps["stage"] == "won")).all()
    assert (closed["created_at"] <= closed["close_date"]).all()
    assert (accounts.loc[first_won.index, "customer_since"] == first_won).all()
    assert accounts["customer_since"].notna().sum() == len(first_won)
    churned = accounts["churned_at"].dropna()
    assert set(churned.index) == set(lost_renewal["account_id"])
    assert 0.3 < accounts["customer_since"].notna().mean() < 0.5
    assert 2.5 < len(opps) / len(accounts) < 4.5


def test_planted_segments_outperform_and_underperform(crm: SyntheticCrm) -> None:
    """Green segments win about twice as often and churn half as much; Red ones the reverse."""
    effects = crm.truth["effects"]
    base = effects["baseline"]
    for key, figures in effects.items():
        if key.startswith("green"):
            assert figures["win_rate"] >= 1.5 * base["win_rate"]
            assert 1 - figures["retention_12m"] <= 0.7 * (1 - base["retention_12m"])
        elif key.startswith("red"):
            assert figures["win_rate"] <= 0.65 * base["win_rate"]
            assert 1 - figures["retention_12m"] >= 1.5 * (1 - base["retention_12m"])


def test_no_signal_world_has_no_planted_effect() -> None:
    """Without signal, the would-be planted segments perform like everyone else."""
    flat = generate(20_000, seed=0, signal=False)
    effects = flat.truth["effects"]
    base = effects["baseline"]

    assert flat.truth["green_segments"] == []
    assert flat.truth["red_segments"] == []
    for key, figures in effects.items():
        if key != "baseline":
            assert abs(figures["win_rate"] - base["win_rate"]) < 0.06, key


def test_prospect_fit_covers_prospects_and_follows_the_truth(crm: SyntheticCrm) -> None:
    """Every live non-customer has a true fit in [0, 1]; Green-segment prospects fit better."""
    fit = pd.Series(crm.truth["prospect_fit"])
    accounts = crm.accounts.set_index("account_id")
    prospects = accounts[accounts["customer_since"].isna() & ~accounts["is_deleted"]]
    banded = pd.cut(
        prospects["employees"], [1, 50, 200, 1000, 5000, np.inf], labels=list(BANDS), right=False
    ).astype(str)
    in_green = np.zeros(len(prospects), dtype=bool)
    for rule in GREEN:
        mask = np.ones(len(prospects), dtype=bool)
        for column, value in rule.items():
            values = banded if column == "employees_band" else prospects[column]
            mask &= (values == value).to_numpy()
        in_green |= mask

    assert set(fit.index) == set(prospects.index)
    assert fit.between(0, 1).all()
    assert fit[prospects.index[in_green]].mean() > fit[prospects.index[~in_green]].mean() + 0.15
    assert len(RED) == 2


def test_dataset_files_load_with_the_written_config(tmp_path: Path, crm: SyntheticCrm) -> None:
    """write_dataset writes CSVs, truth.json and a config the file connector accepts."""
    small = generate(1_000, seed=3)
    paths = write_dataset(small, tmp_path)
    settings = load_settings(paths["config"])
    reread = pd.read_csv(paths["accounts"])
    truth = json.loads(paths["truth"].read_text())

    assert settings.files is not None
    assert settings.files.opportunities is not None
    assert len(reread) == 1_000
    assert set(truth) >= {"green_segments", "red_segments", "prospect_fit", "effects"}
    assert (tmp_path / "owners.csv").exists()
    assert reread["created_at"].str.endswith("Z").all()


def test_pathologies_are_planted_and_recorded(tmp_path: Path) -> None:
    """--history-end, --won-only-attributes and --tiny-segments shape the data and truth.json."""
    outcome = icp_sync(
        "sandbox", "generate", "--out", str(tmp_path), "--accounts", "2000", "--json",
        "--history-end", "2023-11-01", "--won-only-attributes", "2", "--tiny-segments", "300",
    )  # fmt: skip
    assert outcome.code == 0, outcome.stderr
    truth = json.loads((tmp_path / "truth.json").read_text("utf-8"))
    accounts = pd.read_csv(tmp_path / "accounts.csv")
    customer = accounts["customer_since"].notna()

    assert truth["pathologies"]["history_end"].startswith("2023-11-01")
    assert truth["as_of"].startswith("2026-11-01")
    assert pd.to_datetime(accounts["created_at"]).max() <= pd.Timestamp("2023-11-01", tz="UTC")
    for name in truth["pathologies"]["won_only_attributes"]:
        assert accounts.loc[customer, name].notna().all()
        assert accounts.loc[~customer, name].isna().all()
    sizes = accounts["attr_micro_segment"].value_counts()
    assert len(sizes) > 200
    assert sizes.median() < 10
    config = (tmp_path / "icp-sync.toml").read_text("utf-8")
    assert '"attr_lead_type"' in config
    assert '"attr_micro_segment"' in config


def test_a_planted_drift_adds_recent_red_wins_and_leaves_the_rest_unchanged() -> None:
    """drift=N appends N recent won deals with Government prospects; all else is as without."""
    plain = generate(2000, seed=4)
    drifted = generate(2000, seed=4, drift=25)
    n = len(plain.opportunities)
    pd.testing.assert_frame_equal(drifted.opportunities.iloc[:n], plain.opportunities)
    added = drifted.opportunities.iloc[n:]
    assert len(added) == 25 == drifted.truth["drift"]["won_deals"]
    assert added["is_won"].all()
    assert (added["deal_type"] == "new_business").all()
    end = pd.Timestamp(drifted.truth["as_of"])
    assert (added["close_date"] > end - pd.Timedelta(days=90)).all()
    accounts = drifted.accounts.set_index("account_id").loc[added["account_id"]]
    assert (accounts["industry"] == "Government").all()
    assert (
        plain.accounts.set_index("account_id")
        .loc[added["account_id"], "customer_since"]
        .isna()
        .all()
    )
    assert (accounts["customer_since"] == added["close_date"].to_numpy()).all()
    assert "drift" not in plain.truth


def test_padding_adds_earlier_lost_attempts_up_to_the_wanted_count() -> None:
    """opportunities_wanted=N appends lost, closed deals, each 1-3 years before a drawn one."""
    plain = generate(2000, seed=5)
    padded = generate(2000, seed=5, opportunities_wanted=4 * 2000)
    n = len(plain.opportunities)
    assert len(padded.opportunities) == 8000
    pd.testing.assert_frame_equal(padded.opportunities.iloc[:n], plain.opportunities)
    pd.testing.assert_frame_equal(padded.accounts, plain.accounts)
    added = padded.opportunities.iloc[n:]
    assert added["opportunity_id"].is_unique
    assert not added["opportunity_id"].isin(plain.opportunities["opportunity_id"]).any()
    assert (added["stage"] == "lost").all()
    assert added["is_closed"].all()
    assert not added["is_won"].any()
    assert (added["created_at"] <= added["close_date"]).all()
    latest = plain.opportunities["close_date"].max()
    assert (added["close_date"] <= latest - pd.Timedelta(days=365)).all()
    assert padded.truth["effects"] == plain.truth["effects"]
