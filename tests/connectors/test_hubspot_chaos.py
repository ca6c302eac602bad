"""HubSpot under hostile conditions: rate limits, faults, a crash mid-write, a spent day, OAuth."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from connectors.hubspot.connector import HubSpotConnector
from icp_sync.model import CrmObject
from icp_sync.sandbox.faults import FaultProfile
from icp_sync.sections import SecretRef
from tests.conftest import SandboxFactory
from tests.connectors.hubspot_portal import Portal, make_portal

UPDATE = "POST objects/companies/batch/update"
ACCOUNTS = 400


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """The ICP properties a clean, fault-free run writes to the seed-0 portal of 400."""
    from icp_sync.sandbox.service import Sandbox, SandboxSettings

    tmp = tmp_path_factory.mktemp("reference")
    sandbox = Sandbox(SandboxSettings(directory=tmp / "sandbox", accounts=ACCOUNTS)).start()
    try:
        portal = make_portal(lambda **kw: sandbox, tmp, accounts=ACCOUNTS)
        portal.setup_fields()
        assert portal.sync().status == "ok"
        return portal.icp_values()
    finally:
        sandbox.stop()


def _fresh(factory: SandboxFactory, tmp_path: Path, **config: Any) -> Portal:
    portal = make_portal(factory, tmp_path, accounts=ACCOUNTS, **config)
    portal.setup_fields()
    return portal


def test_a_rate_limited_portal_is_never_pushed_past_its_burst_limit(
    sandbox_factory: SandboxFactory, tmp_path: Path, reference: dict[str, dict[str, Any]]
) -> None:
    """12 calls a second allowed: the client paces itself, no call is refused, result exact."""
    portal = _fresh(sandbox_factory, tmp_path)
    portal.limits(ten_secondly=12, window_ms=1000, search_per_second=3)
    connector = HubSpotConnector(portal.settings.hubspot, state=portal.state())  # type: ignore[arg-type]
    started = time.monotonic()

    result = portal.sync(connector=connector)

    assert result.status == "ok"
    assert portal.limits(reset=0)["refused"] == {}
    assert result.api_calls > 24
    assert time.monotonic() - started >= (result.api_calls // 12) - 1  # it waited, honestly
    assert portal.icp_values() == reference


@pytest.mark.parametrize(
    "profile",
    [
        FaultProfile(server_error=0.2, seed=1),
        FaultProfile(rate_limit=0.2, seed=2),
        FaultProfile(server_error=0.1, rate_limit=0.1, latency_ms=3, seed=3),
    ],
    ids=["5xx", "429", "mixed"],
)
def test_every_fault_mode_ends_in_the_intended_state(
    sandbox_factory: SandboxFactory,
    tmp_path: Path,
    reference: dict[str, dict[str, Any]],
    profile: FaultProfile,
) -> None:
    """5xx and 429 (on GET, POST search and batch writes alike) are retried to the exact state."""
    portal = _fresh(sandbox_factory, tmp_path)
    portal.faults(profile)

    result = portal.sync()

    assert result.status == "ok"
    assert portal.icp_values() == reference
    portal.faults(FaultProfile())
    assert portal.sync().records_written == 0


def test_a_crash_after_a_write_landed_writes_nothing_twice(
    sandbox_factory: SandboxFactory, tmp_path: Path, reference: dict[str, dict[str, Any]]
) -> None:
    """Killed after a batch landed but before it was recorded: the next run records it, once."""
    portal = _fresh(sandbox_factory, tmp_path)
    connector = portal.connector()
    real = connector._client.batch_update
    sent: list[int] = []

    def crash_after_second(kind: str, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        answer = real(kind, inputs)
        sent.append(len(inputs))
        if len(sent) == 2:
            raise KeyboardInterrupt("killed")
        return answer

    connector._client.batch_update = crash_after_second  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        portal.sync(connector=connector)

    result = portal.sync()

    assert result.status == "ok"
    assert portal.icp_values() == reference
    written = portal.stats()["by_endpoint"][UPDATE]["records_written"]
    assert written == sum(1 for v in reference.values() if v["icp_tier"])  # each once
    assert result.objects[CrmObject.ACCOUNT].manual_edits == 0
    assert portal.sync().records_written == 0


def test_a_spent_daily_limit_ends_the_cycle_cleanly_and_the_next_resumes(
    sandbox_factory: SandboxFactory, tmp_path: Path, reference: dict[str, dict[str, Any]]
) -> None:
    """The day's calls run out mid-sync: status budget_exhausted, and tomorrow finishes it."""
    portal = _fresh(sandbox_factory, tmp_path)
    portal.limits(daily=12)

    stopped = portal.sync()

    assert stopped.status == "budget_exhausted"
    assert portal.icp_values() != reference
    portal.limits(daily=1_000_000)
    resumed = portal.sync()
    assert resumed.status == "ok"
    assert portal.icp_values() == reference


def test_oauth_tokens_are_refreshed_and_never_logged(
    sandbox_factory: SandboxFactory,
    tmp_path: Path,
    reference: dict[str, dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """OAuth access tokens expiring every 15 calls are refreshed; no secret reaches the logs."""
    portal = make_portal(sandbox_factory, tmp_path, accounts=ACCOUNTS)
    credentials = json.loads((portal.sandbox.directory / "credentials.json").read_text())["hubspot"]
    secrets = {}
    for name in ("client_id", "client_secret", "refresh_token"):
        path = tmp_path / name
        path.write_text(credentials[name])
        secrets[name] = SecretRef(credentials[name], f"file:{path}")
    assert portal.settings.hubspot is not None
    oauth = portal.settings.hubspot.model_copy(
        update={"auth": "oauth", "access_token": None, **secrets}
    )
    portal.settings = portal.settings.model_copy(update={"hubspot": oauth})
    portal.setup_fields()
    portal.faults(FaultProfile(session_expiry_after=15))

    result = portal.sync()

    assert result.status == "ok"
    assert portal.icp_values() == reference
    stats = portal.stats()["by_endpoint"]
    assert stats["POST oauth/v1/token"]["calls"] >= 3
    printed = "".join(capsys.readouterr())
    for value in credentials.values():
        assert value not in printed
