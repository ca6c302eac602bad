"""The sync watermark repository: each connector's incremental cursor per CRM object."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from icp_sync.model import CrmObject
from icp_sync.store._base import Repository, upsert
from icp_sync.store.schema import watermarks


class WatermarkRepository(Repository):
    """Get, set and clear sync cursors (table ``sync_watermarks``)."""

    def get(self, connector: str, obj: CrmObject) -> str | None:
        """The stored sync cursor of ``(connector, obj)``, if any."""
        query = sa.select(watermarks.c.value).where(
            watermarks.c.connector == connector, watermarks.c.object == str(obj)
        )
        with self.engine.connect() as conn:
            value = conn.execute(query).scalar_one_or_none()
        return None if value is None else str(value)

    def set(self, connector: str, obj: CrmObject, value: str, *, now: datetime) -> None:
        """Store the sync cursor of ``(connector, obj)``; call only after the batch is mirrored."""
        row = {"connector": connector, "object": str(obj), "value": value, "updated_at": now}
        with self._tx() as conn:
            conn.execute(upsert(conn, watermarks, "connector", "object"), [row])

    def clear(self, connector: str) -> None:
        """Forget every cursor of ``connector`` (a full refresh follows)."""
        with self._tx() as conn:
            conn.execute(watermarks.delete().where(watermarks.c.connector == connector))
