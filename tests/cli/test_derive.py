"""`derive`, `tal` and the backtest, end to end through the CLI, against planted truth.

The generator plants a true ICP (three Green segments, two Red) and each prospect's true fit;
these tests check that the product finds exactly that, and nothing on data without a signal.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from icp_sync.config import load_settings
from icp_sync.sandbox.generate import generate, write_dataset
from icp_sync.store import Store
from tests.clirun import icp_sync

SEGMENT_KEYS = {"rule", "tier", "n", "metrics", "lift", "q_value"}
TAL_KEYS = {"account_id", "name", "rank", "score", "tier", "segment"}


def _dataset(tmp_path: Path, accounts: int, seed: int, *, signal: bool = True) -> Path:
    """A generated CRM export, mirrored by `icp-sync sync`; returns its config."""
    paths = write_dataset(generate(accounts, seed=seed, signal=signal), tmp_path / "crm")
    outcome = icp_sync("sync", "--config", str(paths["config"]), "--json")
    assert outcome.code == 0, outcome.stderr
    return paths["config"]


def _derive(config: Path, *extra: str) -> dict[str, Any]:
    outcome = icp_sync("derive", "--config", str(config), "--json", *extra)
    assert outcome.code == 0, outcome.stderr
    document: dict[str, Any] = json.loads(outcome.stdout)
    return document


def _rules(segments: list[dict[str, Any]], tier: str) -> set[frozenset[tuple[str, str]]]:
    return {frozenset(s["rule"].items()) for s in segments if s["tier"] == tier}


def _truth(config: Path) -> dict[str, Any]:
    truth: dict[str, Any] = json.loads((config.parent / "truth.json").read_text("utf-8"))
    return truth


@pytest.mark.parametrize("seed", [0, 1, 2], ids=lambda seed: f"seed-{seed}")
def test_derive_recovers_the_planted_icp_at_20k_accounts(tmp_path: Path, seed: int) -> None:
    """Derived Green and Red segments match truth.json exactly (precision = recall = 1)."""
    config = _dataset(tmp_path, 20_000, seed)
    document = _derive(config)
    truth = _truth(config)

    planted_green = {frozenset(r.items()) for r in truth["green_segments"]}
    planted_red = {frozenset(r.items()) for r in truth["red_segments"]}
    assert _rules(document["segments"], "Green") == planted_green
    assert _rules(document["segments"], "Red") == planted_red
    for segment in document["segments"]:
        assert set(segment) >= SEGMENT_KEYS
        assert segment["tier"] in ("Green", "Yellow", "Red")
        assert isinstance(segment["n"], int)
        if segment["tier"] == "Green":
            assert segment["lift"] > 1
            assert segment["q_value"] < 0.05
    assert document["version"] == "v1"
    assert Path(document["files"]["definition"]).exists()
    assert "Green" in Path(document["files"]["evidence"]).read_text("utf-8")


@pytest.mark.parametrize("seed", [0, 1], ids=lambda seed: f"seed-{seed}")
def test_data_without_a_signal_yields_no_green_segment(tmp_path: Path, seed: int) -> None:
    """On --no-signal data, false discovery control leaves the ICP without a Green core."""
    config = _dataset(tmp_path, 20_000, seed, signal=False)
    document = _derive(config)

    assert _rules(document["segments"], "Green") == set()
    assert _rules(document["segments"], "Red") == set()


def test_the_maven_export_yields_no_green_segment(example: Path) -> None:
    """85 real accounts with no real segment effect: no Green segment is proposed."""
    config = example / "icp-sync.toml"
    assert icp_sync("sync", "--config", str(config)).code == 0
    document = _derive(config)

    assert _rules(document["segments"], "Green") == set()
    assert "no Green core" in " ".join(document["summary"])


def test_tal_ranks_truly_fit_prospects_far_above_chance(tmp_path: Path) -> None:
    """Look-alike AUC against the true prospect fit >= 0.75; TAL precision@500 >= 8x random."""
    config = _dataset(tmp_path, 20_000, 3)
    _derive(config)
    outcome = icp_sync("tal", "--config", str(config), "--json", "--size", "500")
    assert outcome.code == 0, outcome.stderr
    document = json.loads(outcome.stdout)
    fit = pd.Series(_truth(config)["prospect_fit"], dtype=float)

    assert document["version"] == "v1"
    assert len(document["accounts"]) == 500
    assert all(set(a) >= TAL_KEYS for a in document["accounts"])
    assert [a["rank"] for a in document["accounts"]] == list(range(1, 501))
    assert all(a["tier"] != "Red" for a in document["accounts"])
    tal_ids = {a["account_id"] for a in document["accounts"]}
    assert tal_ids <= set(fit.index)  # prospects only

    true_top = set(fit.nlargest(500).index)
    precision = len(tal_ids & true_top) / 500
    random_precision = 500 / len(fit)
    assert precision >= 8 * random_precision

    settings = load_settings(config)
    with Store.open(settings.store.url) as store:
        scores = store.versions.load_scores("v1").set_index("account_id")["score"]
    prospects = fit.index.intersection(scores.index)
    positive = fit[prospects] >= fit.quantile(0.8)
    assert roc_auc_score(positive, scores[prospects]) >= 0.75


def test_backtest_measures_what_happened_after_the_as_of_date(tmp_path: Path) -> None:
    """derive --as-of uses only earlier history; its review shows Green won and kept more."""
    config = _dataset(tmp_path, 20_000, 4)
    document = _derive(config, "--as-of", "2025-01-01")

    assert document["as_of"].startswith("2025-01-01")
    backtest = document["backtest"]
    win = backtest["win_rate_after"]
    assert win["green_vs_rest"]["lift"] > 1.5
    assert win["green_vs_rest"]["p_value"] < 0.01
    assert win["Green"]["rate"] > win["Yellow"]["rate"] > win["Red"]["rate"]
    assert backtest["retention_after"]["green_vs_rest"]["lift"] > 1
    assert backtest["tal_conversion"]["tal_vs_other"]["lift"] > 1
    review = icp_sync("review", "--config", str(config), "--json")
    assert json.loads(review.stdout)["version"] == document["version"]


def test_derive_as_of_in_the_future_is_refused(tmp_path: Path) -> None:
    """An --as-of after today exits 2 with the reason."""
    config = _dataset(tmp_path, 1_000, 0)
    outcome = icp_sync("derive", "--config", str(config), "--as-of", "2999-01-01")
    assert outcome.code == 2
    assert "--as-of" in outcome.stderr
