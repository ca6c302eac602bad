"""The ICP version repository, on SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from icp_sync.errors import StateStoreError
from icp_sync.store import Store


def _save(store: Store, version: str, now: datetime, model: bytes | None = None) -> None:
    store.versions.save(
        version=version,
        seq=store.versions.next_seq(),
        as_of=now - timedelta(days=1),
        definition=f'version = "{version}"\n',
        evidence=[{"segment": "Healthcare", "lift": np.float64(2.5)}],
        model_summary={"cv_auc": np.float64(0.71), "as_of": pd.Timestamp("2026-10-31", tz="UTC")},
        model=model,
        now=now,
    )


def _scores(n: int, score: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "account_id": [f"A{i}" for i in range(n)],
            "tier": ["Green"] * n,
            "rule_tier": ["Yellow"] * n,
            "score": [score] * n,
            "segment": ["Healthcare"] * n,
            "reasons": ["fits"] * n,
            "overridden": [False] * n,
        }
    )


def test_versions_are_numbered_and_read_back(store: Store, now: datetime) -> None:
    """Saved versions get increasing seq, read back whole, latest by default."""
    assert store.versions.next_seq() == 1
    assert store.versions.get() is None
    _save(store, "v1", now, model=b"\x00model")
    _save(store, "v2", now + timedelta(hours=1))

    latest = store.versions.get()
    first = store.versions.get("v1")

    assert latest is not None
    assert first is not None
    assert (latest.version, latest.seq, store.versions.next_seq()) == ("v2", 2, 3)
    assert first.model == b"\x00model"
    assert latest.model is None
    assert first.evidence == [{"segment": "Healthcare", "lift": 2.5}]
    assert first.model_summary == {"cv_auc": 0.71, "as_of": "2026-10-31T00:00:00+00:00"}
    assert first.definition == 'version = "v1"\n'
    assert first.created_at == now.astimezone(UTC)
    assert store.versions.get("v9") is None
    assert [v for v, _, _ in store.versions.history()] == ["v1", "v2"]
    assert store.versions.history()[0][2] == now - timedelta(days=1)


def test_a_version_name_is_saved_once(store: Store, now: datetime) -> None:
    """Saving the same version name twice is a StateStoreError."""
    _save(store, "v1", now)

    with pytest.raises(StateStoreError, match="write failed"):
        store.versions.save(
            version="v1",
            seq=99,
            as_of=now,
            definition="",
            evidence=[],
            model_summary={},
            model=None,
            now=now,
        )


def test_scores_are_replaced_per_version(store: Store, now: datetime) -> None:
    """Saving scores replaces that version's rows only; they load back as written."""
    store.versions.save_scores("v1", _scores(6_001, 40), now=now)
    store.versions.save_scores("v2", _scores(2, 70), now=now)
    store.versions.save_scores("v1", _scores(3, 55), now=now)

    v1 = store.versions.load_scores("v1")

    assert sorted(v1["account_id"]) == ["A0", "A1", "A2"]
    assert set(v1["score"]) == {55}
    assert v1["overridden"].tolist() == [False] * 3
    assert len(store.versions.load_scores("v2")) == 2
    assert store.versions.load_scores("v3").empty


def test_scores_are_updated_for_some_accounts_only(store: Store, now: datetime) -> None:
    """Updating scores replaces the given accounts', drops the removed ones and keeps the
    rest; a subset loads by id and the tiers are counted across all kept rows."""
    store.versions.save_scores("v1", _scores(6_001, 40), now=now)
    store.versions.save_scores("v2", _scores(5, 70), now=now)
    changed = _scores(2, 90).assign(tier="Red")

    store.versions.update_scores("v1", changed, removed=["A5", "A6000"], now=now)

    v1 = store.versions.load_scores("v1")
    assert len(v1) == 5_999
    assert not {"A5", "A6000"} & set(v1["account_id"])
    some = store.versions.load_scores("v1", ["A0", "A1", "A2", "A5"]).set_index("account_id")
    assert some["score"].to_dict() == {"A0": 90, "A1": 90, "A2": 40}
    assert store.versions.score_tiers("v1") == {"Red": 2, "Green": 5_997}
    assert len(store.versions.load_scores("v2")) == 5


def test_tals_are_stored_with_ranked_members(store: Store, now: datetime) -> None:
    """A TAL keeps its members in rank order; latest_tal picks the newest, per version."""
    members = pd.DataFrame(
        {
            "account_id": ["A2", "A1"],
            "rank": [2, 1],
            "score": [80, 90],
            "tier": ["Green", "Green"],
            "segment": ["Healthcare", "Retail"],
            "reasons": ["a", "b"],
        }
    )
    assert store.versions.latest_tal() is None
    first = store.versions.save_tal(
        name="q1", version="v1", members=members, coverage={"share": np.float64(0.5)}, now=now
    )
    second = store.versions.save_tal(
        name="q2", version="v2", members=members.head(1), coverage={}, now=now
    )

    latest = store.versions.latest_tal()
    of_v1 = store.versions.latest_tal("v1")

    assert second > first
    assert latest is not None
    assert (latest.tal_id, latest.name, len(latest.members)) == (second, "q2", 1)
    assert of_v1 is not None
    assert of_v1.coverage == {"share": 0.5}
    assert of_v1.members["account_id"].tolist() == ["A1", "A2"]
    assert list(of_v1.members.columns) == list(members.columns)
    assert store.versions.latest_tal("v9") is None
    by_id = store.versions.tal(first)
    assert by_id is not None
    assert (by_id.name, by_id.version, len(by_id.members)) == ("q1", "v1", 2)
    assert store.versions.tal(second + 100) is None
