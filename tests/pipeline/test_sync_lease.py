"""Two `icp-sync sync` processes on one state store: the single-writer lease."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from icp_sync.config import load_settings
from icp_sync.sandbox.faults import FaultProfile
from icp_sync.store import Store
from tests.clirun import icp_sync
from tests.conftest import SandboxFactory


def _start(config: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "icp_sync", "sync", "--json", "--config", str(config), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )


def _wait_for_holder(store: Store, deadline_s: float = 60) -> None:
    deadline = time.monotonic() + deadline_s
    while store.lease.holder("sync") is None:
        assert time.monotonic() < deadline, "the first sync never took the lease"
        time.sleep(0.05)


@pytest.mark.parametrize("wait", ["exit-at-once", "wait-for-the-holder"])
def test_a_second_sync_writes_nothing_while_the_first_holds_the_store(
    sandbox_factory: SandboxFactory, tmp_path: Path, wait: str
) -> None:
    """Racing syncs write each changed record once: the second exits naming the holder, or waits."""
    sandbox = sandbox_factory(accounts=1000)
    config = sandbox.write_config(tmp_path / "icp-sync.toml")
    assert icp_sync("setup-fields", "--config", str(config)).code == 0
    base = sandbox.salesforce.url
    ca = str(sandbox.tls.ca_file)
    requests.post(f"{base}/__sandbox/reset-stats", verify=ca, timeout=10).raise_for_status()
    # slow requests keep the first sync inside its cycle while the second starts
    requests.post(
        f"{base}/__sandbox/faults",
        json=FaultProfile(latency_ms=150).as_dict(),
        verify=ca,
        timeout=10,
    ).raise_for_status()
    store = Store.open(load_settings(config).store.url)

    first = _start(config)
    _wait_for_holder(store)
    second = _start(config, "--wait-lease", "0" if wait == "exit-at-once" else "600")
    out_first, err_first = first.communicate(timeout=600)
    out_second, err_second = second.communicate(timeout=600)
    store.close()

    assert first.returncode == 0, err_first
    written = json.loads(out_first)["records_written"]
    assert written > 900
    if wait == "exit-at-once":
        assert second.returncode == 1
        assert re.search(r"icp-sync pid \d+ on \S+ since \d{4}-\d\d-\d\d", err_second), err_second
        assert out_second == ""
    else:
        assert second.returncode == 0, err_second
        assert json.loads(out_second)["records_written"] == 0
    stats = requests.get(f"{base}/__sandbox/stats", verify=ca, timeout=10).json()
    assert stats["records_written"] == written
