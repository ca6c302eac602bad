"""The activation repository: which ICP version and TAL are live, and the history of changes.

Deriving or importing a version, and building a TAL, only propose; an activation makes one
version (with one TAL) the one a sync writes. Every activation is a new row, so the history
says who made which version live, when, and which version it replaced; the newest row is in
force. Activating an older version again is the rollback.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from icp_sync.store._base import Repository, aware
from icp_sync.store.schema import icp_activations


@dataclass(frozen=True, slots=True, kw_only=True)
class Activation:
    """One activation: ``version`` (with TAL ``tal_id``) went live."""

    activation_id: int
    version: str
    tal_id: int | None
    activated_at: datetime
    activated_by: str
    previous_version: str | None
    note: str


class ActivationRepository(Repository):
    """Activations of ICP versions (table ``icp_activations``)."""

    def activate(
        self, version: str, *, tal_id: int | None, by: str, note: str, now: datetime
    ) -> Activation:
        """Make ``version`` (with TAL ``tal_id``) the live one; returns the new activation."""
        previous = self.current()
        with self._tx() as conn:
            inserted = conn.execute(
                icp_activations.insert().values(
                    version=version,
                    tal_id=tal_id,
                    activated_at=now,
                    activated_by=by,
                    previous_version=previous.version if previous else None,
                    note=note,
                )
            ).inserted_primary_key
        return Activation(
            activation_id=int(inserted[0]) if inserted else 0,
            version=version,
            tal_id=tal_id,
            activated_at=now,
            activated_by=by,
            previous_version=previous.version if previous else None,
            note=note,
        )

    def current(self) -> Activation | None:
        """The activation in force, or ``None`` when no version was ever activated."""
        history = self.history(limit=1)
        return history[0] if history else None

    def history(self, limit: int | None = None) -> list[Activation]:
        """Every activation, newest first."""
        query = sa.select(icp_activations).order_by(icp_activations.c.id.desc())
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [
                Activation(
                    activation_id=row.id,
                    version=row.version,
                    tal_id=row.tal_id,
                    activated_at=aware(row.activated_at),
                    activated_by=row.activated_by,
                    previous_version=row.previous_version,
                    note=row.note,
                )
                for row in conn.execute(query)
            ]
