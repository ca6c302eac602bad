"""The CRM mirror repository: canonical accounts and opportunities as last read from the CRM."""

from __future__ import annotations

import json
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from icp_sync.model import (
    BOOLEAN,
    COLUMNS,
    DATETIME,
    ID_COLUMN,
    STRING,
    CrmObject,
    attr_columns,
    conform,
)
from icp_sync.store._base import CHUNK, Repository, execute_frame, plain, upsert
from icp_sync.store.schema import MIRROR

_WHOLE_READ = 4
"""A mirror up to this many times a page's size is read whole for the page's hashes."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MirrorResult:
    """What one mirror write changed."""

    inserted: int
    updated: int
    unchanged: int


class MirrorRepository(Repository):
    """Upsert, load and tombstone mirrored CRM records (tables ``mirror_*``)."""

    def upsert(
        self,
        obj: CrmObject,
        frame: pd.DataFrame,
        *,
        now: datetime,
        known: AbstractSet[str] | None = None,
    ) -> MirrorResult:
        """Write canonical rows into the mirror, touching only rows whose content changed.

        ``known``: every id the mirror holds (deleted ones too), when the caller keeps them;
        rows outside it are new without asking the database (a first sync asks nothing).
        """
        table = MIRROR[obj]
        id_col = ID_COLUMN[obj]
        frame = conform(frame, obj).drop_duplicates(id_col, keep="last")
        if frame.empty:
            return MirrorResult(inserted=0, updated=0, unchanged=0)
        hashes = _row_hashes(frame)
        candidates = frame[id_col]
        if known is not None:  # membership per id of the page (isin would convert the set)
            candidates = pd.Series([i for i in candidates.tolist() if i in known], dtype=object)
        known_ids, known_hashes = self._hashes(obj, candidates)
        position = pd.Index(known_ids).get_indexer(pd.Index(frame[id_col]))
        is_new = position < 0
        changed = ~is_new & (known_hashes[np.maximum(position, 0)] != hashes)
        to_write = is_new | changed
        if to_write.any():
            rows = _to_rows(frame[to_write], hashes[to_write], obj, now)
            with self._tx() as conn:
                execute_frame(conn, upsert(conn, table, id_col), rows)
        return MirrorResult(
            inserted=int(is_new.sum()),
            updated=int(changed.sum()),
            unchanged=int(len(frame) - to_write.sum()),
        )

    def _hashes(self, obj: CrmObject, wanted: pd.Series) -> tuple[list[str], np.ndarray]:
        """Ids and content hashes of mirrored rows, at least those among ``wanted``.

        A page costs about its own size, not the mirror's: a mirror up to a few times the
        page is read whole (cheapest), a larger one only for the page's ids.
        """
        table = MIRROR[obj]
        id_col = table.c[ID_COLUMN[obj]]
        unique = pd.unique(wanted.dropna().to_numpy(dtype=object)).tolist()
        if not unique:
            return [], np.zeros(1, dtype=np.int64)
        with self.engine.connect() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            if total <= _WHOLE_READ * len(unique):
                _, rows = _fetch_all(conn, sa.select(id_col, table.c.row_hash))
            else:
                rows = []
                for start in range(0, len(unique), CHUNK):
                    chunk = unique[start : start + CHUNK]
                    query = sa.select(id_col, table.c.row_hash).where(id_col.in_(chunk))
                    rows += [tuple(row) for row in conn.execute(query)]
        ids = [row[0] for row in rows]
        hashes = np.fromiter((row[1] for row in rows), dtype=np.int64, count=len(rows))
        # a spare slot so position 0 exists on an empty mirror; new rows are masked by is_new
        return ids, np.append(hashes, np.int64(0))

    def mark_deleted(self, obj: CrmObject, ids: Iterable[str], *, now: datetime) -> int:
        """Flag mirrored records as deleted in the CRM; returns how many changed."""
        table = MIRROR[obj]
        id_col = table.c[ID_COLUMN[obj]]
        wanted = list(ids)
        count = 0
        with self._tx() as conn:
            for start in range(0, len(wanted), CHUNK):
                chunk = wanted[start : start + CHUNK]
                result = conn.execute(
                    table.update()
                    .where(id_col.in_(chunk), table.c.is_deleted.is_(False))
                    .values(is_deleted=True, synced_at=_micros(now), row_hash=0)
                )
                count += result.rowcount
        return count

    def ids(self, obj: CrmObject, *, include_deleted: bool = False) -> set[str]:
        """Ids of mirrored records (live ones unless ``include_deleted``)."""
        table = MIRROR[obj]
        query = sa.select(table.c[ID_COLUMN[obj]])
        if not include_deleted:
            query = query.where(table.c.is_deleted.is_(False))
        with self.engine.connect() as conn:
            _, rows = _fetch_all(conn, query)
        return {row[0] for row in rows}

    def load(self, obj: CrmObject, *, include_deleted: bool = False) -> pd.DataFrame:
        """The mirror of ``obj`` as a canonical frame (``attr_`` columns expanded)."""
        table = MIRROR[obj]
        selected = [table.c[name] for name in COLUMNS[obj]] + [table.c.attrs]
        query = sa.select(*selected).order_by(table.c[ID_COLUMN[obj]])
        if not include_deleted:
            query = query.where(table.c.is_deleted.is_(False))
        with self.engine.connect() as conn:
            names, rows = _fetch_all(conn, query)
        # one 2-D object array, cut into columns: several times faster than row tuples (or
        # one array per column) for wide frames
        table_values = np.array(rows, dtype=object).reshape(len(rows), len(names))
        attrs = table_values[:, names.index("attrs")]
        # text columns built as text at once: no dtype guessed first and then cast
        frame = pd.DataFrame(
            {
                name: pd.array(table_values[:, i], dtype=STRING)
                if COLUMNS[obj].get(name) == STRING
                else table_values[:, i]
                for i, name in enumerate(names)
                if name != "attrs"
            }
        )
        for name, dtype in COLUMNS[obj].items():
            if dtype == DATETIME:
                micros = pd.to_numeric(frame[name], errors="coerce")
                frame[name] = pd.to_datetime(micros, unit="us", utc=True)
        if any(isinstance(a, str) for a in attrs):
            # one parse of a JSON array of every row instead of one call per row
            texts = [a if isinstance(a, str) else "{}" for a in attrs]
            expanded = pd.DataFrame.from_records(json.loads("[" + ",".join(texts) + "]"))
            for name in expanded.columns:
                frame[name] = expanded[name].to_numpy()
        return conform(frame, obj)

    def counts(self) -> dict[str, int]:
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


def _fetch_all(conn: Connection, query: sa.Select[Any]) -> tuple[list[str], list[Any]]:
    """Column names and rows of ``query``, as the driver's cursor returns them (tuples).

    No result processing: only for columns whose driver values are what the caller wants
    (texts, numbers, integers; flags may come as 0/1 and are cast by the caller). Skipping
    SQLAlchemy's row objects halves the cost of reading the whole mirror.
    """
    compiled = query.compile(dialect=conn.dialect)
    params = compiled.construct_params()
    args = tuple(params[k] for k in compiled.positiontup or ()) if compiled.positional else params
    cursor = conn.connection.cursor()
    try:
        cursor.execute(str(compiled), args)
        names = [str(column[0]) for column in cursor.description]
        return names, list(cursor.fetchall())
    finally:
        cursor.close()


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
) -> pd.DataFrame:
    out: dict[str, object] = {}
    for name, dtype in COLUMNS[obj].items():
        series = frame[name]
        missing = series.isna().to_numpy()
        if dtype == DATETIME:
            values = (series.astype("int64") // 1_000).to_numpy().astype(object)
        elif dtype == BOOLEAN:
            out[name] = series.astype(bool).to_numpy()
            continue
        else:
            values = series.to_numpy(dtype=object)
        if missing.any():
            values = values.copy()
            values[missing] = None
        # explicitly object: inferring a text dtype would turn None back into NaN
        out[name] = pd.Series(values, index=frame.index, dtype=object)
    extra = attr_columns(frame)
    attrs = _attrs_json(frame, extra) if extra else np.full(len(frame), None, dtype=object)
    out["attrs"] = pd.Series(attrs, index=frame.index, dtype=object)
    out["row_hash"] = hashes
    out["synced_at"] = _micros(now)
    return pd.DataFrame(out, index=frame.index)


def _attrs_json(frame: pd.DataFrame, extra: list[str]) -> np.ndarray:
    """``json.dumps`` of each row's present ``attr_`` values (in column order), built from
    ``"key": value`` pieces encoded once per distinct text of a column."""
    body = np.full(len(frame), "", dtype=object)
    for name in extra:
        column = _attr_pieces(frame[name], json.dumps(name) + ": ")
        has = column != ""
        both = has & (body != "")
        body = np.where(both, body + ", " + column, np.where(has, column, body))
    return "{" + body + "}"


def _attr_pieces(series: pd.Series, key: str) -> np.ndarray:
    """``key`` + the JSON of each present value of ``series``; ``""`` where it is missing."""
    if isinstance(series.dtype, pd.StringDtype):
        codes, distinct = pd.factorize(series, use_na_sentinel=True)
        pieces = [key + json.dumps(str(text)) for text in distinct] + [""]
        return np.array(pieces, dtype=object)[codes]
    values = series.to_numpy(dtype=object)
    return np.fromiter(
        (key + json.dumps(plain(v)) if _present(v) else "" for v in values),
        dtype=object,
        count=len(values),
    )


def _present(value: object) -> bool:
    return (
        value is not None
        and not (isinstance(value, float) and np.isnan(value))
        and (value is not pd.NA)
    )
