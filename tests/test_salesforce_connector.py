"""The Salesforce connector against the sandbox org: API-call costs, write-back, faults, budget.

Every call is counted by the sandbox's own accounting (``GET /__sandbox/stats``), not by the
connector, so the numbers below are what a real org would bill.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from connectors.salesforce import SalesforceConnector, soql_literal
from icp_sync.config import Settings, load_settings
from icp_sync.model import CrmObject
from icp_sync.pipeline import SyncResult, sync
from icp_sync.sandbox.faults import FaultProfile
from icp_sync.sandbox.service import Sandbox
from icp_sync.store import Store, StoredConnectorState
from tests.conftest import SandboxFactory
from tests.crm_clients import salesforce_client

ICP_FIELDS = (
    "ICP_Tier__c",
    "ICP_Score__c",
    "ICP_Segment__c",
    "ICP_Reasons__c",
    "ICP_TAL__c",
    "ICP_TAL_Rank__c",
    "ICP_Version__c",
)


@dataclass
class Org:
    """One sandbox org with an icp-sync config, a state store and call accounting."""

    sandbox: Sandbox
    settings: Settings
    store: Store

    def connector(self) -> SalesforceConnector:
        """A connector as the CLI builds it, minus real sleeping between retries."""
        assert self.settings.salesforce is not None
        return SalesforceConnector(
            self.settings.salesforce,
            state=StoredConnectorState(self.store.ledger, "salesforce"),
            sleep=lambda _: None,
            bulk_wait=0.01,
        )

    def sync(self, **kwargs: Any) -> SyncResult:
        """One sync cycle, as `icp-sync sync` runs it."""
        stamp = datetime.now(UTC)
        return sync(
            self.settings,
            self.store,
            run_id=f"r{stamp.timestamp()}",
            now=stamp,
            connector=self.connector(),
            **kwargs,
        )

    def setup_fields(self) -> None:
        """Create the ICP fields, as `icp-sync setup-fields` does."""
        connector = self.connector()
        result = connector.ensure_fields(dry_run=False)
        connector.close()
        assert not result.failed, result.failed

    def stats(self) -> dict[str, Any]:
        """The sandbox's accounting, read over HTTP like any client would."""
        url = f"{self.sandbox.salesforce.url}/__sandbox/stats"
        response = requests.get(url, verify=str(self.sandbox.tls.ca_file), timeout=10)
        response.raise_for_status()
        stats: dict[str, Any] = response.json()
        return stats

    def reset_stats(self) -> None:
        """Zero the sandbox's accounting."""
        url = f"{self.sandbox.salesforce.url}/__sandbox/reset-stats"
        requests.post(url, verify=str(self.sandbox.tls.ca_file), timeout=10).raise_for_status()

    def faults(self, profile: FaultProfile) -> None:
        """Set the fault profile through the control endpoint."""
        url = f"{self.sandbox.salesforce.url}/__sandbox/faults"
        response = requests.post(
            url, json=profile.as_dict(), verify=str(self.sandbox.tls.ca_file), timeout=10
        )
        response.raise_for_status()

    def icp_fields(self) -> dict[str, dict[str, Any]]:
        """Account id -> the ICP fields as the org holds them now."""
        sf = salesforce_client(self.sandbox)
        rows = sf.query_all(f"SELECT Id, {', '.join(ICP_FIELDS)} FROM Account")["records"]
        return {r["Id"]: {f: r[f] for f in ICP_FIELDS} for r in rows}


def _org(
    factory: SandboxFactory, tmp_path: Path, *, accounts: int = 1000, **salesforce: Any
) -> Org:
    sandbox: Sandbox = factory(
        accounts=accounts, **salesforce.pop("sandbox", {}), directory=tmp_path / "sandbox"
    )
    config = sandbox.write_config(tmp_path / "icp-sync.toml")
    settings = load_settings(config)
    assert settings.salesforce is not None
    settings = settings.model_copy(
        update={"salesforce": settings.salesforce.model_copy(update=salesforce)}
    )
    store = Store.open(settings.store.url)
    return Org(sandbox=sandbox, settings=settings, store=store)


def _queries(stats: dict[str, Any]) -> int:
    by = stats["by_endpoint"]
    return sum(v["calls"] for name, v in by.items() if name.split(" ")[-1].startswith("query"))


def _count(name: str, stats: dict[str, Any]) -> int:
    """Calls to one endpoint ("METHOD name"), or to all whose name starts with ``name*``."""
    by = stats["by_endpoint"]
    if name.endswith("*"):
        return sum(v["calls"] for endpoint, v in by.items() if endpoint.startswith(name[:-1]))
    return int(by.get(name, {}).get("calls", 0))


def test_full_rest_extract_costs_one_query_call_per_page(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """A full REST extract of N records costs ceil(N/2000) query calls per object, no more."""
    org = _org(sandbox_factory, tmp_path, accounts=4_100)
    org.reset_stats()
    result = org.sync(dry_run=True)
    stats = org.stats()
    accounts = result.objects[CrmObject.ACCOUNT].extracted
    deals = result.objects[CrmObject.OPPORTUNITY].extracted

    assert accounts == 4_100
    pages = math.ceil(accounts / 2000) + math.ceil(deals / 2000)
    assert _queries(stats) == pages
    assert stats["calls"] == pages + 4  # token, limits, two describes
    assert result.records_written == 0


def test_bulk_extract_costs_a_constant_number_of_calls(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """Above the bulk threshold, extraction is one Bulk 2.0 query job per object plus pages."""
    org = _org(sandbox_factory, tmp_path, accounts=2_500, bulk_query_threshold=100)
    org.reset_stats()
    result = org.sync(dry_run=True)
    stats = org.stats()

    assert result.objects[CrmObject.ACCOUNT].extracted == 2_500
    assert _count("POST jobs/query", stats) == 2  # one job per object
    assert _count("GET jobs/query/results", stats) == 2  # each result set fits one 50k page
    assert _count("GET queryAll", stats) == 2  # the size probe: one REST page per object
    assert stats["calls"] <= 16
    live = salesforce_client(org.sandbox).query("SELECT COUNT() FROM Account")["totalSize"]
    assert org.store.mirror.counts()["account"] == live  # deleted rows arrive as tombstones


def test_second_cycle_without_change_makes_a_handful_of_calls(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """After a full cycle, an unchanged org costs 8 calls and writes nothing."""
    org = _org(sandbox_factory, tmp_path)
    org.setup_fields()
    first = org.sync()
    org.reset_stats()
    second = org.sync()
    stats = org.stats()

    assert first.records_written > 900
    assert second.records_written == 0
    assert second.status == "ok"
    assert stats["calls"] == 8, stats["by_endpoint"]
    assert stats["records_written"] == 0


def _override(org: Org, ids: list[str], tier: str) -> None:
    """Account owners set the ICP tier override by hand (in the UI, as themselves)."""
    sf = salesforce_client(org.sandbox)
    rows = sf.query_all("SELECT Id, OwnerId FROM Account")["records"]
    wanted = set(ids)
    for row in rows:
        if row["Id"] in wanted:
            org.sandbox.org.update(
                "Account", row["Id"], {"ICP_Tier_Override__c": tier}, user=row["OwnerId"]
            )


def _names_not_in_tier(org: Org, tier: str, k: int) -> list[str]:
    current = org.icp_fields()
    return sorted(n for n, f in current.items() if f["ICP_Tier__c"] != tier)[:k]


@pytest.mark.parametrize("k", [1, 200, 450])
def test_writing_k_accounts_costs_ceil_k_over_200_collection_calls(
    sandbox_factory: SandboxFactory, tmp_path: Path, k: int
) -> None:
    """k changed accounts are written with ceil(k/200) sObject Collections calls."""
    org = _org(sandbox_factory, tmp_path)
    org.setup_fields()
    org.sync()
    names = _names_not_in_tier(org, "Red", k)
    _override(org, names, "Red")
    org.reset_stats()
    result = org.sync()
    stats = org.stats()

    assert result.records_written == k
    assert _count("PATCH composite/sobjects", stats) == math.ceil(k / 200)
    assert stats["records_written"] == k
    after = org.icp_fields()
    assert all(after[n]["ICP_Tier__c"] == "Red" for n in names)


def test_writing_above_the_bulk_threshold_costs_a_constant_number_of_calls(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """Above bulk_write_threshold, k changed accounts take one Bulk 2.0 ingest job."""
    org = _org(sandbox_factory, tmp_path, accounts=1_500, bulk_write_threshold=300)
    org.setup_fields()
    org.sync()
    names = _names_not_in_tier(org, "Red", 700)
    _override(org, names, "Red")
    org.reset_stats()
    result = org.sync()
    stats = org.stats()

    assert result.records_written == 700
    assert _count("PATCH composite/sobjects", stats) == 0
    assert _count("POST jobs/ingest", stats) == 1
    assert _count("PUT jobs/ingest/batches", stats) == 1
    # create, upload, close, status poll(s), three result sets: independent of k
    assert _count("GET jobs/ingest*", stats) + _count("PATCH jobs/ingest*", stats) <= 7
    assert all(org.icp_fields()[n]["ICP_Tier__c"] == "Red" for n in names)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """The ICP fields a clean, fault-free run writes to the seed-0 org of 1,000 accounts."""
    from icp_sync.sandbox.service import SandboxSettings

    tmp = tmp_path_factory.mktemp("reference")
    sandbox = Sandbox(SandboxSettings(directory=tmp / "sandbox", accounts=1000)).start()
    try:
        org = _org(lambda **kw: sandbox, tmp)
        org.setup_fields()
        assert org.sync().status == "ok"
        return org.icp_fields()
    finally:
        sandbox.stop()


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
    org = _org(sandbox_factory, tmp_path)
    org.faults(FAULTS[name])
    org.setup_fields()
    results = _converge(org, cycles=12)
    org.faults(FaultProfile())

    final = results[-1]
    assert isinstance(final, SyncResult), results
    assert final.status == "ok"
    assert org.icp_fields() == reference
    assert org.stats()["calls"] > 0


def test_validation_rule_rejections_are_reported_and_only_those_records_differ(
    sandbox_factory: SandboxFactory,
    tmp_path: Path,
    reference: dict[str, dict[str, Any]],
) -> None:
    """Records a validation rule refuses are reported per record; every other one is written."""
    org = _org(sandbox_factory, tmp_path)
    org.setup_fields()
    org.faults(FaultProfile(seed=7, validation=0.05))
    result = org.sync()
    org.faults(FaultProfile())

    writeback = result.writeback or {}
    assert result.status == "ok"
    assert 0 < writeback["rejected"] < 200
    rejected = set(org.store.ledger.rejected_writes(CrmObject.ACCOUNT))
    assert len(rejected) == writeback["rejected"]
    now = org.icp_fields()
    differing = {n for n in now if now[n] != reference[n]}
    assert differing == rejected
    # the same refusal is not retried with the same values (it would fail again)
    again = org.sync()
    assert (again.writeback or {})["skipped_known_rejects"] == len(rejected)
    assert again.records_written == 0


def test_a_spent_cycle_budget_stops_cleanly_and_the_next_cycles_resume(
    sandbox_factory: SandboxFactory,
    tmp_path: Path,
    reference: dict[str, dict[str, Any]],
) -> None:
    """A cycle stops at its share of the daily limit; later cycles finish the same work."""
    org = _org(
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
    org = _org(
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


def test_without_icp_fields_sync_reads_scores_and_writes_nothing(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """An org whose admin has not created the ICP fields still syncs; check says what to do."""
    org = _org(sandbox_factory, tmp_path)
    result = org.sync()
    connector = org.connector()
    items = {i.name: i for i in connector.check()}
    connector.close()

    assert result.status == "ok"
    assert result.records_written == 0
    assert "setup-fields" in (result.writeback or {})["skipped"]
    assert org.stats()["records_written"] == 0
    assert not items["write-back fields"].ok
    assert "icp-sync setup-fields" in items["write-back fields"].fix
    assert "ICP_Tier_Override__c" in items["Account fields"].detail


def test_setup_fields_is_idempotent(sandbox_factory: SandboxFactory, tmp_path: Path) -> None:
    """A second setup-fields creates nothing and costs only the two describe calls."""
    org = _org(sandbox_factory, tmp_path)
    org.setup_fields()
    org.reset_stats()
    connector = org.connector()
    result = connector.ensure_fields(dry_run=False)
    connector.close()

    assert result.created == []
    assert len(result.existing) == 14
    assert _count("POST tooling/sobjects/CustomField", org.stats()) == 0
    assert org.stats()["calls"] == 3  # token and two describes


def test_tls_is_verified_and_requests_ca_bundle_does_not_override_the_config(
    sandbox_factory: SandboxFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The configured CA is used even with REQUESTS_CA_BUNDLE set; without it, TLS fails."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    org = _org(sandbox_factory, tmp_path)
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


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        ("Acme", "'Acme'"),
        ("O'Brien & Sons", "'O\\'Brien & Sons'"),
        ("back\\slash", "'back\\\\slash'"),
        ("line\nbreak", "'line\\nbreak'"),
        ("x' OR Name != '", "'x\\' OR Name != \\''"),
    ],
)
def test_soql_literals_are_escaped(value: str, literal: str) -> None:
    """Strings put into SOQL are quoted and escaped, so a value can never become syntax."""
    assert soql_literal(value) == literal


def test_an_escaped_literal_round_trips_through_the_org(sandbox: Sandbox) -> None:
    """A name with quotes and backslashes, escaped, finds exactly its own record."""
    sf = salesforce_client(sandbox)
    name = "O'Brien \\ Partners' Ltd"
    created = sf.Account.create({"Name": name})
    rows = sf.query(f"SELECT Id FROM Account WHERE Name = {soql_literal(name)}")["records"]
    assert [r["Id"] for r in rows] == [created["id"]]


def _credentials(sandbox: Sandbox) -> dict[str, str]:
    document = json.loads((sandbox.directory / "credentials.json").read_text(encoding="utf-8"))
    credentials: dict[str, str] = document["salesforce"]
    return credentials


def _auth(sandbox: Sandbox, tmp_path: Path, mode: str) -> dict[str, Any]:
    """Config values for one login flow, secrets in files as a user would keep them."""
    creds = _credentials(sandbox)
    url = sandbox.salesforce.url

    def secret(name: str, value: str) -> str:
        path = tmp_path / f"{name}.secret"
        path.write_text(value, encoding="utf-8")
        return f"file:{path}"

    if mode == "password":
        return {
            "auth": "password",
            "login_url": url,
            "instance_url": None,
            "username": creds["username"],
            "password": secret("password", creds["password"]),
            "security_token": secret("token", creds["security_token"]),
        }
    if mode == "jwt":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        return {
            "auth": "jwt",
            "login_url": url,
            "instance_url": None,
            "username": creds["username"],
            "private_key": secret("key", pem),
        }
    return {"auth": "session", "session_id": secret("session", creds["access_token"])}


@pytest.mark.parametrize("mode", ["client_credentials", "password", "jwt", "session"])
def test_every_login_flow_syncs_and_renews_an_expired_session(
    sandbox_factory: SandboxFactory, tmp_path: Path, mode: str
) -> None:
    """Each auth mode logs in, and an expiring session is renewed and the cycle completes."""
    org = _org(sandbox_factory, tmp_path)
    if mode != "client_credentials":
        assert org.settings.salesforce is not None
        raw = _auth(org.sandbox, tmp_path, mode)
        merged = org.settings.salesforce.model_dump() | raw
        org.settings = org.settings.model_copy(
            update={"salesforce": type(org.settings.salesforce).model_validate(merged)}
        )
    expiry = 0 if mode == "session" else 6  # a given session id cannot be renewed by us
    org.faults(FaultProfile(session_expiry_after=expiry))
    org.setup_fields()
    result = org.sync()

    assert result.status == "ok"
    assert result.records_written > 900
    logins = _count("POST oauth2/token", org.stats())
    if mode == "session":
        assert logins == 0
    else:
        assert logins > 2  # logged in again after every expiry


def test_wrong_credentials_are_reported_by_check_without_the_secret(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """A refused login is a plain 'check' line that never shows the secret."""
    org = _org(sandbox_factory, tmp_path)
    assert org.settings.salesforce is not None
    (tmp_path / "bad.secret").write_text("not-the-secret", encoding="utf-8")
    merged = org.settings.salesforce.model_dump() | {
        "client_secret": f"file:{tmp_path / 'bad.secret'}"
    }
    config = type(org.settings.salesforce).model_validate(merged)
    connector = SalesforceConnector(config, sleep=lambda _: None)
    items = connector.check()
    connector.close()

    assert [i.name for i in items] == ["salesforce login"]
    assert not items[0].ok
    assert "refused" in items[0].detail
    assert "not-the-secret" not in items[0].detail
