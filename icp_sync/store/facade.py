"""The Store facade: opens the database, migrates the schema, holds one repository per concern."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from icp_sync.errors import StateStoreError
from icp_sync.store._base import short
from icp_sync.store.activations import ActivationRepository
from icp_sync.store.commitments import CommitmentRepository
from icp_sync.store.lease import LeaseRepository
from icp_sync.store.ledger import LedgerRepository
from icp_sync.store.migrations import current_version, migrate
from icp_sync.store.mirror import MirrorRepository
from icp_sync.store.runs import RunRepository
from icp_sync.store.versions import VersionRepository
from icp_sync.store.watermarks import WatermarkRepository


class Store:
    """The state store. Open with :meth:`open`; close with :meth:`close` (or ``with``).

    Each concern is a repository attribute sharing the one engine:

    - ``mirror``: the CRM mirror (:class:`~icp_sync.store.mirror.MirrorRepository`);
    - ``watermarks``: sync cursors (:class:`~icp_sync.store.watermarks.WatermarkRepository`);
    - ``runs``: run history and rejects (:class:`~icp_sync.store.runs.RunRepository`);
    - ``versions``: ICP versions, scores, TALs
      (:class:`~icp_sync.store.versions.VersionRepository`);
    - ``ledger``: CRM field values, write ledger, connector state
      (:class:`~icp_sync.store.ledger.LedgerRepository`);
    - ``lease``: the single-writer lease (:class:`~icp_sync.store.lease.LeaseRepository`).
    - ``activations``: which ICP version and TAL are live, and since when
      (:class:`~icp_sync.store.activations.ActivationRepository`).
    - ``commitments``: annual ICP commitments, immutable, with their history
      (:class:`~icp_sync.store.commitments.CommitmentRepository`).

    A new concern is a table in :mod:`~icp_sync.store.schema`, a step appended in
    :mod:`~icp_sync.store.migrations`, a module with a :class:`Repository` subclass, and one
    attribute set here. Every repository method that writes commits before it returns, so a
    crash between two steps leaves the store at the last completed step.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.mirror = MirrorRepository(engine)
        self.watermarks = WatermarkRepository(engine)
        self.runs = RunRepository(engine)
        self.versions = VersionRepository(engine)
        self.ledger = LedgerRepository(engine)
        self.lease = LeaseRepository(engine)
        self.activations = ActivationRepository(engine)
        self.commitments = CommitmentRepository(engine)

    @classmethod
    def open(cls, url: str | SecretStr) -> Store:
        """Connect to ``url``, creating or upgrading the schema as needed.

        ``url`` may be the config's :class:`~pydantic.SecretStr` (it holds the password).

        Raises:
            StateStoreError: If the database cannot be reached, or was written by a newer
                version of icp-sync.
        """
        if isinstance(url, SecretStr):
            url = url.get_secret_value()
        try:
            engine = sa.create_engine(url, connect_args=_connect_args(url))
        except (SQLAlchemyError, ImportError) as exc:
            message = _without_password(str(exc).splitlines()[0], url)
            raise StateStoreError(f"cannot open the state store: {message}") from None
        if engine.dialect.name == "sqlite":
            sa.event.listen(engine, "connect", _sqlite_pragmas)
        try:
            with engine.begin() as conn:
                migrate(conn)
        except SQLAlchemyError as exc:
            engine.dispose()
            message = _without_password(short(exc), url)
            raise StateStoreError(f"cannot open the state store: {message}") from None
        except StateStoreError:
            engine.dispose()
            raise
        return cls(engine)

    @staticmethod
    def inspect(url: str | SecretStr) -> int:
        """The schema version of the database at ``url`` (0 when empty), changing nothing.

        Creates no file, table or journal: a missing SQLite file is reported as empty.

        Raises:
            StateStoreError: If the database cannot be reached.
        """
        if isinstance(url, SecretStr):
            url = url.get_secret_value()
        database = sa.engine.make_url(url).database if url.startswith("sqlite") else None
        if database and database != ":memory:" and not Path(database).exists():
            return 0
        try:
            engine = sa.create_engine(url, connect_args=_connect_args(url))
            try:
                with engine.connect() as conn:
                    return current_version(conn)
            finally:
                engine.dispose()
        except (SQLAlchemyError, ImportError) as exc:
            detail = short(exc) if isinstance(exc, SQLAlchemyError) else str(exc)
            raise StateStoreError(f"cannot open the state store: {detail}") from exc

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        """The schema version of the open database."""
        with self.engine.connect() as conn:
            return current_version(conn)


def _without_password(text: str, url: str) -> str:
    """``text`` with the URL's password (should a driver quote it) replaced by ``***``."""
    try:
        password = sa.engine.make_url(url).password
    except (SQLAlchemyError, ValueError):
        return text.replace(url, "***")
    return text.replace(str(password), "***") if password else text


def _connect_args(url: str) -> dict[str, Any]:
    return {"timeout": 30} if url.startswith("sqlite") else {}


def _sqlite_pragmas(dbapi_connection: Any, _: Any) -> None:
    # WAL lets readers (dashboard, CLI) run while a sync writes
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
