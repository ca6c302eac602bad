"""The run repository: the history of command runs and the records each run rejected.

A run killed mid-way (SIGKILL, power loss) cannot record its own end. Each run therefore
records the host and process id that own it; when a new run starts, runs still marked
``running`` whose process is gone from this host are marked ``abandoned``, with the time that
was detected. A run owned by another host is left as it is (its process cannot be checked
from here), as is a run whose process is alive: a live run is never marked.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from icp_sync.model import CrmObject, Reject
from icp_sync.store import schema
from icp_sync.store._base import Repository, aware, execute_chunked, process_alive


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

    def start(
        self,
        run_id: str,
        command: str,
        *,
        now: datetime,
        host: str | None = None,
        pid: int | None = None,
        alive: Callable[[int], bool] | None = None,
    ) -> list[RunRecord]:
        """Record that a run began (owned by ``host``/``pid``, this process by default).

        Runs left ``running`` by a process of this host that no longer exists are marked
        ``abandoned`` first; they are returned.
        """
        host = host or socket.gethostname()
        abandoned = self.mark_abandoned(now=now, host=host, alive=alive or process_alive)
        with self._tx() as conn:
            conn.execute(
                schema.runs.insert().values(
                    run_id=run_id, command=command, started_at=now, status="running"
                )
            )
            conn.execute(
                schema.run_owners.insert().values(
                    run_id=run_id, host=host, pid=os.getpid() if pid is None else pid
                )
            )
        return abandoned

    def mark_abandoned(
        self, *, now: datetime, host: str, alive: Callable[[int], bool]
    ) -> list[RunRecord]:
        """Mark ``abandoned`` the running runs of ``host`` whose process is gone."""
        runs, owners = schema.runs, schema.run_owners
        query = (
            sa.select(runs, owners.c.pid)
            .join(owners, owners.c.run_id == runs.c.run_id)
            .where(runs.c.status == "running", owners.c.host == host)
        )
        with self.engine.connect() as conn:
            gone = [row for row in conn.execute(query) if not alive(row.pid)]
        if not gone:
            return []
        marked = []
        with self._tx() as conn:
            for row in gone:
                summary = {
                    "abandoned": {
                        "detected_at": now.isoformat(),
                        "reason": f"process {row.pid} on {host} ended without finishing the run",
                    }
                }
                conn.execute(
                    runs.update()
                    .where(runs.c.run_id == row.run_id, runs.c.status == "running")
                    .values(status="abandoned", finished_at=now, summary=json.dumps(summary))
                )
                marked.append(
                    RunRecord(
                        run_id=row.run_id,
                        command=row.command,
                        started_at=aware(row.started_at),
                        finished_at=now,
                        status="abandoned",
                        summary=summary,
                    )
                )
        return marked

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
