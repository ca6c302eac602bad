"""The delete guard: a sync stops before it marks too much of the mirror deleted."""

from __future__ import annotations

from collections.abc import Iterable

from icp_sync.errors import MassChangeError
from icp_sync.model import CrmObject
from icp_sync.store import Store

__all__ = ["DeleteGuard"]


class DeleteGuard:
    """Stops a sync before it marks more than ``limit`` of an object's mirror deleted."""

    def __init__(self, store: Store, obj: CrmObject, *, limit: float, allow: bool) -> None:
        self.store, self.obj, self.limit, self.allow = store, obj, limit, allow
        self.live: set[str] | None = None
        self.deleting: set[str] = set()

    def check(self, ids: Iterable[str]) -> None:
        """Count ``ids`` as deletions; raise before the share would pass the limit."""
        if self.allow:
            return
        if self.live is None:
            self.live = self.store.mirror.ids(self.obj)
        self.deleting |= self.live.intersection(ids)
        share = len(self.deleting) / len(self.live) if self.live else 0.0
        if share <= self.limit:
            return
        raise MassChangeError(
            f"this sync would mark {len(self.deleting):,} of {len(self.live):,} mirrored "
            f"{self.obj} records deleted ({share:.0%}), above guards.max_delete_share = "
            f"{self.limit:g}; nothing was deleted and nothing written to the CRM. A partial or "
            "header-only export looks like this; if the deletions are real, run "
            "`icp-sync sync --allow-mass-change`"
        )
