"""The run repository: the history of command runs and the records each run rejected."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from icp_sync.model import CrmObject, Reject
from icp_sync.store import schema
from icp_sync.store._base import Repository, aware, execute_chunked


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRecord:
    """One entry of the run history."""

    run_id: str
    command: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    summary: dict[str, Any]


class RunRepository(Repository):
    """Start, finish and list runs; keep their rejects (tables ``runs``, ``rejects``)."""

    def start(self, run_id: str, command: str, *, now: datetime) -> None:
        """Record that a run began."""
        with self._tx() as conn:
            conn.execute(
                schema.runs.insert().values(
                    run_id=run_id, command=command, started_at=now, status="running"
                )
            )

    def finish(self, run_id: str, *, status: str, summary: dict[str, Any], now: datetime) -> None:
        """Record how a run ended, with its JSON summary."""
        with self._tx() as conn:
            conn.execute(
                schema.runs.update()
                .where(schema.runs.c.run_id == run_id)
                .values(finished_at=now, status=status, summary=json.dumps(summary, default=str))
            )

    def recent(self, limit: int = 20) -> list[RunRecord]:
        """The latest runs, newest first."""
        query = sa.select(schema.runs).order_by(schema.runs.c.started_at.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [
                RunRecord(
                    run_id=row.run_id,
                    command=row.command,
                    started_at=aware(row.started_at),
                    finished_at=aware(row.finished_at) if row.finished_at else None,
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
            execute_chunked(conn, schema.rejects.insert(), rows)

    def rejects(self, run_id: str) -> list[Reject]:
        """The records rejected by one run."""
        table = schema.rejects
        query = sa.select(table).where(table.c.run_id == run_id).order_by(table.c.id)
        with self.engine.connect() as conn:
            return [
                Reject(crm_object=CrmObject(row.object), record_id=row.record_id, reason=row.reason)
                for row in conn.execute(query)
            ]
