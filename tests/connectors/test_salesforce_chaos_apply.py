"""Write-side chaos: `icp-sync sync` killed with SIGKILL during apply, faults on, then recovery."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from icp_sync.sandbox.faults import FaultProfile
from icp_sync.sandbox.service import Sandbox
from tests.clirun import icp_sync
from tests.conftest import SandboxFactory
from tests.connectors.salesforce_org import ICP_FIELDS
from tests.crm_clients import salesforce_client


def _stats(sandbox: Sandbox) -> dict[str, Any]:
    url = f"{sandbox.salesforce.url}/__sandbox/stats"
    response = requests.get(url, verify=str(sandbox.tls.ca_file), timeout=10)
    response.raise_for_status()
    stats: dict[str, Any] = response.json()
    return stats


def _calls(stats: dict[str, Any], endpoint: str) -> int:
    return int(stats["by_endpoint"].get(endpoint, {}).get("calls", 0))


def _kill_when(process: subprocess.Popen[str], sandbox: Sandbox, trigger: tuple[str, int]) -> bool:
    """SIGKILL the process once the sandbox has seen ``trigger``; False if it ended first."""
    what, at_least = trigger
    deadline = time.monotonic() + 300
    while process.poll() is None:
        stats = _stats(sandbox)
        seen = stats["records_written"] if what == "records" else _calls(stats, what)
        if seen >= at_least:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=60)
            return True
        assert time.monotonic() < deadline, "the sync never reached the kill point"
    return False


@pytest.mark.parametrize("path", ["collections", "bulk"])
def test_syncs_killed_during_apply_write_every_change_exactly_once(
    sandbox_factory: SandboxFactory,
    tmp_path: Path,
    reference: dict[str, dict[str, Any]],
    path: str,
) -> None:
    """After SIGKILLs mid-apply and recovery cycles, each planned write landed exactly once."""
    sandbox = sandbox_factory(accounts=1000)
    config = sandbox.write_config(tmp_path / "icp-sync.toml")
    text = config.read_text(encoding="utf-8")
    threshold = 300 if path == "bulk" else 2000
    text = text.replace("[store]\n", "[store]\nlease_ttl_s = 3\nlease_wait_s = 60\n")
    text += "\n[compliance]\nenabled = false\n"  # Account write-back only: the reference
    text = text.replace("ca_file =", f"bulk_write_threshold = {threshold}\nca_file =", 1)
    config.write_text(text, encoding="utf-8")
    assert icp_sync("setup-fields", "--config", str(config)).code == 0
    ca = str(sandbox.tls.ca_file)
    requests.post(f"{sandbox.salesforce.url}/__sandbox/reset-stats", verify=ca, timeout=10)
    faults = FaultProfile(seed=3, lock_row=0.03, server_error=0.02, latency_ms=40)
    requests.post(
        f"{sandbox.salesforce.url}/__sandbox/faults", json=faults.as_dict(), verify=ca, timeout=10
    ).raise_for_status()
    rng = random.Random(f"chaos-{path}")
    triggers: list[tuple[str, int]] = (
        [("records", rng.randint(1, 300)), ("records", rng.randint(301, 700))]
        if path == "collections"
        else [("POST jobs/ingest", 1), ("PATCH jobs/ingest/job", 1), ("records", 1)]
    )

    killed = 0
    for trigger in triggers:
        process = subprocess.Popen(
            [sys.executable, "-m", "icp_sync", "sync", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        killed += _kill_when(process, sandbox, trigger)
    for _ in range(5):
        outcome = icp_sync("sync", "--json", "--config", str(config))
        assert outcome.code == 0, outcome.stderr[-2000:]
        if '"records_written": 0' in outcome.stdout:
            break
    else:
        pytest.fail("recovery cycles kept writing")

    expected = sum(1 for fields in reference.values() if fields["ICP_Tier__c"])
    stats = _stats(sandbox)
    rows = salesforce_client(sandbox).query_all(f"SELECT Id, {', '.join(ICP_FIELDS)} FROM Account")
    now = {r["Id"]: {f: r[f] for f in ICP_FIELDS} for r in rows["records"]}
    assert killed >= 2
    assert stats["records_written"] == expected
    assert now == reference
