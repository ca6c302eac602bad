"""The HubSpot path end to end from the command line: serve, check, setup-fields, sync, sync."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from icp_sync.cli import run


def _serve(tmp_path: Path, config: Path) -> subprocess.Popen[str]:
    """``icp-sync sandbox serve --crm hubspot --write-config`` in its own process."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "icp_sync",
            "sandbox",
            "serve",
            "--accounts",
            "300",
            "--dir",
            str(tmp_path / "sandbox"),
            "--crm",
            "hubspot",
            "--write-config",
            str(config),
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not config.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the sandbox never wrote its config"
        time.sleep(0.1)
    return process


def test_serve_setup_fields_sync_sync_writes_nothing_the_second_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The written config validates and works (companies and the deals' compliance written);
    the second sync writes nothing."""
    config = tmp_path / "x.toml"
    server = _serve(tmp_path, config)
    try:
        time.sleep(0.2)  # the config is written before the info line
        assert run(["check", "--config", str(config)]) == 0
        checked = capsys.readouterr().out
        assert run(["setup-fields", "--config", str(config), "--dry-run", "--json"]) == 0
        planned = json.loads(capsys.readouterr().out)
        assert run(["setup-fields", "--config", str(config), "--json"]) == 0
        created = json.loads(capsys.readouterr().out)
        assert run(["sync", "--config", str(config), "--dry-run", "--json"]) == 0
        dry = json.loads(capsys.readouterr().out)
        assert run(["sync", "--config", str(config), "--json"]) == 0
        first = json.loads(capsys.readouterr().out)
        assert run(["sync", "--config", str(config), "--json"]) == 0
        second = json.loads(capsys.readouterr().out)
        assert run(["setup-fields", "--config", str(config), "--json"]) == 0
        again = json.loads(capsys.readouterr().out)
        text = config.read_text()
        url = next(line.split('"')[1] for line in text.splitlines() if line.startswith("base_url"))
        stats = requests.get(f"{url}/__sandbox/stats", timeout=10).json()
    finally:
        os.kill(server.pid, signal.SIGTERM)
        server.communicate(timeout=60)

    assert "hubspot access" in checked
    assert planned["would_create"] == created["created"]
    assert created["created"]
    assert not again["created"]
    assert dry["connector"] == "hubspot"
    assert dry["writeback"]["dry_run"] is True
    assert first["connector"] == "hubspot"
    deals = first["compliance"]["writes"]["records_written"]
    assert deals == dry["compliance"]["writes"]["plan"]["records"] > 0
    assert first["records_written"] == dry["writeback"]["plan"]["records"] + deals
    assert dry["writeback"]["plan"]["records"] > 0
    assert second["records_written"] == 0
    assert second["writeback"]["plan"]["records"] == 0
    assert second["compliance"]["writes"]["records_written"] == 0
    assert (
        stats["by_endpoint"]["POST objects/companies/batch/update"]["records_written"]
        == first["records_written"] - deals
    )
    assert stats["by_endpoint"]["POST objects/deals/batch/update"]["records_written"] == deals
