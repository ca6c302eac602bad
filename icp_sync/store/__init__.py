"""The state store: SQLAlchemy Core over SQLite (default) or PostgreSQL.

It holds the CRM mirror (accounts, opportunities), sync watermarks per connector and object,
rejected records and run history. The schema carries a version and is created or upgraded
automatically when a store is opened. Every method that writes commits before it returns, so a
crash between two steps leaves the store at the last completed step.

Mirror datetimes are stored as integer microseconds since the epoch (UTC): exact, portable
between both databases, and fast to load into pandas.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from icp_sync.errors import StateStoreError
from icp_sync.model import (
    BOOLEAN,
    COLUMNS,
    DATETIME,
    ID_COLUMN,
    NUMBER,
    CrmObject,
    Reject,
    attr_columns,
    conform,
)

__all__ = [
    "SCHEMA_VERSION",
    "IcpVersion",
    "MirrorResult",
    "RunRecord",
    "Store",
    "StoredConnectorState",
    "StoredTal",
]

metadata = sa.MetaData()

meta_table = sa.Table(
    "icp_meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)


def _mirror_table(obj: CrmObject, name: str) -> sa.Table:
    columns: list[sa.Column[Any]] = []
    for column, dtype in COLUMNS[obj].items():
        if column == ID_COLUMN[obj]:
            columns.append(sa.Column(column, sa.String(255), primary_key=True))
        elif dtype == DATETIME:
            columns.append(sa.Column(column, sa.BigInteger))
        elif dtype == NUMBER:
            columns.append(sa.Column(column, sa.Float))
        elif dtype == BOOLEAN:
            columns.append(sa.Column(column, sa.Boolean, nullable=False))
        else:
            columns.append(sa.Column(column, sa.Text))
    columns += [
        sa.Column("attrs", sa.Text),
        sa.Column("row_hash", sa.BigInteger, nullable=False),
        sa.Column("synced_at", sa.BigInteger, nullable=False),
    ]
    return sa.Table(name, metadata, *columns)


MIRROR: dict[CrmObject, sa.Table] = {
    CrmObject.ACCOUNT: _mirror_table(CrmObject.ACCOUNT, "mirror_accounts"),
    CrmObject.OPPORTUNITY: _mirror_table(CrmObject.OPPORTUNITY, "mirror_opportunities"),
}

watermarks = sa.Table(
    "sync_watermarks",
    metadata,
    sa.Column("connector", sa.String(64), primary_key=True),
    sa.Column("object", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("command", sa.String(64), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("summary", sa.Text),
)

rejects = sa.Table(
    "rejects",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(64), nullable=False, index=True),
    sa.Column("object", sa.String(32), nullable=False),
    sa.Column("record_id", sa.String(255), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
)


icp_versions = sa.Table(
    "icp_versions",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("version", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
    sa.Column("definition", sa.Text, nullable=False),
    sa.Column("evidence", sa.Text, nullable=False),
    sa.Column("model_summary", sa.Text, nullable=False),
    sa.Column("model", sa.LargeBinary),
)

account_scores = sa.Table(
    "account_scores",
    metadata,
    sa.Column("version", sa.String(64), primary_key=True),
    sa.Column("account_id", sa.String(255), primary_key=True),
    sa.Column("tier", sa.String(16), nullable=False),
    sa.Column("rule_tier", sa.String(16), nullable=False),
    sa.Column("score", sa.Integer, nullable=False),
    sa.Column("segment", sa.Text, nullable=False),
    sa.Column("reasons", sa.Text, nullable=False),
    sa.Column("overridden", sa.Boolean, nullable=False),
    sa.Column("scored_at", sa.DateTime(timezone=True), nullable=False),
)

tals = sa.Table(
    "tals",
    metadata,
    sa.Column("tal_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("version", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("coverage", sa.Text, nullable=False),
)

tal_members = sa.Table(
    "tal_members",
    metadata,
    sa.Column("tal_id", sa.Integer, primary_key=True),
    sa.Column("account_id", sa.String(255), primary_key=True),
    sa.Column("rank", sa.Integer, nullable=False),
    sa.Column("score", sa.Integer, nullable=False),
    sa.Column("tier", sa.String(16), nullable=False),
    sa.Column("segment", sa.Text, nullable=False),
    sa.Column("reasons", sa.Text, nullable=False),
)


connector_state = sa.Table(
    "connector_state",
    metadata,
    sa.Column("connector", sa.String(64), primary_key=True),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

field_state = sa.Table(
    "field_state",
    metadata,
    sa.Column("object", sa.String(32), primary_key=True),
    sa.Column("record_id", sa.String(255), primary_key=True),
    sa.Column("field", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

write_ledger = sa.Table(
    "write_ledger",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(64), nullable=False, index=True),
    sa.Column("object", sa.String(32), nullable=False),
    sa.Column("record_id", sa.String(255), nullable=False, index=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("values", sa.Text, nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
)


def _v1(conn: Connection) -> None:
    tables = [meta_table, *MIRROR.values(), watermarks, runs, rejects]
    metadata.create_all(conn, tables=tables)


def _v2(conn: Connection) -> None:
    metadata.create_all(conn, tables=[icp_versions, account_scores, tals, tal_members])


def _v3(conn: Connection) -> None:
    metadata.create_all(conn, tables=[connector_state, field_state, write_ledger])


_MIGRATIONS: tuple[Callable[[Connection], None], ...] = (_v1, _v2, _v3)
SCHEMA_VERSION = len(_MIGRATIONS)

_CHUNK = 5_000


@dataclass(frozen=True, slots=True, kw_only=True)
class MirrorResult:
    """What one mirror write changed."""

    inserted: int
    updated: int
    unchanged: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRecord:
    """One entry of the run history."""

    run_id: str
    command: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    summary: dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class IcpVersion:
    """A stored ICP version: its TOML definition, evidence (JSON) and model."""

    seq: int
    version: str
    created_at: datetime
    as_of: datetime
    definition: str
    evidence: list[dict[str, Any]]
    model_summary: dict[str, Any]
    model: bytes | None


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredTal:
    """A stored Target Account List."""

    tal_id: int
    name: str
    version: str
    created_at: datetime
    coverage: dict[str, Any]
    members: pd.DataFrame


class Store:
    """The state store. Open with :meth:`open`; close with :meth:`close` (or ``with``)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str) -> Store:
        """Connect to ``url``, creating or upgrading the schema as needed.

        Raises:
            StateStoreError: If the database cannot be reached, or was written by a newer
                version of icp-sync.
        """
        try:
            engine = sa.create_engine(url, connect_args=_connect_args(url))
        except (SQLAlchemyError, ImportError) as exc:
            raise StateStoreError(f"cannot open the state store: {exc}") from exc
        if engine.dialect.name == "sqlite":
            sa.event.listen(engine, "connect", _sqlite_pragmas)
        store = cls(engine)
        try:
            store._migrate()
        except SQLAlchemyError as exc:
            engine.dispose()
            raise StateStoreError(f"cannot open the state store: {_short(exc)}") from exc
        except StateStoreError:
            engine.dispose()
            raise
        return store

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
            return _current_version(conn)

    def _migrate(self) -> None:
        with self.engine.begin() as conn:
            current = _current_version(conn)
            if current > SCHEMA_VERSION:
                raise StateStoreError(
                    f"the state store has schema version {current}, newer than this "
                    f"icp-sync understands ({SCHEMA_VERSION}); upgrade icp-sync"
                )
            for version in range(current + 1, SCHEMA_VERSION + 1):
                _MIGRATIONS[version - 1](conn)
                _set_meta(conn, "schema_version", str(version))

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise StateStoreError(f"state store write failed: {_short(exc)}") from exc

    def upsert_mirror(self, obj: CrmObject, frame: pd.DataFrame, *, now: datetime) -> MirrorResult:
        """Write canonical rows into the mirror, touching only rows whose content changed."""
        table = MIRROR[obj]
        id_col = ID_COLUMN[obj]
        frame = conform(frame, obj).drop_duplicates(id_col, keep="last")
        if frame.empty:
            return MirrorResult(inserted=0, updated=0, unchanged=0)
        hashes = _row_hashes(frame)
        known_ids, known_hashes = self._hashes(obj)
        position = pd.Index(known_ids).get_indexer(pd.Index(frame[id_col]))
        is_new = position < 0
        changed = ~is_new & (known_hashes[np.maximum(position, 0)] != hashes)
        to_write = is_new | changed
        if to_write.any():
            rows = _to_rows(frame[to_write], hashes[to_write], obj, now)
            with self._tx() as conn:
                statement = _upsert(conn, table, id_col)
                for start in range(0, len(rows), _CHUNK):
                    conn.execute(statement, rows[start : start + _CHUNK])
        return MirrorResult(
            inserted=int(is_new.sum()),
            updated=int(changed.sum()),
            unchanged=int(len(frame) - to_write.sum()),
        )

    def _hashes(self, obj: CrmObject) -> tuple[list[str], np.ndarray]:
        table = MIRROR[obj]
        id_col = table.c[ID_COLUMN[obj]]
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(id_col, table.c.row_hash)).fetchall()
        ids = [row[0] for row in rows]
        hashes = np.fromiter((row[1] for row in rows), dtype=np.int64, count=len(rows))
        return ids, np.append(hashes, np.int64(0))

    def mark_deleted(self, obj: CrmObject, ids: Iterable[str], *, now: datetime) -> int:
        """Flag mirrored records as deleted in the CRM; returns how many changed."""
        table = MIRROR[obj]
        id_col = table.c[ID_COLUMN[obj]]
        wanted = list(ids)
        count = 0
        with self._tx() as conn:
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start : start + _CHUNK]
                result = conn.execute(
                    table.update()
                    .where(id_col.in_(chunk), table.c.is_deleted.is_(False))
                    .values(is_deleted=True, synced_at=_micros(now), row_hash=0)
                )
                count += result.rowcount
        return count

    def mirror_ids(self, obj: CrmObject, *, include_deleted: bool = False) -> set[str]:
        """Ids of mirrored records (live ones unless ``include_deleted``)."""
        table = MIRROR[obj]
        query = sa.select(table.c[ID_COLUMN[obj]])
        if not include_deleted:
            query = query.where(table.c.is_deleted.is_(False))
        with self.engine.connect() as conn:
            return {row[0] for row in conn.execute(query)}

    def load_frame(self, obj: CrmObject, *, include_deleted: bool = False) -> pd.DataFrame:
        """The mirror of ``obj`` as a canonical frame (``attr_`` columns expanded)."""
        table = MIRROR[obj]
        selected = [table.c[name] for name in COLUMNS[obj]] + [table.c.attrs]
        query = sa.select(*selected).order_by(table.c[ID_COLUMN[obj]])
        if not include_deleted:
            query = query.where(table.c.is_deleted.is_(False))
        with self.engine.connect() as conn:
            result = conn.execute(query)
            names = list(result.keys())
            rows = result.fetchall()
        # column-wise construction is several times faster than row tuples for wide frames
        columns = list(zip(*rows, strict=True)) if rows else [()] * len(names)
        frame = pd.DataFrame(
            {
                name: np.asarray(values, dtype=object)
                for name, values in zip(names, columns, strict=True)
            }
        )
        for name, dtype in COLUMNS[obj].items():
            if dtype == DATETIME:
                micros = pd.to_numeric(frame[name], errors="coerce")
                frame[name] = pd.to_datetime(micros, unit="us", utc=True)
        attrs = frame.pop("attrs")
        if attrs.notna().any():
            expanded = pd.DataFrame.from_records(
                [json.loads(a) if isinstance(a, str) else {} for a in attrs]
            )
            for name in expanded.columns:
                frame[name] = expanded[name].to_numpy()
        return conform(frame, obj)

    def mirror_counts(self) -> dict[str, int]:
        """Live mirrored records per object."""
        counts: dict[str, int] = {}
        with self.engine.connect() as conn:
            for obj, table in MIRROR.items():
                query = (
                    sa.select(sa.func.count())
                    .select_from(table)
                    .where(table.c.is_deleted.is_(False))
                )
                counts[str(obj)] = int(conn.execute(query).scalar_one())
        return counts

    def get_watermark(self, connector: str, obj: CrmObject) -> str | None:
        """The stored sync cursor of ``(connector, obj)``, if any."""
        query = sa.select(watermarks.c.value).where(
            watermarks.c.connector == connector, watermarks.c.object == str(obj)
        )
        with self.engine.connect() as conn:
            value = conn.execute(query).scalar_one_or_none()
        return None if value is None else str(value)

    def set_watermark(self, connector: str, obj: CrmObject, value: str, *, now: datetime) -> None:
        """Store the sync cursor of ``(connector, obj)``; call only after the batch is mirrored."""
        row = {"connector": connector, "object": str(obj), "value": value, "updated_at": now}
        with self._tx() as conn:
            conn.execute(
                _upsert(conn, watermarks, "connector", "object"),
                [row],
            )

    def clear_watermarks(self, connector: str) -> None:
        """Forget every cursor of ``connector`` (a full refresh follows)."""
        with self._tx() as conn:
            conn.execute(watermarks.delete().where(watermarks.c.connector == connector))

    def start_run(self, run_id: str, command: str, *, now: datetime) -> None:
        """Record that a run began."""
        with self._tx() as conn:
            conn.execute(
                runs.insert().values(
                    run_id=run_id, command=command, started_at=now, status="running"
                )
            )

    def finish_run(
        self, run_id: str, *, status: str, summary: dict[str, Any], now: datetime
    ) -> None:
        """Record how a run ended, with its JSON summary."""
        with self._tx() as conn:
            conn.execute(
                runs.update()
                .where(runs.c.run_id == run_id)
                .values(finished_at=now, status=status, summary=json.dumps(summary, default=str))
            )

    def recent_runs(self, limit: int = 20) -> list[RunRecord]:
        """The latest runs, newest first."""
        query = sa.select(runs).order_by(runs.c.started_at.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [
                RunRecord(
                    run_id=row.run_id,
                    command=row.command,
                    started_at=_aware(row.started_at),
                    finished_at=_aware(row.finished_at) if row.finished_at else None,
                    status=row.status,
                    summary=json.loads(row.summary) if row.summary else {},
                )
                for row in conn.execute(query)
            ]

    def add_rejects(self, run_id: str, items: Sequence[Reject]) -> None:
        """Keep the records a run rejected, with their reasons."""
        if not items:
            return
        rows = [
            {
                "run_id": run_id,
                "object": str(r.crm_object),
                "record_id": r.record_id,
                "reason": r.reason,
            }
            for r in items
        ]
        with self._tx() as conn:
            for start in range(0, len(rows), _CHUNK):
                conn.execute(rejects.insert(), rows[start : start + _CHUNK])

    def run_rejects(self, run_id: str) -> list[Reject]:
        """The records rejected by one run."""
        query = sa.select(rejects).where(rejects.c.run_id == run_id).order_by(rejects.c.id)
        with self.engine.connect() as conn:
            return [
                Reject(crm_object=CrmObject(row.object), record_id=row.record_id, reason=row.reason)
                for row in conn.execute(query)
            ]

    def save_icp_version(
        self,
        *,
        version: str,
        seq: int,
        as_of: datetime,
        definition: str,
        evidence: list[dict[str, Any]],
        model_summary: dict[str, Any],
        model: bytes | None,
        now: datetime,
    ) -> None:
        """Store a newly derived ICP version."""
        with self._tx() as conn:
            conn.execute(
                icp_versions.insert().values(
                    seq=seq,
                    version=version,
                    created_at=now,
                    as_of=as_of,
                    definition=definition,
                    evidence=json.dumps(evidence, default=_plain),
                    model_summary=json.dumps(model_summary, default=_plain),
                    model=model,
                )
            )

    def next_icp_seq(self) -> int:
        """The sequence number the next derived version gets."""
        with self.engine.connect() as conn:
            current = conn.execute(sa.select(sa.func.max(icp_versions.c.seq))).scalar_one()
        return int(current or 0) + 1

    def icp_version(self, version: str | None = None) -> IcpVersion | None:
        """A stored version by name, or the latest when ``version`` is ``None``."""
        query = sa.select(icp_versions)
        if version is None:
            query = query.order_by(icp_versions.c.seq.desc()).limit(1)
        else:
            query = query.where(icp_versions.c.version == version)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return IcpVersion(
            seq=row.seq,
            version=row.version,
            created_at=_aware(row.created_at),
            as_of=_aware(row.as_of),
            definition=row.definition,
            evidence=json.loads(row.evidence),
            model_summary=json.loads(row.model_summary),
            model=row.model,
        )

    def icp_versions(self) -> list[tuple[str, datetime, datetime]]:
        """(version, created_at, as_of) of every stored version, oldest first."""
        query = sa.select(icp_versions.c.version, icp_versions.c.created_at, icp_versions.c.as_of)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(icp_versions.c.seq)).fetchall()
        return [(r[0], _aware(r[1]), _aware(r[2])) for r in rows]

    def save_scores(self, version: str, frame: pd.DataFrame, *, now: datetime) -> None:
        """Replace the stored scores of ``version`` with ``frame`` (one row per account)."""
        columns = ["account_id", "tier", "rule_tier", "score", "segment", "reasons", "overridden"]
        rows = _records(frame[columns].assign(version=version, scored_at=now))
        with self._tx() as conn:
            conn.execute(account_scores.delete().where(account_scores.c.version == version))
            for start in range(0, len(rows), _CHUNK):
                conn.execute(account_scores.insert(), rows[start : start + _CHUNK])

    def load_scores(self, version: str) -> pd.DataFrame:
        """The stored scores of ``version``."""
        query = sa.select(account_scores).where(account_scores.c.version == version)
        with self.engine.connect() as conn:
            result = conn.execute(query)
            return pd.DataFrame(result.fetchall(), columns=list(result.keys()))

    def save_tal(
        self,
        *,
        name: str,
        version: str,
        members: pd.DataFrame,
        coverage: dict[str, Any],
        now: datetime,
    ) -> int:
        """Store a TAL and its members; returns its id."""
        columns = ["account_id", "rank", "score", "tier", "segment", "reasons"]
        with self._tx() as conn:
            inserted = conn.execute(
                tals.insert().values(
                    name=name,
                    version=version,
                    created_at=now,
                    size=len(members),
                    coverage=json.dumps(coverage, default=_plain),
                )
            ).inserted_primary_key
            if inserted is None:
                raise StateStoreError("the new TAL got no id")
            tal_id = int(inserted[0])
            rows = _records(members[columns].assign(tal_id=tal_id))
            for start in range(0, len(rows), _CHUNK):
                conn.execute(tal_members.insert(), rows[start : start + _CHUNK])
        return tal_id

    def latest_tal(self, version: str | None = None) -> StoredTal | None:
        """The newest TAL (of ``version`` when given)."""
        query = sa.select(tals).order_by(tals.c.tal_id.desc()).limit(1)
        if version is not None:
            query = query.where(tals.c.version == version)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
            if row is None:
                return None
            result = conn.execute(
                sa.select(tal_members)
                .where(tal_members.c.tal_id == row.tal_id)
                .order_by(tal_members.c.rank)
            )
            members = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
        return StoredTal(
            tal_id=row.tal_id,
            name=row.name,
            version=row.version,
            created_at=_aware(row.created_at),
            coverage=json.loads(row.coverage),
            members=members.drop(columns=["tal_id"]),
        )

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
            conn.execute(_upsert(conn, connector_state, "connector"), [row])

    def record_field_values(
        self,
        obj: CrmObject,
        values: dict[str, dict[str, str]],
        *,
        source: str,
        now: datetime,
    ) -> None:
        """Remember what the CRM holds: ``{record_id: {field: canonical text}}``."""
        rows = [
            {
                "object": str(obj),
                "record_id": record_id,
                "field": field,
                "value": value,
                "source": source,
                "updated_at": now,
            }
            for record_id, fields in values.items()
            for field, value in fields.items()
        ]
        if not rows:
            return
        with self._tx() as conn:
            statement = _upsert(conn, field_state, "object", "record_id", "field")
            for start in range(0, len(rows), _CHUNK):
                conn.execute(statement, rows[start : start + _CHUNK])

    def field_values(self, obj: CrmObject) -> pd.DataFrame:
        """What the CRM holds per record (rows) and owned field (columns), as text."""
        query = sa.select(field_state.c.record_id, field_state.c.field, field_state.c.value).where(
            field_state.c.object == str(obj)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).fetchall()
        if not rows:
            return pd.DataFrame()
        long = pd.DataFrame(rows, columns=["record_id", "field", "value"])
        return long.pivot(index="record_id", columns="field", values="value")

    def log_writes(
        self,
        run_id: str,
        obj: CrmObject,
        entries: list[tuple[str, str, dict[str, Any], str]],
        *,
        now: datetime,
    ) -> None:
        """Append to the write ledger: (record_id, status, values, detail) per record."""
        rows = [
            {
                "run_id": run_id,
                "object": str(obj),
                "record_id": record_id,
                "status": status,
                "values": json.dumps(values, default=str, sort_keys=True),
                "detail": detail,
                "at": now,
            }
            for record_id, status, values, detail in entries
        ]
        if not rows:
            return
        with self._tx() as conn:
            for start in range(0, len(rows), _CHUNK):
                conn.execute(write_ledger.insert(), rows[start : start + _CHUNK])

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

    def ledger_counts(self, run_id: str) -> dict[str, int]:
        """Ledger entries of one run, per status."""
        query = (
            sa.select(write_ledger.c.status, sa.func.count())
            .where(write_ledger.c.run_id == run_id)
            .group_by(write_ledger.c.status)
        )
        with self.engine.connect() as conn:
            return {str(status): int(count) for status, count in conn.execute(query)}


class StoredConnectorState:
    """A connector's state kept in the store (implements ``connectors.base.ConnectorState``)."""

    def __init__(self, store: Store, connector: str) -> None:
        self._store = store
        self._connector = connector

    def load(self) -> dict[str, Any]:
        """The stored state."""
        return self._store.load_connector_state(self._connector)

    def save(self, state: dict[str, Any]) -> None:
        """Replace the stored state."""
        self._store.save_connector_state(self._connector, state, now=datetime.now(UTC))


def _connect_args(url: str) -> dict[str, Any]:
    return {"timeout": 30} if url.startswith("sqlite") else {}


def _sqlite_pragmas(dbapi_connection: Any, _: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _current_version(conn: Connection) -> int:
    if not sa.inspect(conn).has_table(meta_table.name):
        return 0
    value = conn.execute(
        sa.select(meta_table.c.value).where(meta_table.c.key == "schema_version")
    ).scalar_one_or_none()
    return int(value) if value is not None else 0


def _set_meta(conn: Connection, key: str, value: str) -> None:
    conn.execute(_upsert(conn, meta_table, "key"), [{"key": key, "value": value}])


def _upsert(conn: Connection, table: sa.Table, *keys: str) -> Any:
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = insert(table)
    updates = {c.name: statement.excluded[c.name] for c in table.columns if c.name not in keys}
    return statement.on_conflict_do_update(index_elements=list(keys), set_=updates)


def _row_hashes(frame: pd.DataFrame) -> np.ndarray:
    hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    # keep hashes in int64 range so both databases store them in a BIGINT; 0 marks deleted rows
    signed = hashed.view(np.int64).copy()
    signed[signed == 0] = 1
    return signed


def _micros(value: datetime) -> int:
    return int(value.timestamp() * 1_000_000)


def _to_rows(
    frame: pd.DataFrame, hashes: np.ndarray, obj: CrmObject, now: datetime
) -> list[dict[str, Any]]:
    out = pd.DataFrame(index=frame.index)
    for name, dtype in COLUMNS[obj].items():
        series = frame[name]
        if dtype == DATETIME:
            micros = series.astype("int64") // 1_000
            out[name] = micros.astype(object).where(series.notna(), None)
        elif dtype == BOOLEAN:
            out[name] = series.astype(bool)
        else:
            out[name] = series.astype(object).where(series.notna(), None)
    extra = attr_columns(frame)
    if extra:
        out["attrs"] = [
            json.dumps({k: _plain(v) for k, v in zip(extra, values, strict=True) if _present(v)})
            for values in frame[extra].itertuples(index=False, name=None)
        ]
    else:
        out["attrs"] = None
    out["row_hash"] = hashes
    out["synced_at"] = _micros(now)
    return _records(out)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    # to_dict already boxes numpy scalars as Python values; keys are column names
    return cast(list[dict[str, Any]], frame.to_dict("records"))


def _present(value: object) -> bool:
    return (
        value is not None
        and not (isinstance(value, float) and np.isnan(value))
        and (value is not pd.NA)
    )


def _plain(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _short(exc: SQLAlchemyError) -> str:
    original = getattr(exc, "orig", None)
    return str(original or exc).splitlines()[0]
