"""The commitment repository: annual ICP commitments, immutable, with their history.

A commitment is only ever added: this repository has no update and no delete, and the
database refuses both (triggers created by the schema step). Each row carries the full
content as canonical JSON and is named by its content hash; reading a row whose content no
longer hashes to its name (altered behind the database's back) raises
:class:`~icp_sync.errors.StateStoreError` instead of returning a commitment nobody agreed to.
A new commitment for a period supersedes the one in force (it names its hash); both stay.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from icp_sync.compliance import Commitment
from icp_sync.errors import StateStoreError
from icp_sync.store._base import Repository, aware
from icp_sync.store.schema import commitments

__all__ = ["CommitmentRepository"]


class CommitmentRepository(Repository):
    """Annual ICP commitments (table ``commitments``)."""

    def add(self, commitment: Commitment) -> Commitment:
        """Store a new commitment; returns it. Adding the same one twice stores it once.

        Raises:
            StateStoreError: If its content does not match its hash, or it supersedes a
                commitment that is not stored.
        """
        if not commitment.intact:
            raise StateStoreError("refusing a commitment whose content does not match its hash")
        with self._tx() as conn:
            existing = conn.execute(
                sa.select(commitments.c.seq).where(
                    commitments.c.content_hash == commitment.content_hash
                )
            ).first()
            if existing is not None:
                return commitment
            if commitment.supersedes is not None:
                known = conn.execute(
                    sa.select(commitments.c.seq).where(
                        commitments.c.content_hash == commitment.supersedes
                    )
                ).first()
                if known is None:
                    raise StateStoreError(
                        f"commitment supersedes {commitment.supersedes[:12]}, which is not stored"
                    )
            conn.execute(
                commitments.insert().values(
                    content_hash=commitment.content_hash,
                    period=commitment.period,
                    icp_version=commitment.icp_version,
                    supersedes=commitment.supersedes,
                    created_at=commitment.created_at,
                    body=json.dumps(_body(commitment), sort_keys=True),
                )
            )
        return commitment

    def get(self, content_hash: str) -> Commitment | None:
        """The commitment named ``content_hash`` (a unique prefix of 8+ characters will do)."""
        column = commitments.c.content_hash
        query = sa.select(commitments).order_by(commitments.c.seq)
        if len(content_hash) < 64:
            if len(content_hash) < 8:
                return None
            query = query.where(column.like(f"{content_hash}%"))
        else:
            query = query.where(column == content_hash)
        found = self._read(query)
        return found[0] if len(found) == 1 else None

    def history(self, period: str | None = None) -> list[Commitment]:
        """Every commitment (of ``period`` when given), oldest first, superseded ones too."""
        query = sa.select(commitments).order_by(commitments.c.seq)
        if period is not None:
            query = query.where(commitments.c.period == period.strip())
        return self._read(query)

    def active(
        self, period: str | None = None, *, now: datetime | None = None
    ) -> Commitment | None:
        """The commitment in force: the newest one of the period that nothing supersedes.

        With ``period`` ``None``: the one whose period covers ``now`` (default: the current
        time), else the newest commitment of any period.
        """
        everything = self.history()
        superseded = {c.supersedes for c in everything if c.supersedes}
        live = [c for c in everything if c.content_hash not in superseded]
        if period is not None:
            live = [c for c in live if c.period == period.strip()]
            return live[-1] if live else None
        when = now or datetime.now(UTC)
        covering = [c for c in live if c.covers(when)]
        if covering:
            return covering[-1]
        return live[-1] if live else None

    def _read(self, query: sa.Select[Any]) -> list[Commitment]:
        with self.engine.connect() as conn:
            rows = conn.execute(query).fetchall()
        return [_commitment(row) for row in rows]


def _body(commitment: Commitment) -> dict[str, Any]:
    return {
        "period": commitment.period,
        "icp_version": commitment.icp_version,
        "definition": commitment.definition,
        "tal_name": commitment.tal_name,
        "tal_account_ids": list(commitment.tal_account_ids),
        "target_green_share": commitment.target_green_share,
        "targets": dict(commitment.targets),
        "signatories": list(commitment.signatories),
        "created_at": commitment.created_at.astimezone(UTC).isoformat(timespec="microseconds"),
        "created_by": commitment.created_by,
        "supersedes": commitment.supersedes,
    }


def _commitment(row: Any) -> Commitment:
    try:
        body = json.loads(row.body)
        stored = Commitment(
            period=str(body["period"]),
            icp_version=str(body["icp_version"]),
            definition=str(body["definition"]),
            tal_name=str(body["tal_name"]),
            tal_account_ids=tuple(str(a) for a in body["tal_account_ids"]),
            target_green_share=body["target_green_share"],
            targets={str(k): float(v) for k, v in body["targets"].items()},
            signatories=tuple(str(s) for s in body["signatories"]),
            created_at=datetime.fromisoformat(body["created_at"]),
            created_by=str(body["created_by"]),
            supersedes=body["supersedes"],
            content_hash=str(row.content_hash),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise StateStoreError(
            f"commitment {str(row.content_hash)[:12]} is unreadable ({exc}): the store was altered"
        ) from None
    mirrored = (row.period, row.icp_version, row.supersedes, aware(row.created_at))
    expected = (stored.period, stored.icp_version, stored.supersedes, stored.created_at)
    if not stored.intact or mirrored != expected:
        raise StateStoreError(
            f"commitment {stored.content_hash[:12]} does not match its content hash: it was "
            "altered in the store after it was recorded"
        )
    return stored
