"""The daemon: scheduled cycles, /healthz and /metrics, SIGTERM, one writer, backoff and alerts."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
from prometheus_client.parser import text_string_to_metric_families

from icp_sync.daemon import Daemon
from icp_sync.pipeline.session import SyncSession
from tests.clirun import icp_sync
from tests.conftest import EXAMPLES, ROOT, SandboxFactory
from tests.connectors.salesforce_org import make_org


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _poll(check: Callable[[], Any], *, timeout: float, what: str) -> Any:
    """Poll ``check`` until it returns something truthy (or fail after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except requests.RequestException:
            value = None
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_daemon_process_syncs_on_schedule_serves_health_and_metrics_and_exits_0_on_sigterm(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """`icp-sync run` runs cycles on its interval, reports them on /healthz and /metrics,
    writes tiers to the CRM, and exits 0 on SIGTERM."""
    org = make_org(sandbox_factory, tmp_path, accounts=400)
    org.setup_fields()
    assert org.settings.source is not None
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "icp_sync", "run", "--config", str(org.settings.source)]
    command += ["--interval", "1", "--listen", f"127.0.0.1:{port}"]
    with (tmp_path / "daemon.log").open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
        try:
            health = _poll(
                lambda: (
                    r.json()
                    if (r := requests.get(f"{base}/healthz", timeout=5)).ok
                    and r.json()["cycles"] >= 3
                    and r.json()["last_success_at"]
                    else None
                ),
                timeout=120,
                what="three cycles",
            )
            assert health["status"] == "ok"
            assert requests.get(f"{base}/readyz", timeout=5).status_code == 200
            metrics = _samples(requests.get(f"{base}/metrics", timeout=5).text)
            process.send_signal(signal.SIGTERM)
            code = process.wait(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
    log = (tmp_path / "daemon.log").read_text()
    assert code == 0, log
    assert metrics[("icp_sync_cycles_total", (("status", "ok"),))] >= 3
    assert metrics[("icp_sync_records_written_total", (("crm", "salesforce"),))] > 300
    calls = {
        labels: v
        for (name, labels), v in metrics.items()
        if name == "icp_sync_api_calls_total" and dict(labels)["crm"] == "salesforce"
    }
    assert sum(calls.values()) > 0
    tiers = [f["ICP_Tier__c"] for f in org.icp_fields().values()]
    assert sum(t is not None for t in tiers) >= 300
    assert "daemon_stopped" in log


def test_a_second_daemon_on_the_same_store_stands_by_and_takes_over_when_the_first_stops(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """Two daemons on one store: only the lease holder writes; the other takes over after it."""
    org = make_org(sandbox_factory, tmp_path, accounts=300)
    org.setup_fields()
    first = Daemon(
        org.settings,
        org.store,
        interval_s=3600,
        listen="127.0.0.1:0",
        session=SyncSession(org.settings, org.store, connector_factory=org.connector),
    )
    second = Daemon(
        org.settings,
        org.store,
        interval_s=3600,
        listen="127.0.0.1:0",
        session=SyncSession(org.settings, org.store, connector_factory=org.connector),
    )
    try:
        assert first.run_cycle(full=False) == "ok"
        org.reset_stats()
        assert second.run_cycle(full=False) == "standby"
        assert org.stats()["calls"] == 0  # the standby does not even read the CRM
        assert second.health().status == "standby"
        written = _samples(second.metrics.exposition().decode())
        assert written[("icp_sync_cycles_total", (("status", "standby"),))] == 1
        assert ("icp_sync_records_written_total", (("crm", "salesforce"),)) not in written
        first.shutdown()
        assert second.run_cycle(full=False) == "ok"
        assert second.health().detail["lease_held"] is True
    finally:
        first.shutdown()
        second.shutdown()


def test_repeated_failures_back_off_and_alert_once(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """A cycle that keeps failing pauses the schedule (doubling) and alerts once, after N."""
    org = make_org(sandbox_factory, tmp_path, accounts=200)
    alerts: list[tuple[str, dict[str, Any]]] = []
    settings = org.settings.model_copy(
        update={
            "daemon": org.settings.daemon.model_copy(
                update={"alert_after_failures": 2, "max_backoff_s": 1}
            )
        }
    )
    org.sandbox.stop()  # the CRM is unreachable
    daemon = Daemon(
        settings,
        org.store,
        interval_s=1,
        listen="127.0.0.1:0",
        session=SyncSession(settings, org.store, connector_factory=org.connector),
        on_alert=[lambda title, details: alerts.append((title, details))],
    )
    try:
        assert daemon.run_cycle(full=False) == "failed"
        assert daemon.run_cycle(full=False) == "backoff"  # paused for one interval
        assert daemon.health().status == "failing"
        assert not alerts
        _poll(lambda: daemon.run_cycle(full=False) == "failed", timeout=10, what="retry")
        assert len(alerts) == 1
        assert "2 sync cycles failed" in alerts[0][0]
        _poll(lambda: daemon.run_cycle(full=False) == "failed", timeout=10, what="retry")
        assert len(alerts) == 1  # once, until a cycle succeeds
        assert daemon.health().detail["consecutive_failures"] == 3
        assert daemon.health().alive  # failing is not a reason to restart the process
    finally:
        daemon.shutdown()


def test_a_bad_listen_address_is_a_usage_error(tmp_path: Path) -> None:
    """`icp-sync run --listen nonsense` exits 2 with one line naming the option."""
    shutil.copytree(EXAMPLES / "maven", tmp_path / "maven", ignore=shutil.ignore_patterns("*.db*"))
    config = str(tmp_path / "maven" / "icp-sync.toml")
    outcome = icp_sync("run", "--config", config, "--listen", "nonsense")
    assert outcome.code == 2
    assert "--listen" in outcome.stderr
    assert "Traceback" not in outcome.stderr
