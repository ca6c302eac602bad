"""The run repository, on SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from icp_sync.errors import StateStoreError
from icp_sync.model import CrmObject, Reject
from icp_sync.store import Store


def test_run_history_and_rejects(store: Store, now: datetime) -> None:
    """Runs are recorded newest first with their summary; rejects are kept per run."""
    store.runs.start("r1", "sync", now=now)
    store.runs.finish("r1", status="ok", summary={"api_calls": 3}, now=now)
    store.runs.start("r2", "sync", now=now + timedelta(minutes=5))
    reject = Reject(crm_object=CrmObject.OPPORTUNITY, record_id="O9", reason="missing account_id")
    store.runs.add_rejects("r2", [reject])

    runs = store.runs.recent()

    assert [r.run_id for r in runs] == ["r2", "r1"]
    assert runs[1].summary == {"api_calls": 3}
    assert runs[1].finished_at == now.astimezone(UTC)
    assert runs[0].status == "running"
    assert runs[0].finished_at is None
    assert store.runs.rejects("r2") == [reject]
    assert store.runs.rejects("r1") == []


def test_recent_runs_are_limited(store: Store, now: datetime) -> None:
    """recent(limit) returns only the newest ``limit`` runs."""
    for i in range(5):
        store.runs.start(f"r{i}", "derive", now=now + timedelta(minutes=i))

    assert [r.run_id for r in store.runs.recent(limit=2)] == ["r4", "r3"]


def test_many_rejects_are_kept_in_order(store: Store) -> None:
    """Rejects beyond one write chunk are all kept, in the order given."""
    items = [
        Reject(crm_object=CrmObject.ACCOUNT, record_id=f"A{i}", reason="x") for i in range(6_001)
    ]

    store.runs.add_rejects("r1", items)
    store.runs.add_rejects("r1", [])

    assert store.runs.rejects("r1") == items


def test_a_run_id_is_started_once(store: Store, now: datetime) -> None:
    """Starting a run id twice is a StateStoreError and leaves the first run intact."""
    store.runs.start("r1", "sync", now=now)

    with pytest.raises(StateStoreError, match="write failed"):
        store.runs.start("r1", "derive", now=now)
    assert [(r.run_id, r.command) for r in store.runs.recent()] == [("r1", "sync")]
