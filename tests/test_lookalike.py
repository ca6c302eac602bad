"""The look-alike model: validation, fallback, scores, reasons and similar customers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from icp_sync.lookalike import (
    LookalikeModel,
    LookalikeSettings,
    best_fit_labels,
    score_accounts,
    train,
)
from icp_sync.quality import model_warnings
from icp_sync.similar import similar_customers

DIMS = ("industry", "employees_band")


def _accounts(n: int, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """Accounts whose best-fit label depends on industry x band and on using Snowflake."""
    rng = np.random.default_rng(seed)
    industry = rng.choice(["Healthcare", "Retail", "Software", "Media"], n)
    band = rng.choice(["1-49", "50-199", "200-999"], n)
    snowflake = rng.random(n) < 0.3
    accounts = pd.DataFrame(
        {
            "account_id": [f"A{i}" for i in range(n)],
            "name": [f"Company {i}" for i in range(n)],
            "industry": industry,
            "employees_band": band,
            "employees": rng.integers(5, 999, n).astype(float),
            "annual_revenue": rng.lognormal(16, 1, n),
            "tech_stack": np.where(snowflake, "Snowflake;AWS", "AWS"),
        }
    )
    logit = -1.5 + 2.5 * ((industry == "Healthcare") & (band == "200-999")) + 1.0 * snowflake
    labels = pd.Series((rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float))
    return accounts, labels


def test_model_is_validated_and_scores_the_planted_archetype_higher() -> None:
    """Cross-validated AUC and calibration are reported; planted features score higher."""
    accounts, labels = _accounts(6_000)

    model = train(accounts, labels, DIMS, LookalikeSettings(cv_folds=4))
    scores = score_accounts(model, accounts)
    planted = (accounts["industry"] == "Healthcare") & (accounts["employees_band"] == "200-999")

    assert model.pipeline is not None
    assert 0.65 < model.cv_auc < 0.95
    assert len(model.calibration) >= 5
    assert all(abs(p - o) < 0.15 for p, o, _ in model.calibration)
    assert scores.score[planted].mean() > scores.score[~planted].mean() + 25
    assert scores.score.between(0, 100).all()


def test_signals_name_the_features_that_raise_the_score() -> None:
    """An account in the planted segment is told which of its features made it fit."""
    accounts, labels = _accounts(6_000)
    model = train(accounts, labels, DIMS, LookalikeSettings(cv_folds=3))

    signals = score_accounts(model, accounts).signals
    planted = (accounts["industry"] == "Healthcare") & (accounts["employees_band"] == "200-999")
    uses = accounts["tech_stack"].str.contains("Snowflake")

    assert signals[planted].str.contains("Healthcare, 200-999 employees").mean() > 0.9
    assert signals[uses & ~planted].str.contains("uses snowflake").mean() > 0.9


def test_too_little_data_falls_back_to_segment_lifts_and_says_so() -> None:
    """Below the minimum class size no model is trained; scores follow segment lifts."""
    accounts, labels = _accounts(40)
    lifts = pd.Series(np.where(accounts["industry"] == "Healthcare", 1.6, 0.8))

    model = train(accounts, labels, DIMS, LookalikeSettings(min_class=30))
    scores = score_accounts(model, accounts, fallback=lifts)

    assert model.pipeline is None
    assert "too little history" in str(model.fallback_reason)
    assert set(scores.score) == {80, 40}
    assert model.summary()["trained"] is False


def test_best_fit_labels_split_customers_by_outcome() -> None:
    """The top share of customers by composite outcome are best-fit; others with outcomes not."""
    outcomes = pd.DataFrame({"is_customer": [True, True, True, True, False, False]})
    composite = pd.Series([2.0, 1.0, -1.0, -2.0, -3.0, np.nan])

    labels = best_fit_labels(outcomes, composite, share=0.5)

    assert labels.tolist()[:5] == [1.0, 1.0, 0.0, 0.0, 0.0]
    assert np.isnan(labels.iloc[5])


def test_similar_customers_share_segment_and_never_include_the_account() -> None:
    """Names come from best customers of the same industry and band, closest in size."""
    accounts = pd.DataFrame(
        {
            "account_id": [f"A{i}" for i in range(8)],
            "name": ["H1", "H2", "H3", "H4", "R1", "R2", "R3", "P"],
            "industry": ["Health"] * 4 + ["Retail"] * 3 + ["Health"],
            "employees_band": ["mid"] * 8,
            "employees": [100, 110, 500, 900, 100, 120, 130, 105],
            "annual_revenue": [1e7] * 8,
        }
    )
    best = np.array([True, True, True, True, True, True, True, False])

    similar = similar_customers(accounts, accounts[best], keys=["industry", "employees_band"])

    assert set(similar.iloc[7].split(", ")) == {"H1", "H2", "H3"}
    assert "H1" not in similar.iloc[0].split(", ")
    assert set(similar.iloc[4].split(", ")) <= {"R2", "R3", "H1", "H2", "H3", "H4"}


def test_a_feature_that_records_the_outcome_is_reported_as_probable_leakage() -> None:
    """A field filled in only for best-fit accounts drives AUC above 0.97: flagged as a leak."""
    accounts, labels = _accounts(3_000)
    accounts["attr_onboarding"] = np.where(labels == 1, "done", None)

    model = train(accounts, labels, (*DIMS, "attr_onboarding"))
    warnings = model_warnings(model.cv_auc, trained=model.pipeline is not None, min_auc=0.6)

    assert model.cv_auc > 0.97
    assert [w.code for w in warnings] == ["probable_leakage"]
    assert warnings[0].numbers["cv_auc"] > 0.97


def test_a_model_no_better_than_chance_ranks_nothing() -> None:
    """Labels independent of every feature: the model steps aside and scores use the fallback."""
    accounts, _ = _accounts(3_000)
    noise = pd.Series((np.random.default_rng(1).random(3_000) < 0.4).astype(float))

    model = train(accounts, noise, DIMS, LookalikeSettings(min_auc=0.6))
    scores = score_accounts(model, accounts, fallback=pd.Series(1.2, index=accounts.index))

    assert model.pipeline is None
    assert model.cv_auc < 0.6
    assert "no better than chance" in str(model.fallback_reason)
    assert set(scores.score) == {60}


def test_a_model_stored_by_an_earlier_release_loads_with_the_new_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A stored model pickled before ``without`` existed loads, uses every input and reports
    none left out (an upgrade must not break the next sync)."""
    import dataclasses
    import io

    import joblib

    from icp_sync.pipeline.derive import load_model

    earlier = [f.name for f in dataclasses.fields(LookalikeModel) if f.name != "without"]
    old = LookalikeModel(pipeline=None, dimensions=("industry",), fallback_reason="old")
    buffer = io.BytesIO()
    with monkeypatch.context() as patch:  # pickled as the earlier class did: no ``without``
        patch.setattr(
            LookalikeModel, "__getstate__", lambda self: [getattr(self, n) for n in earlier]
        )
        joblib.dump(old, buffer)

    loaded = load_model(buffer.getvalue())

    assert loaded is not None
    assert loaded.without == ()
    assert loaded.summary()["inputs_left_out"] == []
