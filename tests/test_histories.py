"""`derive` on real-shaped histories: ended long ago, won-only fields, tiny segments, exports.

Planted truth in pathological data (the generator's ``history_end``, ``won_only_attributes``
and ``tiny_segments``), and the bundled RavenStack and Maven exports checked against figures
computed independently from their CSVs.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from statsmodels.duration.survfunc import SurvfuncRight

from icp_sync.config import IcpConfig, SegmentsConfig
from icp_sync.diagnostics import coverage_asymmetry, observation_window
from icp_sync.icp import DeriveSettings, derive
from icp_sync.lifecycle import LifecycleSettings, account_outcomes, history_as_of
from icp_sync.lookalike import MODEL_INPUTS, best_fit_labels, score_accounts, train
from icp_sync.quality import plausibility_warnings
from icp_sync.sandbox.generate import GREEN, RED, SyntheticCrm, generate, write_dataset
from icp_sync.segments import EvidenceSettings, evidence_table, with_dimensions
from tests.clirun import icp_sync

THREE_YEARS_AGO = datetime(2023, 11, 1, tzinfo=UTC)


def _dataset(tmp_path: Path, accounts: int, seed: int, **options: Any) -> Path:
    paths = write_dataset(generate(accounts, seed=seed, **options), tmp_path / "crm")
    outcome = icp_sync("sync", "--config", str(paths["config"]), "--json")
    assert outcome.code == 0, outcome.stderr
    return paths["config"]


def _derive(config: Path) -> dict[str, Any]:
    outcome = icp_sync("derive", "--config", str(config), "--json")
    assert outcome.code == 0, outcome.stderr
    document: dict[str, Any] = json.loads(outcome.stdout)
    return document


def _rules(document: dict[str, Any], tier: str) -> set[frozenset[tuple[str, str]]]:
    return {frozenset(s["rule"].items()) for s in document["segments"] if s["tier"] == tier}


def _codes(document: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for warning in document["warnings"]:
        assert set(warning) == {"code", "message", "numbers"}
        found.setdefault(warning["code"], []).append(warning)
    return found


@pytest.mark.parametrize("seed", [0, 1, 2], ids=["seed-0", "seed-1", "seed-2"])
def test_planted_icp_is_recovered_from_an_old_history_with_won_only_fields(
    tmp_path: Path, seed: int
) -> None:
    """History ended 3 years ago + won-only fields: Green/Red P and R >= 0.9, leaks flagged."""
    config = _dataset(tmp_path, 20_000, seed, history_end=THREE_YEARS_AGO, won_only_attributes=2)
    document = _derive(config)
    truth = json.loads((config.parent / "truth.json").read_text("utf-8"))

    planted = {frozenset(r.items()) for r in truth["green_segments"] + truth["red_segments"]}
    found = _rules(document, "Green") | _rules(document, "Red")
    hits = len(found & planted)
    assert hits / max(len(found), 1) >= 0.9
    assert hits / len(planted) >= 0.9
    assert _rules(document, "Green") == {frozenset(r.items()) for r in truth["green_segments"]}
    # the last activity is the history's end, give or take a few days of record edits
    assert "2023-10-01" <= document["observation_window"]["end"] <= "2023-12-01"
    assert document["as_of"].startswith(document["observation_window"]["end"])
    codes = _codes(document)
    leaked = {w["numbers"]["dimension"] for w in codes["won_only_dimension"]}
    assert leaked == set(truth["pathologies"]["won_only_attributes"])
    blind = {w["numbers"]["dimension"] for w in codes["prospect_blind_feature"]}
    assert blind == leaked
    assert codes["history_ended"][0]["numbers"]["days_before_now"] > 3 * 365 - 60
    assert all(not set(s["rule"]) & leaked for s in document["segments"] if s["tier"] == "Green")


def _core_tiers(
    crm: SyntheticCrm, dimensions: list[str], as_of: pd.Timestamp | None = None
) -> pd.DataFrame:
    """The pure core as ``derive`` runs it, without the CLI and the store (fast)."""
    window = observation_window(crm.accounts, crm.opportunities, pd.Timestamp.now(tz="UTC"))
    cut = window.end if as_of is None else as_of
    accounts, opportunities = history_as_of(crm.accounts, crm.opportunities, cut)
    outcomes = account_outcomes(
        accounts,
        opportunities,
        as_of=cut,
        settings=LifecycleSettings(observed_from=window.start, snapshot_fields=as_of is None),
    ).reset_index(drop=True)
    frame = with_dimensions(accounts, SegmentsConfig(dimensions=dimensions)).reset_index(drop=True)
    leakage = coverage_asymmetry(frame, outcomes, dimensions)
    weights = IcpConfig().weights
    settings = EvidenceSettings(
        dimensions=tuple(dimensions), weights=weights, win_rate_blind=frozenset(leakage.won_only)
    )
    evidence = evidence_table(frame, outcomes, settings)
    return derive(evidence, frame, DeriveSettings()).segments


@pytest.mark.parametrize("seed", [4, 5], ids=["seed-4", "seed-5"])
def test_a_backtest_derive_recovers_the_planted_segments_not_their_noisy_parts(
    seed: int,
) -> None:
    """At an as-of two years before the end, Green and Red are the planted segments: a small
    sub-segment with an extreme raw lift does not take the place of the segment it is in."""
    crm = generate(20_000, seed=seed)
    dimensions = ["industry", "employees_band", "region"]

    segments = _core_tiers(crm, dimensions, as_of=pd.Timestamp("2025-01-01", tz="UTC"))

    def chosen(tier: str) -> set[frozenset[tuple[str, Any]]]:
        rules = segments.loc[segments["tier"] == tier, "rule"]
        return {frozenset(dict(rule).items()) for rule in rules}

    assert chosen("Green") == {frozenset(r.items()) for r in GREEN}
    assert chosen("Red") == {frozenset(r.items()) for r in RED}


def test_model_inputs_prospects_never_have_leave_the_model_and_are_reported() -> None:
    """Size, revenue and tech stack filled in only for customers: each is reported as blind
    to prospects and left out of the look-alike model, whose AUC then no longer learns
    "is a customer", and prospects still get scores that differ."""
    crm = generate(6_000, seed=3)
    dimensions = ["industry", "employees_band", "region"]
    window = observation_window(crm.accounts, crm.opportunities, pd.Timestamp.now(tz="UTC"))
    accounts, opportunities = history_as_of(crm.accounts, crm.opportunities, window.end)
    outcomes = account_outcomes(
        accounts,
        opportunities,
        as_of=window.end,
        settings=LifecycleSettings(observed_from=window.start),
    ).reset_index(drop=True)
    frame = with_dimensions(accounts, SegmentsConfig(dimensions=dimensions)).reset_index(drop=True)
    prospects = ~outcomes["is_customer"].to_numpy(dtype=bool)
    frame.loc[prospects, ["employees", "annual_revenue"]] = np.nan
    frame.loc[prospects, "tech_stack"] = None
    weights = IcpConfig().weights
    evidence = evidence_table(
        frame, outcomes, EvidenceSettings(dimensions=tuple(dimensions), weights=weights)
    )
    labels = best_fit_labels(outcomes, evidence.outcome, 0.5)

    leakage = coverage_asymmetry(frame, outcomes, dimensions, MODEL_INPUTS)
    guarded = train(frame, labels, dimensions, without=leakage.customer_only)
    naive = train(frame, labels, dimensions)

    blind = {w.numbers["dimension"] for w in leakage.warnings if w.code == "prospect_blind_feature"}
    assert blind == set(MODEL_INPUTS)
    assert leakage.won_only == ()
    assert guarded.without == MODEL_INPUTS
    assert guarded.summary()["inputs_left_out"] == list(MODEL_INPUTS)
    assert naive.cv_auc > guarded.cv_auc + 0.05
    scores = score_accounts(guarded, frame.loc[prospects]).score
    assert scores.nunique() > 5


@pytest.mark.parametrize("seed", range(10), ids=[f"seed-{s}" for s in range(10)])
def test_no_green_on_noise_with_tiny_segments_and_won_only_fields(seed: int) -> None:
    """No planted signal, plus real-export pathologies: no Green segment on any of 10 seeds."""
    crm = generate(3_000, seed=seed, signal=False, won_only_attributes=1, tiny_segments=150)
    dimensions = ["industry", "employees_band", "region", "attr_lead_type", "attr_micro_segment"]

    segments = _core_tiers(crm, dimensions)

    assert (segments["tier"] == "Green").sum() == 0


@pytest.mark.parametrize("example", ["ravenstack"], indirect=True)
def test_ravenstack_retention_and_nrr_match_the_csvs(example: Path) -> None:
    """Baseline retention and NRR agree with figures computed from the raw CSVs by hand."""
    config = example / "icp-sync.toml"
    assert icp_sync("sync", "--config", str(config)).code == 0
    document = _derive(config)
    subs = pd.read_csv(example / "ravenstack_subscriptions.csv", parse_dates=["start_date"])
    accounts = pd.read_csv(example / "ravenstack_accounts.csv").set_index("account_id")
    events = pd.read_csv(example / "ravenstack_churn_events.csv", parse_dates=["churn_date"])
    subs = subs[~subs["is_trial"]]
    end = max(subs["start_date"].max(), events["churn_date"].max())
    first_new = subs[~subs["upgrade_flag"]].groupby("account_id")["start_date"].min()
    since = first_new.combine_first(subs.groupby("account_id")["start_date"].min())
    last = events.groupby("account_id")["churn_date"].max()
    churned = last.where(accounts["churn_flag"].reindex(last.index)).reindex(since.index)
    churned = churned.where(churned >= since)

    # retention: Kaplan-Meier on exact day durations; derive counts whole months, which moves
    # an event by less than a month, worth well under 0.015 at 12 months on this data
    days = (churned.fillna(end) - since).dt.days.to_numpy(dtype=float)
    fit = SurvfuncRight(days, churned.notna().to_numpy(dtype=float))
    times, probability = np.asarray(fit.surv_times), np.asarray(fit.surv_prob)
    expected_retention = float(probability[times <= 365.25][-1])

    # NRR: the cohort alive with ARR a year before the end, ARR = trailing-year subscriptions
    def arr_at(moment: pd.Timestamp) -> pd.Series:
        window = subs[
            (subs["start_date"] > moment - pd.DateOffset(months=12))
            & (subs["start_date"] <= moment)
        ]
        return window.groupby("account_id")["arr_amount"].sum()

    start = end - pd.DateOffset(months=12)
    alive = (since <= start) & ~(churned <= start)
    cohort = arr_at(start)
    cohort = cohort[cohort.index.isin(alive[alive].index)]
    kept = ~(churned <= end).reindex(cohort.index)
    expected_nrr = float((arr_at(end).reindex(cohort.index).fillna(0) * kept).sum() / cohort.sum())

    assert document["observation_window"] == {"start": "2023-01-02", "end": end.date().isoformat()}
    retention = document["baseline_detail"]["retention"]
    assert document["baseline"]["retention"] == pytest.approx(expected_retention, abs=0.015)
    assert retention["low"] < expected_retention < retention["high"]
    assert retention["n"] == len(since)
    assert document["baseline"]["nrr"] == pytest.approx(expected_nrr, rel=0.02)
    # accounts accumulate concurrent open subscriptions, so the data's NRR is far above what
    # SaaS companies report: the number stands, and a warning says why to question it
    assert "nrr_implausible" in {w["code"] for w in document["warnings"]}
    assert document["baseline_detail"]["nrr"]["n"] == pytest.approx(len(cohort), abs=5)
    assert document["baseline"]["win_rate"] is None  # every subscription is a win
    assert document["baseline"]["sales_cycle_days"] is None  # created = closed
    dropped = set(document["metrics"]["dropped"])
    assert {"win_rate", "sales_cycle_days"} <= dropped
    assert not dropped & set(document["baseline_detail"])  # no figure for a dropped metric
    # churn dated before any paid subscription cannot be measured: left out, and said so
    flagged = last.where(accounts["churn_flag"].reindex(last.index)).dropna()
    first = since.reindex(flagged.index)
    early = int(((flagged < first) | first.isna()).sum())
    warned = {w["code"]: w["numbers"] for w in document["warnings"]}
    assert warned["churn_before_customer"]["accounts"] == early > 0
    evidence = Path(document["files"]["evidence"]).read_text("utf-8")
    assert "## Data quality" in evidence.split("## Summary")[0]
    baseline = evidence.split("## Company baseline")[1].split("##")[0]
    low = document["baseline_detail"]["retention"]["low"]
    assert f"| {low:.0%} to " in baseline  # the interval, with its n
    assert f"{document['baseline_detail']['retention']['n']:,}" in baseline
    assert "lift (tested)" in evidence


def test_maven_model_at_chance_steps_aside_and_no_green(example: Path) -> None:
    """Maven: AUC below the threshold ranks nothing, says so, and no segment is Green."""
    config = example / "icp-sync.toml"
    assert icp_sync("sync", "--config", str(config)).code == 0
    document = _derive(config)

    assert _rules(document, "Green") == set()
    assert document["model"]["trained"] is False
    assert document["model"]["cv_auc"] < 0.6
    assert "model_at_chance" in _codes(document)
    assert "segment lifts rank" in document["model"]["fallback_reason"]
    assert "ranks prospects" not in " ".join(document["summary"])


def test_an_implausible_nrr_is_questioned_before_it_is_used() -> None:
    """Company-wide NRR far outside what SaaS companies report carries a warning."""
    assert [w.code for w in plausibility_warnings({"nrr": 1.82})] == ["nrr_implausible"]
    assert plausibility_warnings({"nrr": 1.05}) == []
    assert plausibility_warnings({"nrr": float("nan")}) == []
