"""`check` reads the state store and writes nothing: no table, no file, no upgrade."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from icp_sync.config import load_settings
from icp_sync.pipeline import check
from icp_sync.store import SCHEMA_VERSION, Store
from icp_sync.store.migrations import current_version, migrate


def _store_item(example: Path, store_url: str) -> str:
    path = example / "icp-sync.toml"
    settings = load_settings(path)
    settings = settings.model_copy(
        update={"store": settings.store.model_copy(update={"url": store_url})}
    )
    report = check(settings, path)
    assert report.ok
    return next(i.detail for i in report.items if i.name == "state store")


def test_check_on_an_empty_database_creates_no_table(example: Path, store_url: str) -> None:
    """A fresh SQLite file or PostgreSQL schema stays empty; check says the sync creates it."""
    detail = _store_item(example, store_url)

    assert "empty database: the first sync creates the schema" in detail
    if store_url.startswith("sqlite"):
        assert not Path(sa.engine.make_url(store_url).database or "").exists()
        return
    engine = sa.create_engine(store_url)
    try:
        assert sa.inspect(engine).get_table_names() == []
    finally:
        engine.dispose()


def test_check_on_an_older_schema_reports_it_and_leaves_it(example: Path, store_url: str) -> None:
    """A v2 store is reported as older (the next sync upgrades it) and stays at v2."""
    engine = sa.create_engine(store_url)
    with engine.begin() as conn:
        migrate(conn, target=2)

    detail = _store_item(example, store_url)

    with engine.connect() as conn:
        assert current_version(conn) == 2
    engine.dispose()
    assert f"schema v2 is older than this release's v{SCHEMA_VERSION}" in detail
    assert "the next sync upgrades it" in detail


def test_check_on_a_current_store_names_its_version(example: Path, store_url: str) -> None:
    """A store at this release's schema is reported with its version."""
    Store.open(store_url).close()

    assert f"(schema version {SCHEMA_VERSION})" in _store_item(example, store_url)
