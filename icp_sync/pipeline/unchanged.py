"""The no-change cycle: when nothing moved, nothing is loaded, scored or planned.

A write-back that applied its whole plan leaves a mark: the ICP in force (activation,
version, TAL), a digest of the settings and the fields it could write. The next cycle that
reads no change from the CRM and finds the same mark knows the plan would be empty, so it
skips loading the mirror, scoring every account and planning (26 s at 100,000 accounts)
instead of proving it again. Anything that could change the plan clears or invalidates the
mark: a record read, an activation, a config change, a new CRM field, a record refused or
deferred (retried on its own schedule), a dry run, a full cycle.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from connectors.base import ApiUsage
from icp_sync.config import Settings
from icp_sync.store import Store, StoredConnectorState

__all__ = ["PENDING", "ScoringMark", "usage_since", "with_deal_writes"]

PENDING = ("rejected", "deferred", "skipped_known_rejects", "retried_rejects")


class ScoringMark:
    """The mark a complete write-back leaves for connector ``connector`` (kept in the store)."""

    def __init__(self, store: Store, connector: str) -> None:
        self._store = store
        self._state = StoredConnectorState(store.ledger, f"{connector}:scoring")

    def _fingerprint(self, settings: Settings, writable: list[str]) -> dict[str, Any]:
        current = self._store.activations.current()
        digest = hashlib.sha256(
            settings.model_dump_json(exclude={"logging", "daemon"}).encode()
        ).hexdigest()
        return {
            "activation": current.activation_id if current else None,
            "version": current.version if current else None,
            "tal_id": current.tal_id if current else None,
            "settings": digest,
            "writable": writable,
        }

    def still_valid(self, settings: Settings, *, writable: list[str]) -> bool:
        """Would planning now give the empty plan the last complete write-back left?

        ``writable``: the owned fields the CRM has now (a field created since is written).
        """
        held = self._state.load()
        if not held.get("complete"):
            return False
        return bool(held.get("fingerprint") == self._fingerprint(settings, writable))

    def remember(
        self,
        settings: Settings,
        writeback: dict[str, Any],
        *,
        writable: list[str],
        now: datetime,
    ) -> None:
        """Leave the mark when ``writeback`` applied a complete plan (else clear it)."""
        complete = (
            "skipped" not in writeback
            and not writeback.get("dry_run", True)
            and "guard" not in writeback
            and not any(writeback.get(k) for k in PENDING)
        )
        self._state.save(
            {
                "complete": complete,
                "fingerprint": self._fingerprint(settings, writable),
                "version": writeback.get("version"),
                "as_of": writeback.get("as_of"),
                "tal_id": writeback.get("tal_id"),
                "tiers": writeback.get("tiers"),
                "at": now.isoformat(),
            }
        )

    def clear(self) -> None:
        """Forget the mark (something changed: the next write-back plans in full)."""
        if self._state.load():
            self._state.save({})

    def skipped(self) -> dict[str, Any]:
        """The write-back summary of a cycle that had nothing to do."""
        held = self._state.load()
        return {
            "version": held.get("version"),
            "as_of": held.get("as_of"),
            "tal_id": held.get("tal_id"),
            "tiers": held.get("tiers"),
            "unchanged": True,
            "plan": {"records": 0, "field_changes": 0, "by_field": {}, "tier_moves": {}},
            "dry_run": False,
            "reason": "no change in the CRM and the same ICP in force since the last "
            f"complete write-back ({held.get('at')}): nothing to score or write",
            "records_written": 0,
            "rejected": 0,
            "deferred": 0,
        }


def usage_since(before: ApiUsage, after: ApiUsage) -> ApiUsage:
    """The calls made between two readings of a connector's (cumulative) usage."""
    by_endpoint = {
        name: calls - before.by_endpoint.get(name, 0)
        for name, calls in after.by_endpoint.items()
        if calls - before.by_endpoint.get(name, 0)
    }
    return ApiUsage(
        calls=after.calls - before.calls,
        by_endpoint=by_endpoint,
        limit=after.limit,
        remaining=after.remaining,
    )


def with_deal_writes(writeback: dict[str, Any], monitored: dict[str, Any] | None) -> dict[str, Any]:
    """The write-back summary with the monitor's pending deal writes folded in (no mark)."""
    deals = (monitored or {}).get("writes") or {}
    return {**writeback, **{k: writeback.get(k) or deals[k] for k in PENDING if k in deals}}
