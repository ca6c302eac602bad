"""The Salesforce client: faults retried to the clean result, API budget, TLS verification."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests
from simple_salesforce.exceptions import SalesforceError, SalesforceMalformedRequest

from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.config import SalesforceConfig
from connectors.salesforce.connector import SalesforceConnector
from icp_sync.errors import FatalConnectorError, RetriableConnectorError
from icp_sync.pipeline import SyncResult
from icp_sync.sandbox.faults import FaultProfile
from tests.conftest import SandboxFactory
from tests.connectors.salesforce_org import (
    Org,
    make_org,
)


def _converge(org: Org, cycles: int) -> list[SyncResult]:
    """Run cycles until one completes with nothing left to write or retry."""
    results: list[SyncResult] = []
    for _ in range(cycles):
        try:
            result = org.sync()
        except Exception as exc:  # noqa: BLE001 (a failed cycle is retried by the next one)
            results.append(exc)  # type: ignore[arg-type]
            continue
        results.append(result)
        writeback = result.writeback or {}
        plan = writeback.get("plan", {})
        if result.status == "ok" and not plan.get("records") and not writeback.get("rejected"):
            break
    return results


FAULTS = {
    "server_error": FaultProfile(seed=1, server_error=0.2),
    "rate_limit": FaultProfile(seed=2, rate_limit=0.15),
    "lock_row": FaultProfile(seed=3, lock_row=0.3),
    "session_expiry": FaultProfile(seed=4, session_expiry_after=7),
    "latency": FaultProfile(seed=5, latency_ms=30),
    "hostile": FaultProfile(
        seed=6, server_error=0.15, rate_limit=0.1, lock_row=0.1, session_expiry_after=50
    ),
}


@pytest.mark.parametrize("name", list(FAULTS))
def test_every_fault_mode_is_survived_and_the_org_ends_as_a_clean_run_leaves_it(
    sandbox_factory: SandboxFactory,
    tmp_path: Path,
    reference: dict[str, dict[str, Any]],
    name: str,
) -> None:
    """Under each fault mode, cycles converge to exactly the ICP fields of a fault-free run."""
    org = make_org(sandbox_factory, tmp_path)
    org.faults(FAULTS[name])
    org.setup_fields()
    results = _converge(org, cycles=12)
    org.faults(FaultProfile())

    final = results[-1]
    assert isinstance(final, SyncResult), results
    assert final.status == "ok"
    assert org.icp_fields() == reference
    assert org.stats()["calls"] > 0


def test_a_spent_cycle_budget_stops_cleanly_and_the_next_cycles_resume(
    sandbox_factory: SandboxFactory,
    tmp_path: Path,
    reference: dict[str, dict[str, Any]],
) -> None:
    """A cycle stops at its share of the daily limit; later cycles finish the same work."""
    org = make_org(
        sandbox_factory,
        tmp_path,
        page_size=200,
        budget_share=0.04,
        sandbox={"daily_api_limit": 400},
    )
    org.setup_fields()
    statuses = []
    for _ in range(20):
        result = org.sync()
        statuses.append(result.status)
        assert result.api_calls <= 0.04 * 400 + 3  # the guard runs before each call
        if result.status == "ok" and not (result.writeback or {}).get("plan", {}).get("records"):
            break
    assert statuses[0] == "budget_exhausted"
    assert statuses[-1] == "ok"
    assert org.icp_fields() == reference


def test_a_spent_daily_limit_ends_the_cycle_cleanly(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """REQUEST_LIMIT_EXCEEDED (TotalRequests) ends the cycle with a clear status, not a crash."""
    org = make_org(
        sandbox_factory,
        tmp_path,
        sandbox={"daily_api_limit": 25},
        max_org_share=1.0,
        budget_share=1.0,
    )
    org.setup_fields()
    result = org.sync()
    assert result.status == "budget_exhausted"
    assert org.stats()["calls"] > 25  # the refused call is counted too


def test_tls_is_verified_and_requests_ca_bundle_does_not_override_the_config(
    sandbox_factory: SandboxFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The configured CA is used even with REQUESTS_CA_BUNDLE set; without it, TLS fails."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    org = make_org(sandbox_factory, tmp_path)
    connector = org.connector()
    assert connector.read_limits()["DailyApiRequests"]["Max"] > 0
    connector.close()

    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(org.sandbox.tls.ca_file))
    assert org.settings.salesforce is not None
    untrusted = SalesforceConnector(
        org.settings.salesforce.model_copy(update={"ca_file": None}),
        sleep=lambda _: None,
    )
    items = untrusted.check()
    untrusted.close()
    assert not items[0].ok
    assert "SSL" in items[0].detail or "certificate" in items[0].detail.lower()


class _Replies(requests.adapters.BaseAdapter):
    """Answers each request with the next (status, headers) in line, like an org would."""

    def __init__(self, replies: list[tuple[int, dict[str, str]]]) -> None:
        super().__init__()
        self.replies = replies
        self.sent = 0

    def send(self, request: requests.PreparedRequest, **_: Any) -> requests.Response:
        status, headers = self.replies[min(self.sent, len(self.replies) - 1)]
        self.sent += 1
        response = requests.Response()
        response.status_code = status
        response.headers.update(headers)
        response.url = str(request.url)
        response.request = request
        response._content = b"{}"
        return response

    def close(self) -> None:
        """Nothing to release."""


_CODES = {429: "REQUEST_LIMIT", 503: "SERVER_UNAVAILABLE", 400: "INVALID_FIELD"}


def _client(
    monkeypatch: pytest.MonkeyPatch, replies: list[tuple[int, dict[str, str]]]
) -> tuple[SalesforceClient, _Replies, list[float]]:
    monkeypatch.setenv("ICP_TEST_SF_SESSION", "00Dtoken")
    config = SalesforceConfig.model_validate(
        {
            "auth": "session",
            "session_id": "env:ICP_TEST_SF_SESSION",
            "instance_url": "https://org.example",
            "max_attempts": 4,
        }
    )
    adapter = _Replies(replies)
    session = requests.Session()
    session.mount("https://", adapter)
    slept: list[float] = []
    return SalesforceClient(config, session=session, sleep=slept.append), adapter, slept


def _limits(sf: Any) -> int:
    """A call that fails the way simple-salesforce does on a non-2xx answer."""
    response = sf.session.get("https://org.example/services/data/v59.0/limits")
    if response.status_code >= 400:
        error = SalesforceMalformedRequest if response.status_code == 400 else SalesforceError
        code = _CODES[response.status_code]
        raise error(response.url, response.status_code, "limits", [{"errorCode": code}])
    return int(response.status_code)


@pytest.mark.parametrize(
    ("status", "headers", "waits"),
    [
        (503, {}, "backoff"),
        (429, {"Retry-After": "7"}, [7.0, 7.0]),
    ],
    ids=["5xx-jittered-backoff", "429-honours-retry-after"],
)
def test_transient_faults_are_retried_with_the_one_policy(
    monkeypatch: pytest.MonkeyPatch, status: int, headers: dict[str, str], waits: Any
) -> None:
    """429 and 5xx are retried; Retry-After sets the wait, else jittered exponential backoff."""
    client, adapter, slept = _client(monkeypatch, [(status, headers), (status, headers), (200, {})])

    assert client.call("limits", _limits) == 200
    assert adapter.sent == 3
    assert client.usage().calls == 3
    if waits == "backoff":
        assert 0.25 <= slept[0] <= 0.5
        assert 0.5 <= slept[1] <= 1.0
    else:
        assert slept == waits


def test_other_client_errors_are_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 400 that no retry can fix fails at once, without waiting."""
    client, adapter, slept = _client(monkeypatch, [(400, {}), (200, {})])

    with pytest.raises(FatalConnectorError, match="INVALID_FIELD"):
        client.call("limits", _limits)
    assert adapter.sent == 1
    assert slept == []


def test_a_fault_that_outlasts_every_attempt_is_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    """After max_attempts tries the last retriable error reaches the caller."""
    client, adapter, slept = _client(monkeypatch, [(503, {})])

    with pytest.raises(RetriableConnectorError, match="SERVER_UNAVAILABLE"):
        client.call("limits", _limits)
    assert adapter.sent == 4
    assert len(slept) == 3
