"""The violation repository: frozen deal tiers and out-of-ICP deals, with their alerts.

A violation is keyed by a stable key (opportunity and rule), so a deal flagged again in a
later cycle, or after a restart, is the same violation, never a new one. The alerts of a new
violation are put in the outbox (:mod:`~icp_sync.store.outbox`) in the same transaction
that records it: either both are stored or neither, and the outbox's unique delivery key
keeps a second recorder from enqueueing them twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from icp_sync.store._base import Repository, aware, execute_chunked, upsert
from icp_sync.store.outbox import Alert, enqueue
from icp_sync.store.schema import deal_tiers, violations

__all__ = ["FrozenTier", "Violation", "ViolationRepository"]


@dataclass(frozen=True, slots=True, kw_only=True)
class FrozenTier:
    """The tier of a deal's account when the deal was first seen."""

    opportunity_id: str
    account_id: str | None
    tier: str
    icp_version: str
    frozen_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Violation:
    """One out-of-ICP deal.

    Attributes:
        violation_key: Stable key (``<opportunity_id>:<rule>``).
        opportunity_id: The deal.
        account_id: Its account.
        rule: The rule broken (``red_account``, ``yellow_not_inbound``, ...).
        reason: Why, in a line.
        tier_at_creation: The frozen tier the deal was judged by.
        status: ``out_of_icp``, ``waived`` or ``resolved``.
        first_seen_at: When it was first flagged.
        resolved_at: When it was waived or resolved (``None`` while open).
        resolution: ``waived``, ``closed_won``, ``closed_lost``, ``deleted`` or ``compliant``.
        commitment_hash: The commitment in force when it was first flagged.
        details: Deal name, amount, owner and the like, for alerts and reports.
    """

    violation_key: str
    opportunity_id: str
    account_id: str | None
    rule: str
    reason: str
    tier_at_creation: str | None
    status: str
    first_seen_at: datetime
    resolved_at: datetime | None = None
    resolution: str | None = None
    commitment_hash: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (the ``monitor --json`` violation item)."""
        return {
            "opportunity_id": self.opportunity_id,
            "account_id": self.account_id,
            "rule": self.rule,
            "tier_at_creation": self.tier_at_creation,
            "status": self.status,
            "first_seen_at": self.first_seen_at.isoformat(),
            "resolved_at": self.resolved_at.isoformat() if self.resolved_at else None,
            "resolution": self.resolution,
            "reason": self.reason,
            "commitment_hash": self.commitment_hash,
        }


class ViolationRepository(Repository):
    """Frozen deal tiers and violations (tables ``deal_tiers``, ``violations``)."""

    def frozen_tiers(self) -> dict[str, FrozenTier]:
        """Every frozen tier by opportunity id."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(deal_tiers)).fetchall()
        return {
            row.opportunity_id: FrozenTier(
                opportunity_id=row.opportunity_id,
                account_id=row.account_id,
                tier=row.tier,
                icp_version=row.icp_version,
                frozen_at=aware(row.frozen_at),
            )
            for row in rows
        }

    def freeze(self, tiers: Iterable[FrozenTier]) -> int:
        """Store the tiers of deals that have none yet; an existing one never changes."""
        rows = [
            {
                "opportunity_id": t.opportunity_id,
                "account_id": t.account_id,
                "tier": t.tier,
                "icp_version": t.icp_version,
                "frozen_at": t.frozen_at,
            }
            for t in tiers
        ]
        if not rows:
            return 0
        with self._tx() as conn:
            known = {r[0] for r in conn.execute(sa.select(deal_tiers.c.opportunity_id))}
            fresh = [r for r in rows if r["opportunity_id"] not in known]
            execute_chunked(conn, deal_tiers.insert(), fresh)
        return len(fresh)

    def all(self, status: str | None = None) -> list[Violation]:
        """Every violation (with ``status`` when given), oldest first."""
        query = sa.select(violations).order_by(
            violations.c.first_seen_at, violations.c.violation_key
        )
        if status is not None:
            query = query.where(violations.c.status == status)
        with self.engine.connect() as conn:
            return [_violation(row) for row in conn.execute(query)]

    def save(self, items: Sequence[Violation], *, alerts: Sequence[Alert], now: datetime) -> None:
        """Insert or update ``items`` and enqueue ``alerts``, in one transaction."""
        if not items and not alerts:
            return
        rows = [
            {
                "violation_key": v.violation_key,
                "opportunity_id": v.opportunity_id,
                "account_id": v.account_id,
                "rule": v.rule,
                "reason": v.reason,
                "tier_at_creation": v.tier_at_creation,
                "status": v.status,
                "first_seen_at": v.first_seen_at,
                "resolved_at": v.resolved_at,
                "resolution": v.resolution,
                "commitment_hash": v.commitment_hash,
                "details": json.dumps(v.details, default=str, sort_keys=True),
                "updated_at": now,
            }
            for v in items
        ]
        with self._tx() as conn:
            if rows:
                statement = upsert(conn, violations, "violation_key")
                execute_chunked(conn, statement, rows)
            enqueue(conn, alerts, now=now)


def _violation(row: Any) -> Violation:
    return Violation(
        violation_key=row.violation_key,
        opportunity_id=row.opportunity_id,
        account_id=row.account_id,
        rule=row.rule,
        reason=row.reason,
        tier_at_creation=row.tier_at_creation,
        status=row.status,
        first_seen_at=aware(row.first_seen_at),
        resolved_at=aware(row.resolved_at) if row.resolved_at else None,
        resolution=row.resolution,
        commitment_hash=row.commitment_hash,
        details=json.loads(row.details),
    )
