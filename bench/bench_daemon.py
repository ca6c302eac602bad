"""The daemon at scale, and the write path beside a naive record-by-record script.

Part 1 (``ICP_SYNC_BENCH_DAEMON_ACCOUNTS``, default 100,000 accounts, and
``ICP_SYNC_BENCH_DAEMON_OPPORTUNITIES``, default 4 per account: the generated history padded
with earlier lost attempts): a first full cycle as
``icp-sync sync`` in its own process (wall time and peak RSS), then daemon cycles through
one kept sync session: the cycle that reads its own write-back, a cycle with no change, and
one after owners edited 1,000 accounts; API calls as the sandbox counts them.

Part 2: writing ``ICP_SYNC_BENCH_WRITES`` (default 10,000) changed accounts with the sandbox's
per-request latency at a WAN figure (``latency_ms=150``): icp-sync's write path (Bulk API 2.0
ingest above its threshold, sObject Collections below) beside a naive script that updates
one record per call through the same simple-salesforce client. The naive script runs on a
sample (``ICP_SYNC_BENCH_NAIVE_SAMPLE``, default 300) and is scaled linearly to the same
number of records: one call per record at a fixed latency is linear by construction.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from simple_salesforce import Salesforce

from connectors.salesforce.connector import SalesforceConnector
from icp_sync.config import Settings, load_settings
from icp_sync.model import CrmObject
from icp_sync.pipeline.session import SyncSession
from icp_sync.sandbox.faults import FaultProfile
from icp_sync.sandbox.service import Sandbox, SandboxSettings
from icp_sync.store import Store, StoredConnectorState
from icp_sync.writeback import FieldChange, Plan


def _client(sandbox: Sandbox) -> Salesforce:
    info = sandbox.info()["salesforce"]
    session = requests.Session()
    session.trust_env = False
    session.verify = info["ca_file"]
    return Salesforce(
        instance_url=info["instance_url"], session_id=info["access_token"], session=session
    )


def _stats(sandbox: Sandbox) -> dict[str, Any]:
    stats: dict[str, Any] = sandbox.salesforce_stats.snapshot()
    return stats


def _connector(
    settings: Settings, store: Store | None = None, **update: Any
) -> SalesforceConnector:
    assert settings.salesforce is not None
    config = settings.salesforce.model_copy(update=update)
    state = StoredConnectorState(store.ledger, "salesforce") if store else None
    return SalesforceConnector(config, state=state, bulk_wait=0.2)


# The CLI in a process that writes its own peak RSS (VmHWM, kB) to argv[1] at exit. Not
# getrusage: a child started by vfork + exec inherits the parent's high-water mark in
# ``ru_maxrss`` (Linux records the old address space's peak at exec), so that figure would be
# this bench process's own peak, sandbox included.
_PEAK_REPORTING_CLI = """
import atexit, runpy, sys
from pathlib import Path
out = Path(sys.argv.pop(1))
def peak():
    status = Path("/proc/self/status").read_text().splitlines()
    out.write_text(next(line.split()[1] for line in status if line.startswith("VmHWM")))
atexit.register(peak)
sys.argv[0] = "icp-sync"
runpy.run_module("icp_sync", run_name="__main__", alter_sys=True)
"""


def _daemon_cycles(sandbox: Sandbox, workdir: Path) -> None:
    config = sandbox.write_config(workdir / "icp-sync.toml")
    settings = load_settings(config)
    setup = _connector(settings)
    setup.ensure_fields(dry_run=False)
    setup.close()

    sandbox.salesforce_stats.reset()
    peak_file = workdir / "sync-peak-kb"
    started = time.perf_counter()
    command = ["sync", "--config", str(config), "--json"]
    completed = subprocess.run(  # noqa: S603 (this interpreter, our own CLI)
        [sys.executable, "-c", _PEAK_REPORTING_CLI, str(peak_file), *command],
        capture_output=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    peak_gb = int(peak_file.read_text()) / 1024 / 1024
    stats = _stats(sandbox)
    print(
        f"first full cycle (icp-sync sync, own process): {seconds:.1f} s, peak RSS "
        f"{peak_gb:.2f} GB, {stats['calls']} API calls, {stats['records_read']:,} read, "
        f"{stats['records_written']:,} written (exit {completed.returncode})"
    )

    store = Store.open(settings.store.url)
    session = SyncSession(settings, store, connector_factory=lambda: _connector(settings, store))

    def cycle(label: str) -> None:
        sandbox.salesforce_stats.reset()
        began = time.perf_counter()
        with store.lease.hold("sync", ttl=timedelta(seconds=60), wait=timedelta(0)) as lease:
            result = session.cycle(run_id=label, now=datetime.now(UTC), lease=lease)
        took = time.perf_counter() - began
        stats = _stats(sandbox)
        skipped = bool(result.writeback and result.writeback.get("unchanged"))
        print(
            f"daemon cycle, {label}: {took:.2f} s, {stats['calls']} API calls "
            f"({', '.join(sorted(stats['by_endpoint']))}), "
            f"{result.objects[CrmObject.ACCOUNT].extracted:,} accounts read, "
            f"{result.records_written:,} written{', scoring skipped' if skipped else ''}"
        )

    sandbox.org.advance(900)  # the daemon's second cycle comes one interval later
    cycle("15 min later, reads its own write-back once")
    sandbox.org.advance(900)  # a 15-minute interval
    cycle("no change, 15 min later")
    sandbox.org.advance(900)  # a 15-minute interval
    cycle("no change, 15 min later again")
    _, rows = sandbox.org.query(
        "SELECT Id, OwnerId FROM Account ORDER BY Id LIMIT 1000", include_deleted=False
    )
    for row in rows:
        sandbox.org.update(
            "Account", row["Id"], {"ICP_Tier_Override__c": "Red"}, user=row["OwnerId"]
        )
    sandbox.org.advance(900)  # a 15-minute interval
    cycle("1,000 accounts edited by their owners")
    session.close()
    store.close()


def _plan(ids: list[str], tier: str) -> Plan:
    changes = [
        FieldChange(
            crm_object=CrmObject.ACCOUNT, record_id=record_id, field=field, old=None, new=value
        )
        for n, record_id in enumerate(ids)
        for field, value in (("tier", tier), ("score", n % 100))
    ]
    return Plan(changes=tuple(changes))


def _write_path(workdir: Path, writes: int, sample: int) -> None:
    settings_ = SandboxSettings(directory=workdir / "wan", accounts=int(writes * 1.1), seed=11)
    with Sandbox(settings_) as sandbox:
        settings = load_settings(sandbox.write_config(workdir / "wan.toml"))
        setup = _connector(settings)
        setup.ensure_fields(dry_run=False)
        setup.close()
        sf = _client(sandbox)
        ids = [r["Id"] for r in sf.query_all("SELECT Id FROM Account ORDER BY Id")["records"]][
            :writes
        ]
        latency = FaultProfile(latency_ms=150)
        url = f"{sandbox.salesforce.url}/__sandbox/faults"
        requests.post(
            url, json=latency.as_dict(), verify=str(sandbox.tls.ca_file), timeout=10
        ).raise_for_status()
        print(f"write path, {len(ids):,} changed accounts, 150 ms per request:")
        results: dict[str, tuple[float, int]] = {}
        for label, threshold, tier in (
            ("icp-sync, Bulk API 2.0 ingest", 2_000, "Green"),
            ("icp-sync, sObject Collections", 10**9, "Yellow"),
        ):
            connector = _connector(settings, bulk_write_threshold=threshold)
            connector.writable_fields()  # describe before the clock starts, as a daemon has
            sandbox.salesforce_stats.reset()
            started = time.perf_counter()
            written = sum(len(b.written) for b in connector.apply(_plan(ids, tier)))
            seconds = time.perf_counter() - started
            calls = int(_stats(sandbox)["calls"])
            connector.close()
            results[label] = (seconds, calls)
            print(f"  {label}: {written:,} written in {seconds:.1f} s, {calls} API calls")
        few = ids[:sample]
        sandbox.salesforce_stats.reset()
        started = time.perf_counter()
        for n, record_id in enumerate(few):
            sf.Account.update(record_id, {"ICP_Tier__c": "Red", "ICP_Score__c": n % 100})
        seconds = time.perf_counter() - started
        calls = int(_stats(sandbox)["calls"])
        scale = len(ids) / len(few)
        naive = (seconds * scale, round(calls * scale))
        print(
            f"  naive script, one update per record: {len(few):,} in {seconds:.1f} s, "
            f"{calls} calls; scaled to {len(ids):,}: {naive[0]:.0f} s, {naive[1]:,} calls"
        )
        for label, (took, calls) in results.items():
            print(
                f"  naive / {label}: {naive[1] / calls:,.0f}x the calls, "
                f"{naive[0] / took:,.0f}x the wall time"
            )


def main() -> None:
    """Part 1 at N accounts, then part 2 on its own WAN-latency org."""
    accounts = int(os.environ.get("ICP_SYNC_BENCH_DAEMON_ACCOUNTS", "100000"))
    deals = int(os.environ.get("ICP_SYNC_BENCH_DAEMON_OPPORTUNITIES", str(4 * accounts)))
    writes = int(os.environ.get("ICP_SYNC_BENCH_WRITES", "10000"))
    sample = int(os.environ.get("ICP_SYNC_BENCH_NAIVE_SAMPLE", "300"))
    print(f"load: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        where = Path(tmp) / "sandbox"
        sandbox = Sandbox(SandboxSettings(directory=where, accounts=accounts, opportunities=deals))
        sandbox.start()
        held = len(sandbox.org.objects["Opportunity"].records)
        print(
            f"sandbox with {accounts:,} accounts and {held:,} "
            f"opportunities ready in {time.perf_counter() - started:.1f} s"
        )
        try:
            _daemon_cycles(sandbox, Path(tmp))
        finally:
            sandbox.stop()
        if writes:  # 0: part 1 only
            _write_path(Path(tmp), writes, sample)
