"""Internals every store repository shares: transactions, upsert, chunking, value conversion."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, cast

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from icp_sync.errors import StateStoreError

CHUNK = 5_000
"""Rows per executemany batch: bounded memory and statement size on both databases."""


class Repository:
    """Base of the repositories: one engine, reads on a connection, writes in a transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        """A transaction committed on exit; database errors become :class:`StateStoreError`."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise StateStoreError(f"state store write failed: {short(exc)}") from exc


def upsert(conn: Connection, table: sa.Table, *keys: str) -> Any:
    """INSERT ... ON CONFLICT (keys) DO UPDATE of every other column, in the open dialect."""
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = insert(table)
    updates = {c.name: statement.excluded[c.name] for c in table.columns if c.name not in keys}
    return statement.on_conflict_do_update(index_elements=list(keys), set_=updates)


def execute_chunked(conn: Connection, statement: Any, rows: Sequence[dict[str, Any]]) -> None:
    """Execute ``statement`` for ``rows`` in batches of :data:`CHUNK`."""
    for start in range(0, len(rows), CHUNK):
        conn.execute(statement, rows[start : start + CHUNK])


def execute_frame(conn: Connection, statement: Any, frame: pd.DataFrame) -> None:
    """Execute ``statement`` (an INSERT or upsert of ``frame``'s columns) for every row.

    ``frame`` holds plain values (``None`` for missing). On SQLite the rows go to the
    driver's ``executemany`` as tuples, the column types' bind conversions applied once per
    distinct value: building and converting a dict per row costs more than SQLite's insert.
    """
    if conn.dialect.name != "sqlite" or frame.empty:
        execute_chunked(conn, statement, records(frame))
        return
    compiled = statement.compile(dialect=conn.dialect, column_keys=list(frame.columns))
    names = list(compiled.positiontup or ())
    table = statement.table
    columns = [bound_values(table.c[name].type, conn, frame[name].tolist()) for name in names]
    rows = list(zip(*columns, strict=True))
    sql = str(compiled)
    for start in range(0, len(rows), CHUNK):
        conn.exec_driver_sql(sql, rows[start : start + CHUNK])


def bound_values(kind: Any, conn: Connection, values: Sequence[Any]) -> Sequence[Any]:
    """``values`` as the driver takes them for a column of type ``kind``."""
    convert = kind.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    if convert is None:
        return values
    try:
        distinct = {value: convert(value) for value in set(values)}
    except TypeError:  # an unhashable value: convert each
        return [convert(value) for value in values]
    return [distinct[value] for value in values]


def rows_where_in(
    conn: Connection, query: sa.Select[Any], column: Any, ids: Iterable[str] | None
) -> list[Any]:
    """The rows of ``query`` (all, or those whose ``column`` is one of ``ids``, asked
    :data:`CHUNK` ids at a time)."""
    if ids is None:
        return list(conn.execute(query).fetchall())
    wanted = sorted(set(ids))
    return [
        row
        for start in range(0, len(wanted), CHUNK)
        for row in conn.execute(query.where(column.in_(wanted[start : start + CHUNK])))
    ]


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A frame as a list of row dicts (plain Python values)."""
    # to_dict already boxes numpy scalars as Python values; keys are column names
    return cast(list[dict[str, Any]], frame.to_dict("records"))


def plain(value: object) -> object:
    """A JSON-serialisable stand-in for numpy scalars and pandas timestamps."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


def aware(value: datetime) -> datetime:
    """A datetime read back from the database, as UTC-aware (SQLite drops the zone)."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def short(exc: SQLAlchemyError) -> str:
    """The first line of the driver's message: enough to act on, no SQL dump."""
    original = getattr(exc, "orig", None)
    return str(original or exc).splitlines()[0]


def process_alive(pid: int) -> bool:
    """Does process ``pid`` exist on this host? (Signal 0 checks without signalling.)"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, owned by another user
    return True
