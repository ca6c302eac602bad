"""The CRM mirror repository: canonical accounts and opportunities as last read from the CRM."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
import sqlalchemy as sa

from icp_sync.model import BOOLEAN, COLUMNS, DATETIME, ID_COLUMN, CrmObject, attr_columns, conform
from icp_sync.store._base import CHUNK, Repository, execute_frame, plain, upsert
from icp_sync.store.schema import MIRROR


@dataclass(frozen=True, slots=True, kw_only=True)
class MirrorResult:
    """What one mirror write changed."""

    inserted: int
    updated: int
    unchanged: int


class MirrorRepository(Repository):
    """Upsert, load and tombstone mirrored CRM records (tables ``mirror_*``)."""

    def upsert(self, obj: CrmObject, frame: pd.DataFrame, *, now: datetime) -> MirrorResult:
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
                execute_frame(conn, upsert(conn, table, id_col), rows)
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
            return {row[0] for row in conn.execute(query)}

    def load(self, obj: CrmObject, *, include_deleted: bool = False) -> pd.DataFrame:
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
            json.dumps({k: plain(v) for k, v in zip(extra, values, strict=True) if _present(v)})
            for values in frame[extra].itertuples(index=False, name=None)
        ]
    else:
        out["attrs"] = None
    out["row_hash"] = hashes
    out["synced_at"] = _micros(now)
    return out


def _present(value: object) -> bool:
    return (
        value is not None
        and not (isinstance(value, float) and np.isnan(value))
        and (value is not pd.NA)
    )
