"""Shared fixtures: a clock, example configs, a state store on every database, sandboxes."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import structlog

from icp_sync.sandbox.service import Sandbox, SandboxSettings
from icp_sync.store import Store

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
POSTGRES_ENV = "ICP_SYNC_TEST_POSTGRES_URL"

SandboxFactory = Callable[..., Sandbox]


@pytest.fixture
def now() -> datetime:
    """A fixed 'current time' for pure code."""
    return datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    """Every test starts with structlog's defaults and no bound context."""
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


@pytest.fixture
def example(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """A private copy of one bundled example folder (parametrise with its name)."""
    name = getattr(request, "param", "maven")
    target = tmp_path / name
    shutil.copytree(EXAMPLES / name, target, ignore=shutil.ignore_patterns("*.db*"))
    return target


def _postgres_schema_url(base: str) -> Iterator[str]:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in base else "?"
    try:
        yield f"{base}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgresql", marks=pytest.mark.postgres),
    ]
)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database URL: SQLite in tmp_path, or a private PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.db'}"
        return
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"PostgreSQL tests need {POSTGRES_ENV} (e.g. postgresql+psycopg://...)")
    yield from _postgres_schema_url(base)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """An open state store on each supported database; checks no connection leaks."""
    opened = Store.open(store_url)
    yield opened
    checked_out = opened.engine.pool.checkedout()  # type: ignore[attr-defined]
    opened.close()
    assert checked_out == 0, f"{checked_out} connections leaked"


@pytest.fixture
def sandbox_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxFactory]:
    """Start sandboxes (both CRM emulators on free ports); all are stopped at teardown."""
    started: list[Sandbox] = []

    def start(accounts: int = 1000, **settings: Any) -> Sandbox:
        directory = settings.pop("directory", None) or tmp_path_factory.mktemp("sandbox")
        sandbox = Sandbox(SandboxSettings(directory=directory, accounts=accounts, **settings))
        started.append(sandbox.start())
        return sandbox

    yield start
    for sandbox in started:
        sandbox.stop()


@pytest.fixture
def sandbox(sandbox_factory: SandboxFactory) -> Sandbox:
    """A running sandbox with 1,000 generated accounts (seed 0, planted ICP, no faults)."""
    return sandbox_factory()
