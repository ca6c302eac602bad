"""The ICP version repository: derived ICP versions, account scores and Target Account Lists."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa

from icp_sync.errors import StateStoreError
from icp_sync.store._base import (
    CHUNK,
    Repository,
    aware,
    execute_chunked,
    execute_frame,
    plain,
    records,
    rows_where_in,
)
from icp_sync.store.schema import account_scores, icp_versions, tal_members, tals


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


class VersionRepository(Repository):
    """ICP versions and what was computed from them (``icp_versions``, ``account_scores``,
    ``tals``, ``tal_members``)."""

    def save(
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
                    evidence=json.dumps(evidence, default=plain),
                    model_summary=json.dumps(model_summary, default=plain),
                    model=model,
                )
            )

    def next_seq(self) -> int:
        """The sequence number the next derived version gets."""
        with self.engine.connect() as conn:
            current = conn.execute(sa.select(sa.func.max(icp_versions.c.seq))).scalar_one()
        return int(current or 0) + 1

    def get(self, version: str | None = None) -> IcpVersion | None:
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
            created_at=aware(row.created_at),
            as_of=aware(row.as_of),
            definition=row.definition,
            evidence=json.loads(row.evidence),
            model_summary=json.loads(row.model_summary),
            model=row.model,
        )

    def history(self) -> list[tuple[str, datetime, datetime]]:
        """(version, created_at, as_of) of every stored version, oldest first."""
        query = sa.select(icp_versions.c.version, icp_versions.c.created_at, icp_versions.c.as_of)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(icp_versions.c.seq)).fetchall()
        return [(r[0], aware(r[1]), aware(r[2])) for r in rows]

    def save_scores(self, version: str, frame: pd.DataFrame, *, now: datetime) -> None:
        """Replace the stored scores of ``version`` with ``frame`` (one row per account)."""
        rows = _score_rows(frame, version, now=now)
        with self._tx() as conn:
            conn.execute(account_scores.delete().where(account_scores.c.version == version))
            execute_frame(conn, account_scores.insert(), rows)

    def update_scores(
        self, version: str, frame: pd.DataFrame, *, removed: Iterable[str], now: datetime
    ) -> None:
        """Replace the stored scores of ``frame``'s accounts and drop those of ``removed``."""
        rows = _score_rows(frame, version, now=now)
        gone = sorted(set(removed) | set(rows["account_id"].astype(str)))
        with self._tx() as conn:
            for start in range(0, len(gone), CHUNK):
                conn.execute(
                    account_scores.delete().where(
                        account_scores.c.version == version,
                        account_scores.c.account_id.in_(gone[start : start + CHUNK]),
                    )
                )
            execute_frame(conn, account_scores.insert(), rows)

    def load_scores(self, version: str, ids: Iterable[str] | None = None) -> pd.DataFrame:
        """The stored scores of ``version`` (of the accounts ``ids`` only, when given)."""
        query = sa.select(account_scores).where(account_scores.c.version == version)
        columns = [c.name for c in account_scores.columns]
        with self.engine.connect() as conn:
            rows = rows_where_in(conn, query, account_scores.c.account_id, ids)
        return _frame(rows, columns)

    def score_tiers(self, version: str) -> dict[str, int]:
        """Stored accounts of ``version`` per tier."""
        query = (
            sa.select(account_scores.c.tier, sa.func.count())
            .where(account_scores.c.version == version)
            .group_by(account_scores.c.tier)
        )
        with self.engine.connect() as conn:
            return {str(tier): int(n) for tier, n in conn.execute(query)}

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
                    coverage=json.dumps(coverage, default=plain),
                )
            ).inserted_primary_key
            if inserted is None:
                raise StateStoreError("the new TAL got no id")
            tal_id = int(inserted[0])
            rows = records(members[columns].assign(tal_id=tal_id))
            execute_chunked(conn, tal_members.insert(), rows)
        return tal_id

    def latest_tal(self, version: str | None = None) -> StoredTal | None:
        """The newest TAL (of ``version`` when given)."""
        query = sa.select(tals).order_by(tals.c.tal_id.desc()).limit(1)
        if version is not None:
            query = query.where(tals.c.version == version)
        return self._tal(query)

    def tal(self, tal_id: int) -> StoredTal | None:
        """The TAL with id ``tal_id``."""
        return self._tal(sa.select(tals).where(tals.c.tal_id == tal_id))

    def _tal(self, query: sa.Select[Any]) -> StoredTal | None:
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
            created_at=aware(row.created_at),
            coverage=json.loads(row.coverage),
            members=members.drop(columns=["tal_id"]),
        )


_SCORE_COLUMNS = ["account_id", "tier", "rule_tier", "score", "segment", "reasons", "overridden"]


def _score_rows(frame: pd.DataFrame, version: str, *, now: datetime) -> pd.DataFrame:
    """The ``account_scores`` rows of ``frame``: plain values, as :func:`records` gives them."""
    rows = frame[_SCORE_COLUMNS].assign(version=version)
    # a datetime cell (not a numpy timestamp column) is what the row dicts carried
    rows["scored_at"] = pd.Series([now] * len(rows), index=rows.index, dtype=object)
    return rows


def _frame(rows: Sequence[Any], columns: list[str]) -> pd.DataFrame:
    """Rows read back as a frame, built column by column (as from the rows, much faster)."""
    if not rows:
        return pd.DataFrame(rows, columns=columns)
    return pd.DataFrame(
        {name: list(values) for name, values in zip(columns, zip(*rows, strict=True), strict=True)},
        columns=columns,
    )
