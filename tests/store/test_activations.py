"""The activation repository, on SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta

from icp_sync.store import Store


def test_no_version_is_live_before_the_first_activation(store: Store) -> None:
    """A fresh store has no activation in force and an empty history."""
    assert store.activations.current() is None
    assert store.activations.history() == []


def test_activations_chain_and_an_older_version_rolls_back(store: Store, now: datetime) -> None:
    """Each activation names the version it replaced; activating v1 again is the rollback."""
    store.activations.activate("v1", tal_id=1, by="ana", note="first", now=now)
    store.activations.activate("v2", tal_id=None, by="bo", note="", now=now + timedelta(hours=1))
    back = store.activations.activate(
        "v1", tal_id=1, by="ana", note="rollback", now=now + timedelta(hours=2)
    )

    current = store.activations.current()
    history = store.activations.history()

    assert current == back
    assert (current.version, current.previous_version, current.tal_id) == ("v1", "v2", 1)
    assert [a.version for a in history] == ["v1", "v2", "v1"]
    assert [a.previous_version for a in history] == ["v2", "v1", None]
    assert [a.activated_by for a in history] == ["ana", "bo", "ana"]
    assert history[1].tal_id is None
    assert history[2].activated_at == now
    assert history[0].activated_at.utcoffset() == timedelta(0)
    assert len(store.activations.history(limit=2)) == 2
