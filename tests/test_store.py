"""The state store contract, run on SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from icp_sync.errors import StateStoreError
from icp_sync.model import CrmObject, Reject, conform
from icp_sync.store import SCHEMA_VERSION, Store


def _accounts(n: int = 3) -> pd.DataFrame:
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


def test_new_store_is_at_the_current_schema_version(store: Store) -> None:
    """Opening an empty database creates every table at the current schema version."""
    assert store.schema_version == SCHEMA_VERSION


def test_reopening_keeps_data_and_version(store_url: str, now: datetime) -> None:
    """A store opened twice migrates once and keeps what was written."""
    with Store.open(store_url) as first:
        first.mirror.upsert(CrmObject.ACCOUNT, _accounts(), now=now)
    with Store.open(store_url) as second:
        assert second.schema_version == SCHEMA_VERSION
        assert second.mirror.counts()["account"] == 3


def test_store_written_by_a_newer_version_is_refused(store_url: str) -> None:
    """A schema version above this release's is an error, not silently used."""
    with Store.open(store_url) as store, store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE icp_meta SET value = '999' WHERE key = 'schema_version'"))
    with pytest.raises(StateStoreError, match="newer"):
        Store.open(store_url)


def test_mirror_round_trip_preserves_values(store: Store, now: datetime) -> None:
    """What goes into the mirror comes back identical: nulls, datetimes, attributes."""
    frame = _accounts()
    store.mirror.upsert(CrmObject.ACCOUNT, frame, now=now)

    loaded = store.mirror.load(CrmObject.ACCOUNT)

    pd.testing.assert_frame_equal(loaded, frame, check_dtype=False)
    assert loaded["created_at"].iloc[0] == pd.Timestamp("2024-01-02T03:04:05.123456Z")


def test_upsert_counts_only_real_changes(store: Store, now: datetime) -> None:
    """Re-writing identical rows changes nothing; one edited row is one update."""
    frame = _accounts(100)
    first = store.mirror.upsert(CrmObject.ACCOUNT, frame, now=now)
    again = store.mirror.upsert(CrmObject.ACCOUNT, frame, now=now)
    edited = frame.copy()
    edited.loc[7, "name"] = "Renamed Inc"
    edited = pd.concat([edited, _accounts(101).tail(1)], ignore_index=True)
    third = store.mirror.upsert(CrmObject.ACCOUNT, edited, now=now)

    assert (first.inserted, first.updated, first.unchanged) == (100, 0, 0)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 100)
    assert (third.inserted, third.updated, third.unchanged) == (1, 1, 99)
    assert store.mirror.load(CrmObject.ACCOUNT).set_index("account_id").loc["A7", "name"] == (
        "Renamed Inc"
    )


def test_deleted_records_leave_the_live_mirror(store: Store, now: datetime) -> None:
    """Marking records deleted hides them from the live view but keeps them on request."""
    store.mirror.upsert(CrmObject.ACCOUNT, _accounts(), now=now)

    changed = store.mirror.mark_deleted(CrmObject.ACCOUNT, ["A1", "A2"], now=now)
    again = store.mirror.mark_deleted(CrmObject.ACCOUNT, ["A1"], now=now)

    assert (changed, again) == (2, 0)
    assert store.mirror.ids(CrmObject.ACCOUNT) == {"A0"}
    assert len(store.mirror.load(CrmObject.ACCOUNT, include_deleted=True)) == 3
    assert store.mirror.counts() == {"account": 1, "opportunity": 0}


def test_a_deleted_record_that_returns_is_live_again(store: Store, now: datetime) -> None:
    """A record restored in the CRM (same content) is mirrored as live again."""
    frame = _accounts()
    store.mirror.upsert(CrmObject.ACCOUNT, frame, now=now)
    store.mirror.mark_deleted(CrmObject.ACCOUNT, ["A1"], now=now)

    result = store.mirror.upsert(CrmObject.ACCOUNT, frame, now=now)

    assert result.updated == 1
    assert store.mirror.ids(CrmObject.ACCOUNT) == {"A0", "A1", "A2"}


def test_watermarks_are_kept_per_connector_and_object(store: Store, now: datetime) -> None:
    """Cursors are stored, replaced and cleared per connector and object."""
    store.watermarks.set("files", CrmObject.ACCOUNT, "a1", now=now)
    store.watermarks.set("files", CrmObject.ACCOUNT, "a2", now=now)
    store.watermarks.set("salesforce", CrmObject.ACCOUNT, "s1", now=now)

    assert store.watermarks.get("files", CrmObject.ACCOUNT) == "a2"
    assert store.watermarks.get("files", CrmObject.OPPORTUNITY) is None
    store.watermarks.clear("files")
    assert store.watermarks.get("files", CrmObject.ACCOUNT) is None
    assert store.watermarks.get("salesforce", CrmObject.ACCOUNT) == "s1"


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
    assert store.runs.rejects("r2") == [reject]


def test_large_mirror_write_is_chunked_and_complete(store: Store, now: datetime) -> None:
    """Tens of thousands of rows go in (across chunks) and all come back."""
    frame = _accounts(12_345)

    result = store.mirror.upsert(CrmObject.ACCOUNT, frame, now=now)

    assert result.inserted == 12_345
    assert store.mirror.counts()["account"] == 12_345
