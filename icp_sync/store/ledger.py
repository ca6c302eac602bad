"""The write ledger repository: CRM field values read back, writes attempted, connector state."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import repeat
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from icp_sync.model import CrmObject
from icp_sync.store._base import (
    CHUNK,
    Repository,
    aware,
    bound_values,
    execute_chunked,
    rows_where_in,
    upsert,
)
from icp_sync.store.schema import connector_state, field_state, write_ledger


@dataclass(frozen=True, slots=True)
class Rejection:
    """A record whose latest write attempt the CRM refused.

    Attributes:
        values: The refused values (JSON, keys sorted).
        times: Refusals since the record was last written (deferrals do not count).
        last_at: When it was last refused.
    """

    values: str
    times: int
    last_at: datetime


class LedgerRepository(Repository):
    """What the CRM holds, what was written to it and with what result, and each connector's
    own state (tables ``field_state``, ``write_ledger``, ``connector_state``)."""

    def record_field_values(
        self,
        obj: CrmObject,
        values: dict[str, dict[str, str]],
        *,
        source: str,
        now: datetime,
    ) -> None:
        """Remember what the CRM holds: ``{record_id: {field: canonical text}}``."""
        if not any(values.values()):
            return
        with self._tx() as conn:
            _put_field_values(conn, obj, values, source=source, now=now)

    def record_outcome(
        self,
        obj: CrmObject,
        written: dict[str, dict[str, str]],
        entries: list[tuple[str, str, dict[str, Any], str]],
        *,
        run_id: str,
        now: datetime,
    ) -> None:
        """One write call's outcome, in one transaction: what the CRM now holds
        (``{record_id: {field: canonical text}}``, as :meth:`record_field_values` with source
        ``written``) and the ledger entries (as :meth:`log_writes`)."""
        if not any(written.values()) and not entries:
            return
        with self._tx() as conn:
            _put_field_values(conn, obj, written, source="written", now=now)
            _put_entries(conn, run_id, obj, entries, now=now)

    def field_values(self, obj: CrmObject, ids: Iterable[str] | None = None) -> pd.DataFrame:
        """What the CRM holds per record (rows) and owned field (columns), as text.

        ``ids``: only these records (default: every record).
        """
        query = sa.select(field_state.c.record_id, field_state.c.field, field_state.c.value).where(
            field_state.c.object == str(obj)
        )
        with self.engine.connect() as conn:
            rows = rows_where_in(conn, query, field_state.c.record_id, ids)
        if not rows:
            return pd.DataFrame()
        # column lists, not Row objects: building a frame from rows is the slow path
        long = pd.DataFrame(
            {
                "record_id": [r[0] for r in rows],
                "field": [r[1] for r in rows],
                "value": [r[2] for r in rows],
            }
        )
        return long.pivot(index="record_id", columns="field", values="value")

    def has_values(self, obj: CrmObject) -> bool:
        """Whether any owned-field value of ``obj`` is known (not a fresh store)."""
        query = sa.select(field_state.c.record_id).where(field_state.c.object == str(obj))
        with self.engine.connect() as conn:
            return conn.execute(query.limit(1)).first() is not None

    def known_values(self, obj: CrmObject, ids: Iterable[str]) -> dict[str, dict[str, str]]:
        """What icp-sync last knew some records' owned fields to hold: ``{id: {field: text}}``.

        An object with no stored values (a first sync) costs one look, not a query per
        :data:`~icp_sync.store._base.CHUNK` ids.
        """
        wanted = list(ids)
        known: dict[str, dict[str, str]] = {}
        if not wanted:
            return known
        if not self.has_values(obj):
            return known
        table = field_state
        columns = (table.c.record_id, table.c.field, table.c.value)
        mine = table.c.object == str(obj)
        with self.engine.connect() as conn:
            for start in range(0, len(wanted), CHUNK):
                query = sa.select(*columns).where(
                    mine, table.c.record_id.in_(wanted[start : start + CHUNK])
                )
                for record_id, field, value in conn.execute(query).all():
                    known.setdefault(record_id, {})[field] = value
        return known

    def manual_fields(self, obj: CrmObject) -> set[tuple[str, str]]:
        """(record id, field) pairs whose CRM value is a manual edit not written over since."""
        query = sa.select(field_state.c.record_id, field_state.c.field).where(
            field_state.c.object == str(obj), field_state.c.source == "manual"
        )
        with self.engine.connect() as conn:
            return {(str(r), str(f)) for r, f in conn.execute(query)}

    def log_writes(
        self,
        run_id: str,
        obj: CrmObject,
        entries: list[tuple[str, str, dict[str, Any], str]],
        *,
        now: datetime,
    ) -> None:
        """Append to the write ledger: (record_id, status, values, detail) per record."""
        if not entries:
            return
        with self._tx() as conn:
            _put_entries(conn, run_id, obj, entries, now=now)

    def rejected_writes(self, obj: CrmObject) -> dict[str, str]:
        """Records whose latest write attempt was rejected -> the values that were refused."""
        latest = (
            sa.select(write_ledger.c.record_id, sa.func.max(write_ledger.c.id).label("id"))
            .where(write_ledger.c.object == str(obj))
            .group_by(write_ledger.c.record_id)
            .subquery()
        )
        query = (
            sa.select(write_ledger.c.record_id, write_ledger.c["values"])
            .join(latest, write_ledger.c.id == latest.c.id)
            .where(write_ledger.c.status == "rejected")
        )
        with self.engine.connect() as conn:
            return {row[0]: row[1] for row in conn.execute(query)}

    def rejections(self, obj: CrmObject) -> dict[str, Rejection]:
        """Records whose latest write attempt was rejected, with how often in a row and when."""
        ledger = write_ledger
        mine = ledger.c.object == str(obj)
        attempts = ledger.c.status.in_(("written", "rejected"))
        latest = (
            sa.select(ledger.c.record_id, sa.func.max(ledger.c.id).label("id"))
            .where(mine, attempts)
            .group_by(ledger.c.record_id)
            .subquery()
        )
        last_written = (
            sa.select(ledger.c.record_id, sa.func.max(ledger.c.id).label("id"))
            .where(mine, ledger.c.status == "written")
            .group_by(ledger.c.record_id)
            .subquery()
        )
        streak = (
            sa.select(ledger.c.record_id, sa.func.count().label("times"))
            .outerjoin(last_written, last_written.c.record_id == ledger.c.record_id)
            .where(mine, ledger.c.status == "rejected")
            .where(ledger.c.id > sa.func.coalesce(last_written.c.id, 0))
            .group_by(ledger.c.record_id)
            .subquery()
        )
        query = (
            sa.select(ledger.c.record_id, ledger.c["values"], ledger.c.at, streak.c.times)
            .join(latest, ledger.c.id == latest.c.id)
            .join(streak, streak.c.record_id == ledger.c.record_id)
            .where(ledger.c.status == "rejected")
        )
        with self.engine.connect() as conn:
            return {
                str(record): Rejection(values=str(values), times=int(times), last_at=aware(at))
                for record, values, at, times in conn.execute(query)
            }

    def counts(self, run_id: str) -> dict[str, int]:
        """Ledger entries of one run, per status."""
        query = (
            sa.select(write_ledger.c.status, sa.func.count())
            .where(write_ledger.c.run_id == run_id)
            .group_by(write_ledger.c.status)
        )
        with self.engine.connect() as conn:
            return {str(status): int(count) for status, count in conn.execute(query)}

    def load_connector_state(self, connector: str) -> dict[str, Any]:
        """A connector's own persistent state."""
        query = sa.select(connector_state.c.state).where(connector_state.c.connector == connector)
        with self.engine.connect() as conn:
            value = conn.execute(query).scalar_one_or_none()
        return dict(json.loads(value)) if value else {}

    def save_connector_state(self, connector: str, state: dict[str, Any], *, now: datetime) -> None:
        """Replace a connector's state."""
        row = {"connector": connector, "state": json.dumps(state, default=str), "updated_at": now}
        with self._tx() as conn:
            conn.execute(upsert(conn, connector_state, "connector"), [row])


_JSON = json.JSONEncoder(default=str, sort_keys=True)
"""``json.dumps(..., default=str, sort_keys=True)``, its encoder built once."""


def _put_field_values(
    conn: Connection,
    obj: CrmObject,
    values: dict[str, dict[str, str]],
    *,
    source: str,
    now: datetime,
) -> None:
    cells = [(r, f, v) for r, fields in values.items() for f, v in fields.items()]
    if not cells:
        return
    record_ids, names, texts = (list(column) for column in zip(*cells, strict=True))
    columns = {"record_id": record_ids, "field": names, "value": texts}
    fixed = {"object": str(obj), "source": source, "updated_at": now}
    statement = upsert(conn, field_state, "object", "record_id", "field")
    _insert_columns(conn, statement, columns, fixed)


def _put_entries(
    conn: Connection,
    run_id: str,
    obj: CrmObject,
    entries: list[tuple[str, str, dict[str, Any], str]],
    *,
    now: datetime,
) -> None:
    if not entries:
        return
    encode = _JSON.encode
    columns = {
        "record_id": [e[0] for e in entries],
        "status": [e[1] for e in entries],
        "values": [encode(e[2]) for e in entries],
        "detail": [e[3] for e in entries],
    }
    fixed = {"run_id": run_id, "object": str(obj), "at": now}
    _insert_columns(conn, write_ledger.insert(), columns, fixed)


def _insert_columns(
    conn: Connection, statement: Any, columns: dict[str, list[Any]], fixed: dict[str, Any]
) -> None:
    """Execute ``statement`` (an INSERT or upsert) for rows given column-wise, plus columns
    that hold one value in every row.

    On SQLite the rows go to the driver's ``executemany`` as tuples, each column's bind
    conversion applied once per distinct value (see :func:`icp_sync.store._base.execute_frame`).
    """
    size = len(next(iter(columns.values())))
    if conn.dialect.name != "sqlite":
        names = list(columns)
        rows = [
            dict(zip(names, values, strict=True)) | fixed
            for values in zip(*columns.values(), strict=True)
        ]
        execute_chunked(conn, statement, rows)
        return
    compiled = statement.compile(dialect=conn.dialect, column_keys=[*columns, *fixed])

    def bound(name: str) -> Iterable[Any]:
        kind = statement.table.c[name].type
        if name in fixed:
            return repeat(bound_values(kind, conn, [fixed[name]])[0], size)
        return bound_values(kind, conn, columns[name])

    params = list(zip(*(bound(name) for name in compiled.positiontup or ()), strict=True))
    sql = str(compiled)
    for start in range(0, size, CHUNK):
        conn.exec_driver_sql(sql, params[start : start + CHUNK])


class StoredConnectorState:
    """A connector's state kept in the ledger (implements ``connectors.base.ConnectorState``)."""

    def __init__(self, ledger: LedgerRepository, connector: str) -> None:
        self._ledger = ledger
        self._connector = connector

    def load(self) -> dict[str, Any]:
        """The stored state."""
        return self._ledger.load_connector_state(self._connector)

    def save(self, state: dict[str, Any]) -> None:
        """Replace the stored state."""
        self._ledger.save_connector_state(self._connector, state, now=datetime.now(UTC))
