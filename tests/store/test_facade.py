"""The Store facade and its migrations, on SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

from datetime import datetime

import pytest
import sqlalchemy as sa

from icp_sync.errors import StateStoreError
from icp_sync.model import CrmObject
from icp_sync.store import SCHEMA_VERSION, Store
from icp_sync.store.migrations import STEPS, current_version, migrate
from icp_sync.store.schema import metadata
from tests.store.frames import accounts


def test_new_store_is_at_the_current_schema_version(store: Store) -> None:
    """Opening an empty database creates every table at the current schema version."""
    assert store.schema_version == SCHEMA_VERSION == len(STEPS)


def test_every_declared_table_is_created(store: Store) -> None:
    """The migrations create exactly the tables schema.py declares, and nothing else."""
    created = set(sa.inspect(store.engine).get_table_names())

    assert created == set(metadata.tables)


def test_reopening_keeps_data_and_version(store_url: str, now: datetime) -> None:
    """A store opened twice migrates once and keeps what was written."""
    with Store.open(store_url) as first:
        first.mirror.upsert(CrmObject.ACCOUNT, accounts(), now=now)
    with Store.open(store_url) as second:
        assert second.schema_version == SCHEMA_VERSION
        assert second.mirror.counts()["account"] == 3


@pytest.mark.parametrize("old", range(1, SCHEMA_VERSION), ids=lambda v: f"from-v{v}")
def test_an_older_schema_is_upgraded_in_place(store_url: str, now: datetime, old: int) -> None:
    """A database left at an older version gains the newer tables and keeps its data."""
    engine = sa.create_engine(store_url)
    with engine.begin() as conn:
        migrate(conn, target=old)
    with engine.connect() as conn:
        assert current_version(conn) == old
        assert sa.inspect(conn).has_table("leases") == (old >= 4)
        assert sa.inspect(conn).has_table("icp_activations") == (old >= 5)
        assert not sa.inspect(conn).has_table("commitments")
    engine.dispose()
    with Store.open(store_url) as upgraded:
        assert upgraded.schema_version == SCHEMA_VERSION
        assert upgraded.lease.holder("sync") is None
        upgraded.mirror.upsert(CrmObject.ACCOUNT, accounts(), now=now)
        upgraded.ledger.log_writes("r1", CrmObject.ACCOUNT, [("A0", "ok", {}, "")], now=now)
        assert upgraded.ledger.counts("r1") == {"ok": 1}


def test_an_upgrade_keeps_rows_written_before_it(store_url: str, now: datetime) -> None:
    """Mirror rows written at schema version 1 are still there after the upgrade."""
    engine = sa.create_engine(store_url)
    with engine.begin() as conn:
        migrate(conn, target=1)
        conn.execute(
            sa.text(
                "INSERT INTO runs (run_id, command, started_at, status) "
                "VALUES ('old', 'sync', :at, 'ok')"
            ),
            {"at": now},
        )
    engine.dispose()

    with Store.open(store_url) as store:
        assert [r.run_id for r in store.runs.recent()] == ["old"]
        assert store.versions.get() is None


def test_store_written_by_a_newer_version_is_refused(store_url: str) -> None:
    """A schema version above this release's is an error, not silently used."""
    with Store.open(store_url) as store, store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE icp_meta SET value = '999' WHERE key = 'schema_version'"))
    with pytest.raises(StateStoreError, match="newer"):
        Store.open(store_url)


def test_an_unusable_url_is_a_state_store_error() -> None:
    """A URL naming an unknown driver fails with StateStoreError, not a library error."""
    with pytest.raises(StateStoreError, match="cannot open the state store"):
        Store.open("nosuchdb://nowhere/state")
