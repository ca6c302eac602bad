"""Commitments in the store: immutable, named by content hash, superseded with history kept."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from icp_sync.compliance import Commitment, make_commitment
from icp_sync.errors import StateStoreError
from icp_sync.store import Store
from icp_sync.store.commitments import CommitmentRepository


def _commitment(
    now: datetime, *, period: str = "2027", share: float = 0.7, supersedes: str | None = None
) -> Commitment:
    return make_commitment(
        period=period,
        icp_version="v3",
        definition='version = "v3"\n',
        tal_name="TAL",
        tal_account_ids=["A2", "A1"],
        target_green_share=share,
        targets={"max_red_share": 0.05},
        signatories=["Sales: Dana Lee", "Finance: Sam Roe"],
        created_at=now,
        created_by="revops",
        supersedes=supersedes,
    )


def test_the_repository_has_no_way_to_change_a_commitment() -> None:
    """The repository offers add and reads only: no update, no delete."""
    public = {n for n in dir(CommitmentRepository) if not n.startswith("_")}

    assert public == {"add", "get", "history", "active"}


def test_a_stored_commitment_reads_back_equal(store: Store, now: datetime) -> None:
    """What is added is what is read: every field, and it is active for its period."""
    added = store.commitments.add(_commitment(now))

    assert store.commitments.active("2027") == added
    assert store.commitments.get(added.content_hash) == added
    assert store.commitments.get(added.content_hash[:10]) == added
    assert added.tal_rank("A2") == 1
    assert added.intact


def test_adding_the_same_commitment_twice_stores_it_once(store: Store, now: datetime) -> None:
    """The content hash names a commitment: a second add of it is a no-op."""
    store.commitments.add(_commitment(now))
    store.commitments.add(_commitment(now))

    assert len(store.commitments.history()) == 1


def test_superseding_keeps_the_history_and_moves_the_active_one(
    store: Store, now: datetime
) -> None:
    """A new commitment naming the old one becomes active; both stay in the history."""
    first = store.commitments.add(_commitment(now))
    second = store.commitments.add(
        _commitment(now + timedelta(days=1), share=0.8, supersedes=first.content_hash)
    )

    assert store.commitments.active("2027") == second
    assert store.commitments.history("2027") == [first, second]
    assert store.commitments.active("2028") is None


def test_active_without_a_period_is_the_one_covering_now(store: Store, now: datetime) -> None:
    """With no period, the commitment whose period covers 'now' wins over a newer one."""
    this_year = store.commitments.add(_commitment(now, period="2026"))
    store.commitments.add(_commitment(now, period="2027"))

    assert store.commitments.active(now=datetime(2026, 6, 1, tzinfo=UTC)) == this_year
    assert store.commitments.active(now=datetime(2030, 1, 1, tzinfo=UTC)).period == "2027"


def test_superseding_an_unknown_commitment_is_refused(store: Store, now: datetime) -> None:
    """A commitment cannot name a predecessor the store does not hold."""
    with pytest.raises(StateStoreError, match="not stored"):
        store.commitments.add(_commitment(now, supersedes="f" * 64))


@pytest.mark.parametrize("statement", ["UPDATE", "DELETE"])
def test_the_database_refuses_to_change_a_stored_commitment(
    store: Store, now: datetime, statement: str
) -> None:
    """An UPDATE or DELETE on the commitments table fails in the database itself."""
    added = store.commitments.add(_commitment(now))
    sql = {
        "UPDATE": "UPDATE commitments SET icp_version = 'v9'",
        "DELETE": "DELETE FROM commitments",
    }[statement]

    with pytest.raises(SQLAlchemyError, match="immutable"), store.engine.begin() as conn:
        conn.execute(sa.text(sql))

    assert store.commitments.active("2027") == added


def test_an_altered_row_is_detected_by_its_hash(store: Store, now: datetime) -> None:
    """A row edited behind the database's back (triggers dropped) no longer reads as valid."""
    added = store.commitments.add(_commitment(now))
    with store.engine.connect() as conn:
        body = json.loads(conn.execute(sa.text("SELECT body FROM commitments")).scalar_one())
    body["target_green_share"] = 0.1
    with store.engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.execute(sa.text("DROP TRIGGER commitments_no_update"))
        else:
            conn.execute(sa.text("DROP TRIGGER commitments_immutable ON commitments"))
        conn.execute(sa.text("UPDATE commitments SET body = :b"), {"b": json.dumps(body)})

    with pytest.raises(StateStoreError, match="altered"):
        store.commitments.active("2027")
    assert added.intact
