"""The alert outbox: alerts waiting to be delivered, retried with backoff until they are.

An alert is enqueued in the transaction that records what it is about, under a unique
delivery key (channel and event), so it is stored exactly once. A sender *claims* a due
alert (a conditional update: of two processes only one wins), sends it, and marks it
delivered; a failure schedules the next try. An alert is never dropped: only delivery
removes it from the due list. A sender killed between sending and marking re-sends after
the claim expires, with the same delivery key, which the receiver can use to drop the
repeat (the webhook sends it as ``X-ICP-Sync-Delivery``).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from icp_sync.store._base import Repository, aware
from icp_sync.store.schema import alert_outbox

__all__ = ["Alert", "OutboxItem", "OutboxRepository", "enqueue"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Alert:
    """An alert to enqueue: where it goes, its unique delivery key and its content."""

    delivery_key: str
    channel: str
    kind: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboxItem:
    """An alert in the outbox."""

    item_id: int
    delivery_key: str
    channel: str
    kind: str
    payload: dict[str, Any]
    created_at: datetime
    attempts: int
    next_attempt_at: datetime
    delivered_at: datetime | None
    last_error: str | None


def enqueue(conn: Connection, alerts: Sequence[Alert], *, now: datetime) -> None:
    """Insert ``alerts`` on ``conn`` (inside the caller's transaction); known keys are skipped."""
    if not alerts:
        return
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = insert(alert_outbox).on_conflict_do_nothing(index_elements=["delivery_key"])
    conn.execute(
        statement,
        [
            {
                "delivery_key": a.delivery_key,
                "channel": a.channel,
                "kind": a.kind,
                "payload": json.dumps(a.payload, default=str, sort_keys=True),
                "created_at": now,
                "attempts": 0,
                "next_attempt_at": now,
                "delivered_at": None,
                "last_error": None,
            }
            for a in alerts
        ],
    )


class OutboxRepository(Repository):
    """Alerts to deliver and delivered (table ``alert_outbox``)."""

    def add(self, alerts: Sequence[Alert], *, now: datetime) -> None:
        """Enqueue ``alerts`` on their own (a digest); known delivery keys are skipped."""
        with self._tx() as conn:
            enqueue(conn, alerts, now=now)

    def due(
        self, now: datetime, *, limit: int = 100, channels: Collection[str] | None = None
    ) -> list[OutboxItem]:
        """Undelivered alerts whose next try is due (of ``channels`` when given), oldest first."""
        query = (
            sa.select(alert_outbox)
            .where(alert_outbox.c.delivered_at.is_(None), alert_outbox.c.next_attempt_at <= now)
            .order_by(alert_outbox.c.id)
            .limit(limit)
        )
        if channels is not None:
            query = query.where(alert_outbox.c.channel.in_(list(channels)))
        with self.engine.connect() as conn:
            return [_item(row) for row in conn.execute(query)]

    def claim(self, item: OutboxItem, *, until: datetime) -> bool:
        """Take ``item`` for sending until ``until``; ``False`` when another sender has it."""
        table = alert_outbox
        with self._tx() as conn:
            claimed = conn.execute(
                table.update()
                .where(
                    table.c.id == item.item_id,
                    table.c.delivered_at.is_(None),
                    table.c.next_attempt_at == item.next_attempt_at,
                )
                .values(next_attempt_at=until)
            ).rowcount
        return claimed == 1

    def delivered(self, item: OutboxItem, *, now: datetime) -> None:
        """Mark ``item`` delivered (it is never sent again)."""
        with self._tx() as conn:
            conn.execute(
                alert_outbox.update()
                .where(alert_outbox.c.id == item.item_id)
                .values(delivered_at=now, attempts=item.attempts + 1, last_error=None)
            )

    def failed(self, item: OutboxItem, *, error: str, retry_at: datetime) -> None:
        """Record a failed try and when to try again."""
        with self._tx() as conn:
            conn.execute(
                alert_outbox.update()
                .where(alert_outbox.c.id == item.item_id, alert_outbox.c.delivered_at.is_(None))
                .values(
                    attempts=item.attempts + 1, last_error=error[:1000], next_attempt_at=retry_at
                )
            )

    def items(self, *, channel: str | None = None) -> list[OutboxItem]:
        """Every alert, delivered or not, oldest first."""
        query = sa.select(alert_outbox).order_by(alert_outbox.c.id)
        if channel is not None:
            query = query.where(alert_outbox.c.channel == channel)
        with self.engine.connect() as conn:
            return [_item(row) for row in conn.execute(query)]

    def pending(self) -> int:
        """How many alerts are not delivered yet."""
        query = sa.select(sa.func.count()).where(alert_outbox.c.delivered_at.is_(None))
        with self.engine.connect() as conn:
            return int(conn.execute(query.select_from(alert_outbox)).scalar_one())


def _item(row: Any) -> OutboxItem:
    return OutboxItem(
        item_id=row.id,
        delivery_key=row.delivery_key,
        channel=row.channel,
        kind=row.kind,
        payload=json.loads(row.payload),
        created_at=aware(row.created_at),
        attempts=row.attempts,
        next_attempt_at=aware(row.next_attempt_at),
        delivered_at=aware(row.delivered_at) if row.delivered_at else None,
        last_error=row.last_error,
    )
