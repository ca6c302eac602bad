"""Sandbox and connector throughput: reading N accounts by REST paging and by Bulk API 2.0.

Part 1 drives the Salesforce emulator with the real simple-salesforce client and reports
records per second and API calls for a full read of every Account (REST ``queryAll`` paged
at 2,000, then one Bulk 2.0 ``queryAll`` job). Part 2 runs icp-sync sync cycles against the
same org: a first full cycle (extract, derive, score, write back), a cycle with no change,
and a cycle after owners changed 1,000 accounts, with their API-call costs.
``ICP_SYNC_BENCH_SANDBOX_ACCOUNTS`` sets N (default 100000).
"""

from __future__ import annotations

import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from simple_salesforce import Salesforce

from connectors.salesforce.connector import SalesforceConnector
from icp_sync.config import load_settings
from icp_sync.pipeline import sync
from icp_sync.sandbox.service import Sandbox, SandboxSettings
from icp_sync.store import Store, StoredConnectorState

FIELDS = "Id, Name, Industry, NumberOfEmployees, AnnualRevenue, BillingCountry, SystemModstamp"


def _client(sandbox: Sandbox) -> Salesforce:
    info = sandbox.info()["salesforce"]
    session = requests.Session()
    session.trust_env = False
    session.verify = info["ca_file"]
    return Salesforce(
        instance_url=info["instance_url"], session_id=info["access_token"], session=session
    )


def _calls(sandbox: Sandbox) -> int:
    return int(sandbox.salesforce_stats.snapshot()["calls"])


def _serving(sandbox: Sandbox, accounts: int) -> None:
    sf = _client(sandbox)
    soql = f"SELECT {FIELDS} FROM Account"

    sandbox.salesforce_stats.reset()
    started = time.perf_counter()
    rows = sum(
        1
        for _ in sf.query_all_iter(
            soql, include_deleted=True, headers={"Sforce-Query-Options": "batchSize=2000"}
        )
    )
    seconds = time.perf_counter() - started
    print(
        f"REST queryAll, 2,000 per page: {rows:,} records in {seconds:.1f} s = "
        f"{rows / seconds:,.0f} records/s; {_calls(sandbox)} API calls"
    )

    sandbox.salesforce_stats.reset()
    started = time.perf_counter()
    rows = 0
    for page in sf.bulk2.Account.query_all(soql, max_records=50_000, wait=0.2):
        rows += page.count("\n") - 1
    seconds = time.perf_counter() - started
    print(
        f"Bulk 2.0 queryAll job, 50,000 per result page: {rows:,} records in {seconds:.1f} s = "
        f"{rows / seconds:,.0f} records/s; {_calls(sandbox)} API calls"
    )
    assert rows >= accounts * 0.99


def _cycles(sandbox: Sandbox, workdir: Path) -> None:
    settings = load_settings(sandbox.write_config(workdir / "icp-sync.toml"))
    assert settings.salesforce is not None
    store = Store.open(settings.store.url)

    def connector() -> SalesforceConnector:
        assert settings.salesforce is not None
        return SalesforceConnector(
            settings.salesforce,
            state=StoredConnectorState(store.ledger, "salesforce"),
            bulk_wait=0.2,
        )

    setup = connector()
    setup.ensure_fields(dry_run=False)
    setup.close()

    def cycle(label: str) -> dict[str, Any]:
        sandbox.salesforce_stats.reset()
        started = time.perf_counter()
        now = datetime.now(UTC)
        result = sync(settings, store, run_id=label, now=now, connector=connector())
        seconds = time.perf_counter() - started
        stats = sandbox.salesforce_stats.snapshot()
        print(
            f"sync, {label}: {seconds:.1f} s, {stats['calls']} API calls, "
            f"{stats['records_read']:,} records read, {result.records_written:,} written "
            f"({result.status})"
        )
        return stats

    cycle("first full cycle")
    cycle("no change")
    _, rows = sandbox.org.query(
        "SELECT Id, OwnerId FROM Account ORDER BY Id LIMIT 1000", include_deleted=False
    )
    for row in rows:
        sandbox.org.update(
            "Account", row["Id"], {"ICP_Tier_Override__c": "Red"}, user=row["OwnerId"]
        )
    cycle("1,000 accounts changed by their owners")
    store.close()


def main() -> None:
    """Serve N accounts, read them both ways, then run sync cycles against them."""
    accounts = int(os.environ.get("ICP_SYNC_BENCH_SANDBOX_ACCOUNTS", "100000"))
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        sandbox = Sandbox(SandboxSettings(directory=Path(tmp) / "sandbox", accounts=accounts))
        sandbox.start()
        print(f"sandbox with {accounts:,} accounts ready in {time.perf_counter() - started:.1f} s")
        try:
            _serving(sandbox, accounts)
            _cycles(sandbox, Path(tmp))
        finally:
            sandbox.stop()
