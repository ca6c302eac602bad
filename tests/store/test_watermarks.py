"""The watermark repository, on SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

from datetime import datetime

from icp_sync.model import CrmObject
from icp_sync.store import Store


def test_watermarks_are_kept_per_connector_and_object(store: Store, now: datetime) -> None:
    """Cursors are stored, replaced and cleared per connector and object."""
    store.watermarks.set("files", CrmObject.ACCOUNT, "a1", now=now)
    store.watermarks.set("files", CrmObject.ACCOUNT, "a2", now=now)
    store.watermarks.set("salesforce", CrmObject.ACCOUNT, "s1", now=now)

    assert store.watermarks.get("files", CrmObject.ACCOUNT) == "a2"
    assert store.watermarks.get("files", CrmObject.OPPORTUNITY) is None
    store.watermarks.clear("files")
    assert store.watermarks.get("files", CrmObject.ACCOUNT) is None
    assert store.watermarks.get("salesforce", CrmObject.ACCOUNT) == "s1"
