"""The mirror repository, on SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from icp_sync.model import CrmObject
from icp_sync.store import Store
from tests.store.frames import accounts, opportunities


def test_mirror_round_trip_preserves_values(store: Store, now: datetime) -> None:
    """What goes into the mirror comes back identical: nulls, datetimes, attributes."""
    frame = accounts()
    store.mirror.upsert(CrmObject.ACCOUNT, frame, now=now)

    loaded = store.mirror.load(CrmObject.ACCOUNT)

    pd.testing.assert_frame_equal(loaded, frame, check_dtype=False)
    assert loaded["created_at"].iloc[0] == pd.Timestamp("2024-01-02T03:04:05.123456Z")


def test_opportunities_have_their_own_mirror(store: Store, now: datetime) -> None:
    """Opportunities round-trip through mirror_opportunities without touching accounts."""
    frame = opportunities()

    result = store.mirror.upsert(CrmObject.OPPORTUNITY, frame, now=now)

    assert result.inserted == 2
    pd.testing.assert_frame_equal(
        store.mirror.load(CrmObject.OPPORTUNITY), frame, check_dtype=False
    )
    assert store.mirror.counts() == {"account": 0, "opportunity": 2}


def test_upsert_counts_only_real_changes(store: Store, now: datetime) -> None:
    """Re-writing identical rows changes nothing; one edited row is one update."""
    frame = accounts(100)
    first = store.mirror.upsert(CrmObject.ACCOUNT, frame, now=now)
    again = store.mirror.upsert(CrmObject.ACCOUNT, frame, now=now)
    edited = frame.copy()
    edited.loc[7, "name"] = "Renamed Inc"
    edited = pd.concat([edited, accounts(101).tail(1)], ignore_index=True)
    third = store.mirror.upsert(CrmObject.ACCOUNT, edited, now=now)

    assert (first.inserted, first.updated, first.unchanged) == (100, 0, 0)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 100)
    assert (third.inserted, third.updated, third.unchanged) == (1, 1, 99)
    assert store.mirror.load(CrmObject.ACCOUNT).set_index("account_id").loc["A7", "name"] == (
        "Renamed Inc"
    )


def test_upsert_told_the_known_ids_counts_and_writes_the_same(store: Store, now: datetime) -> None:
    """With the caller's set of mirrored ids, new, edited and identical rows count as without."""
    frame = accounts(100)
    first = store.mirror.upsert(CrmObject.ACCOUNT, frame, now=now, known=set())
    edited = frame.copy()
    edited.loc[7, "name"] = "Renamed Inc"
    edited = pd.concat([edited, accounts(101).tail(1)], ignore_index=True)
    second = store.mirror.upsert(CrmObject.ACCOUNT, edited, now=now, known=set(frame["account_id"]))

    assert (first.inserted, first.updated, first.unchanged) == (100, 0, 0)
    assert (second.inserted, second.updated, second.unchanged) == (1, 1, 99)
    loaded = store.mirror.load(CrmObject.ACCOUNT).set_index("account_id")
    assert len(loaded) == 101
    assert loaded.loc["A7", "name"] == "Renamed Inc"


def test_duplicate_ids_in_one_batch_keep_the_last(store: Store, now: datetime) -> None:
    """Within one batch the last row of an id wins, counted once."""
    frame = accounts(2)
    later = frame.tail(1).assign(name="Latest")

    result = store.mirror.upsert(CrmObject.ACCOUNT, pd.concat([frame, later]), now=now)

    assert result.inserted == 2
    assert store.mirror.load(CrmObject.ACCOUNT)["name"].tolist() == ["Company 0", "Latest"]


def test_an_empty_batch_writes_nothing(store: Store, now: datetime) -> None:
    """An empty frame is a no-op with zero counts."""
    result = store.mirror.upsert(CrmObject.ACCOUNT, accounts(0), now=now)

    assert (result.inserted, result.updated, result.unchanged) == (0, 0, 0)
    assert store.mirror.load(CrmObject.ACCOUNT).empty


def test_deleted_records_leave_the_live_mirror(store: Store, now: datetime) -> None:
    """Marking records deleted hides them from the live view but keeps them on request."""
    store.mirror.upsert(CrmObject.ACCOUNT, accounts(), now=now)

    changed = store.mirror.mark_deleted(CrmObject.ACCOUNT, ["A1", "A2"], now=now)
    again = store.mirror.mark_deleted(CrmObject.ACCOUNT, ["A1"], now=now)

    assert (changed, again) == (2, 0)
    assert store.mirror.ids(CrmObject.ACCOUNT) == {"A0"}
    assert store.mirror.ids(CrmObject.ACCOUNT, include_deleted=True) == {"A0", "A1", "A2"}
    assert len(store.mirror.load(CrmObject.ACCOUNT, include_deleted=True)) == 3
    assert store.mirror.counts() == {"account": 1, "opportunity": 0}


def test_a_deleted_record_that_returns_is_live_again(store: Store, now: datetime) -> None:
    """A record restored in the CRM (same content) is mirrored as live again."""
    frame = accounts()
    store.mirror.upsert(CrmObject.ACCOUNT, frame, now=now)
    store.mirror.mark_deleted(CrmObject.ACCOUNT, ["A1"], now=now)

    result = store.mirror.upsert(CrmObject.ACCOUNT, frame, now=now)

    assert result.updated == 1
    assert store.mirror.ids(CrmObject.ACCOUNT) == {"A0", "A1", "A2"}


def test_large_mirror_write_is_chunked_and_complete(store: Store, now: datetime) -> None:
    """Tens of thousands of rows go in (across chunks) and all come back."""
    frame = accounts(12_345)

    result = store.mirror.upsert(CrmObject.ACCOUNT, frame, now=now)
    gone = store.mirror.mark_deleted(CrmObject.ACCOUNT, [f"A{i}" for i in range(6_000)], now=now)

    assert result.inserted == 12_345
    assert gone == 6_000
    assert store.mirror.counts()["account"] == 12_345 - 6_000


def test_a_small_batch_into_a_large_mirror_counts_changes(store: Store, now: datetime) -> None:
    """A batch much smaller than the mirror still tells new, edited and unchanged rows apart."""
    frame = accounts(50)
    store.mirror.upsert(CrmObject.ACCOUNT, frame, now=now)
    batch = pd.concat([frame.iloc[[3, 4]], accounts(51).tail(1)], ignore_index=True)
    batch.loc[0, "name"] = "Renamed Inc"

    result = store.mirror.upsert(CrmObject.ACCOUNT, batch, now=now)

    assert (result.inserted, result.updated, result.unchanged) == (1, 1, 1)
    loaded = store.mirror.load(CrmObject.ACCOUNT).set_index("account_id")
    assert len(loaded) == 51
    assert loaded.loc["A3", "name"] == "Renamed Inc"


def test_numeric_and_text_attributes_round_trip(store: Store, now: datetime) -> None:
    """Extra attributes of any kind come back as written; missing ones stay missing."""
    frame = accounts(3).assign(attr_seats=[1.5, float("nan"), 7.0])
    store.mirror.upsert(CrmObject.ACCOUNT, frame, now=now)

    loaded = store.mirror.load(CrmObject.ACCOUNT)

    assert loaded["attr_seats"].tolist()[0::2] == [1.5, 7.0]
    assert pd.isna(loaded["attr_seats"].iloc[1])
    assert loaded["attr_plan"].tolist()[0::2] == ["Growth", "Starter"]
    assert pd.isna(loaded["attr_plan"].iloc[1])
