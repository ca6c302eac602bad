"""The daemon's sync session: a kept connector, one Composite call and no scoring when idle."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from icp_sync.model import CrmObject
from icp_sync.pipeline import SyncResult
from icp_sync.pipeline.session import SyncSession
from tests.conftest import SandboxFactory
from tests.connectors.salesforce_org import count, make_org
from tests.crm_clients import salesforce_client


def test_an_idle_cycle_costs_one_call_and_scores_nothing_until_a_record_changes(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """Once caught up, an unchanged org costs one API call a cycle (Composite: both queries
    and both getDeleted windows) and skips scoring; a user's edit is read, re-scored and
    only that account is written."""
    org = make_org(sandbox_factory, tmp_path)
    org.setup_fields()
    session = SyncSession(org.settings, org.store, connector_factory=org.connector)
    ttl = timedelta(seconds=60)

    def cycle(n: int) -> SyncResult:
        with org.store.lease.hold("sync", ttl=ttl, wait=timedelta(0)) as lease:
            return session.cycle(run_id=f"c{n}", now=datetime.now(UTC), lease=lease)

    try:
        first = cycle(1)
        cycle(2)  # reads its own write-back once
        org.sandbox.org.advance(61)
        org.reset_stats()
        idle = cycle(3)
        stats = org.stats()
        assert stats["calls"] <= 2, stats["by_endpoint"]
        assert count("POST composite", stats) == 1
        assert count("GET getDeleted", stats) == 0
        assert idle.writeback is not None
        assert idle.writeback.get("unchanged") is True
        assert first.records_written > 900

        sf = salesforce_client(org.sandbox)
        target = sf.query("SELECT Id, OwnerId FROM Account LIMIT 1")["records"][0]
        org.sandbox.org.update(
            "Account", target["Id"], {"NumberOfEmployees": 7}, user=target["OwnerId"]
        )
        org.sandbox.org.advance(61)
        org.reset_stats()
        changed = cycle(4)
        assert changed.writeback is not None
        assert not changed.writeback.get("unchanged")
        assert changed.objects[CrmObject.ACCOUNT].updated >= 1
        assert changed.records_written <= 1
        assert org.stats()["calls"] <= 3  # Composite, and at most one write call
    finally:
        session.close()
