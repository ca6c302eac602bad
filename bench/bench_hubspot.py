"""HubSpot at scale: an incremental cycle over N companies changed in one window (real cap).

Against the HubSpot emulator with its real 10,000-result search cap: a full first cycle
(list paging), then every live company is modified (one window), then an incremental cycle
must read each of them exactly once through the search API (re-anchoring past the cap).
Then the write-back costs: setup-fields, a cycle writing every company (100 a call), and a
cycle with no change. Every figure is the sandbox's own accounting.
``ICP_SYNC_BENCH_HUBSPOT_COMPANIES`` sets N (default 25000).
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from connectors.hubspot.connector import HubSpotConnector
from icp_sync import log
from icp_sync.config import load_settings
from icp_sync.model import CrmObject
from icp_sync.pipeline import sync
from icp_sync.sandbox.service import Sandbox, SandboxSettings
from icp_sync.store import Store, StoredConnectorState


def _stats(sandbox: Sandbox) -> dict[str, Any]:
    return sandbox.hubspot_stats.snapshot()


def _endpoint(stats: dict[str, Any], name: str) -> dict[str, int]:
    found: dict[str, int] = stats["by_endpoint"].get(
        name, {"calls": 0, "records_read": 0, "records_written": 0}
    )
    return found


def main() -> None:
    """Print the figures."""
    log.configure(level="warning")
    companies = int(os.environ.get("ICP_SYNC_BENCH_HUBSPOT_COMPANIES", "25000"))
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        started = time.perf_counter()
        sandbox = Sandbox(SandboxSettings(directory=tmp / "sandbox", accounts=companies)).start()
        print(f"sandbox with {companies:,} accounts ready in {time.perf_counter() - started:.1f} s")
        try:
            _run(sandbox, tmp)
        finally:
            sandbox.stop()


def _cycle(settings: Any, store: Store, label: str, sandbox: Sandbox, **kwargs: Any) -> Any:
    sandbox.hubspot_stats.reset()
    connector = HubSpotConnector(
        settings.hubspot, state=StoredConnectorState(store.ledger, "hubspot")
    )
    started = time.perf_counter()
    now = datetime.now(UTC)
    result = sync(
        settings, store, run_id=f"{label}-{now.timestamp()}", now=now, connector=connector, **kwargs
    )
    connector.close()
    seconds = time.perf_counter() - started
    stats = _stats(sandbox)
    print(
        f"{label}: {result.status}, {seconds:.1f} s, {stats['calls']:,} calls, "
        f"{stats['records_read']:,} records read, {result.records_written:,} written"
    )
    return result, stats


def _run(sandbox: Sandbox, tmp: Path) -> None:
    settings = load_settings(sandbox.write_config(tmp / "icp-sync.toml", crm="hubspot"))
    store = Store.open(settings.store.url)
    _cycle(settings, store, "full read (list paging, no ICP fields yet)", sandbox)

    portal = sandbox.portal
    with portal.lock:
        live = [r.id for r in portal.records["companies"].values() if not r.archived]
    for record_id in live:
        portal.write("companies", record_id, portal.checked("companies", {"industry": "Touched"}))
    result, stats = _cycle(settings, store, f"incremental after {len(live):,} changes", sandbox)
    search = _endpoint(stats, "POST objects/companies/search")
    accounts = store.mirror.load(CrmObject.ACCOUNT)
    touched = int((accounts["industry"] == "Touched").sum())
    print(
        f"  search: {search['calls']:,} calls (pages of 200: {math.ceil(len(live) / 200):,}), "
        f"{search['records_read']:,} records read for {len(live):,} changed "
        f"(exactly once: {search['records_read'] == len(live)}); mirror holds {touched:,} "
        f"changed; updated {result.objects[CrmObject.ACCOUNT].updated:,}"
    )

    sandbox.hubspot_stats.reset()
    assert settings.hubspot is not None
    connector = HubSpotConnector(
        settings.hubspot, state=StoredConnectorState(store.ledger, "hubspot")
    )
    fields = connector.ensure_fields(dry_run=False)
    connector.close()
    print(f"setup-fields: {len(fields.created)} properties, {_stats(sandbox)['calls']} calls")
    result, stats = _cycle(settings, store, "first write-back", sandbox)
    update = _endpoint(stats, "POST objects/companies/batch/update")
    print(
        f"  batch update: {update['calls']:,} calls for {result.records_written:,} companies "
        f"(ceil(k/100) = {math.ceil(result.records_written / 100):,})"
    )
    _cycle(settings, store, "read-back of own writes", sandbox)
    settings = settings.model_copy(
        update={"hubspot": settings.hubspot.model_copy(update={"lookback_seconds": 0})}
    )
    result, stats = _cycle(settings, store, "no change (lookback 0)", sandbox)
    print(f"  no-change cycle: {stats['calls']} calls: {sorted(stats['by_endpoint'])}")
    store.close()
