"""What getDeleted and purge see: hard deletes, the recycle bin and the retention window."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from icp_sync.sandbox.salesforce.schema import RecordError

if TYPE_CHECKING:
    from icp_sync.sandbox.salesforce.org import SObject

__all__ = ["Replication"]


class Replication:
    """The replication side of an org (mixed into :class:`SalesforceOrg`)."""

    lock: threading.RLock
    objects: dict[str, SObject]
    retention_days: float
    replication_lag_ms: int = 0
    """How far getDeleted's ``latestDateCovered`` trails the clock: Salesforce's replication
    catches up with deletes asynchronously, so a window may be covered only in part."""

    def canonical_name(self, sobject: str) -> str:
        """The object's API name as the org spells it (the org implements it)."""
        raise NotImplementedError

    def now_ms(self) -> int:
        """The org's clock in epoch milliseconds (the org implements it)."""
        raise NotImplementedError

    def hard_delete(self, sobject: str, record_id: str) -> None:
        """Delete a record for good: it leaves queryAll at once (logged for getDeleted).

        Raises:
            RecordError: ``NOT_FOUND``.
        """
        name = self.canonical_name(sobject)
        with self.lock:
            obj = self.objects[name]
            record = obj.records.pop(record_id, None)
            if record is None:
                raise RecordError("NOT_FOUND", "The requested resource does not exist")
            if not record["IsDeleted"]:
                obj.deleted.append((record_id, self.now_ms()))

    def purge(self, sobject: str) -> int:
        """Empty the recycle bin: deleted records leave queryAll; returns how many."""
        name = self.canonical_name(sobject)
        with self.lock:
            records = self.objects[name].records
            gone = [i for i, r in records.items() if r["IsDeleted"]]
            for record_id in gone:
                del records[record_id]
            return len(gone)

    def covered_ms(self, end_ms: int) -> int:
        """The latest moment a getDeleted window ending at ``end_ms`` covers."""
        return min(end_ms, self.now_ms() - self.replication_lag_ms)

    def earliest_deleted_ms(self) -> int:
        """The oldest moment getDeleted still covers (the replication retention window)."""
        return self.now_ms() - int(self.retention_days * 86_400_000)

    def deleted_between(self, sobject: str, start_ms: int, end_ms: int) -> list[tuple[str, int]]:
        """(id, deleted at) of records deleted in the window, within the retention window."""
        name = self.canonical_name(sobject)
        earliest = self.earliest_deleted_ms()
        with self.lock:
            return [
                (i, t)
                for i, t in self.objects[name].deleted
                if max(start_ms, earliest) <= t <= end_ms
            ]

    def updated_between(self, sobject: str, start_ms: int, end_ms: int) -> list[str]:
        """Ids of live records modified in the window."""
        name = self.canonical_name(sobject)
        with self.lock:
            return [
                r["Id"]
                for r in self.objects[name].records.values()
                if not r["IsDeleted"] and start_ms <= r["SystemModstamp"] <= end_ms
            ]
