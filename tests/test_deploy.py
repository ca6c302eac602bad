"""The deployment files agree with the daemon's contract: command, port, probe paths, non-root."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from icp_sync.cli import app
from icp_sync.config import DaemonConfig
from tests.conftest import ROOT

DEPLOY = ROOT / "deploy"
PORT = 9464


def _documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _kind(kind: str) -> dict[str, Any]:
    found = [
        d
        for p in sorted((DEPLOY / "kubernetes").glob("*.yaml"))
        for d in _documents(p)
        if d.get("kind") == kind
    ]
    assert len(found) == 1, kind
    return found[0]


def test_the_default_listen_address_is_the_documented_port() -> None:
    """The daemon listens on 127.0.0.1:9464 unless told otherwise."""
    assert DaemonConfig().listen == f"127.0.0.1:{PORT}"


def test_kubernetes_probes_hit_the_daemon_health_paths_on_its_port() -> None:
    """Liveness on /healthz, readiness on /readyz, both on the port the container listens on."""
    deployment = _kind("Deployment")
    spec = deployment["spec"]["template"]["spec"]
    container = spec["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": PORT}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    args = container["args"]
    assert args[0] == "run"
    assert args[args.index("--listen") + 1] == f"0.0.0.0:{PORT}"
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["terminationGracePeriodSeconds"] >= 60
    assert deployment["spec"]["strategy"]["type"] == "Recreate"


def test_the_config_map_is_a_valid_config_whose_secrets_are_the_mounted_secret_files(
    tmp_path: Path,
) -> None:
    """The ConfigMap's TOML names only file: references into the mounted Secret's keys."""
    config = _kind("ConfigMap")["data"]["icp-sync.toml"]
    secret_keys = set(_kind("Secret")["stringData"])
    references = set(re.findall(r'"file:/run/secrets/icp-sync/([^"]+)"', config))
    assert references == secret_keys
    assert f'listen = "0.0.0.0:{PORT}"' in config
    assert "CHANGE-ME" not in config


def test_compose_runs_the_daemon_beside_postgres_and_waits_for_it() -> None:
    """docker-compose: the daemon waits for a healthy PostgreSQL and serves 9464."""
    compose = _documents(DEPLOY / "docker-compose.yml")[0]
    daemon = compose["services"]["icp-sync"]
    assert compose["services"]["postgres"]["image"].startswith("postgres:")
    assert daemon["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert daemon["command"][0] == "run"
    assert daemon["ports"] == [f"127.0.0.1:{PORT}:{PORT}"]
    assert daemon["user"].split(":")[0] != "0"


def test_dockerfile_runs_the_daemon_as_a_non_root_user() -> None:
    """The image drops root, exposes 9464 and checks /healthz."""
    text = (DEPLOY / "Dockerfile").read_text()
    users = re.findall(r"^USER (\S+)", text, flags=re.MULTILINE)
    assert users
    assert users[-1].split(":")[0] not in ("0", "root")
    assert f"EXPOSE {PORT}" in text
    assert f"127.0.0.1:{PORT}/healthz" in text
    assert '"run"' in text


def test_systemd_unit_runs_the_daemon_and_stops_it_with_sigterm() -> None:
    """The unit starts `icp-sync run` as its own user and stops it with SIGTERM."""
    text = (DEPLOY / "systemd" / "icp-sync.service").read_text()
    assert re.search(r"^ExecStart=\S+icp-sync run --config \S+", text, flags=re.MULTILINE)
    assert "KillSignal=SIGTERM" in text
    assert "User=icp-sync" in text
    assert "RestartPreventExitStatus=2" in text


def test_the_run_command_takes_the_contract_options() -> None:
    """`icp-sync run` has --config, --interval and --listen."""
    command = next(c for c in app.registered_commands if c.name == "run")
    assert command.callback is not None
    names = command.callback.__code__.co_varnames
    assert {"config", "interval", "listen"} <= set(names)
