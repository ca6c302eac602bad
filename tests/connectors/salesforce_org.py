"""A sandbox org with an icp-sync config and store, and the sandbox's own call accounting.

Every call is counted by the sandbox (``GET /__sandbox/stats``), not by the connector, so the
numbers the tests assert are what a real org would bill.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from connectors.salesforce.connector import SalesforceConnector
from icp_sync.config import Settings, load_settings
from icp_sync.pipeline import SyncResult, sync
from icp_sync.sandbox.faults import FaultProfile
from icp_sync.sandbox.service import Sandbox
from icp_sync.store import Store, StoredConnectorState
from tests.conftest import SandboxFactory
from tests.crm_clients import salesforce_client

__all__ = ["ICP_FIELDS", "Org", "count", "make_org", "names_not_in_tier", "override", "queries"]


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

    def connector_state(self) -> StoredConnectorState:
        """The connector's own state as the store keeps it."""
        return StoredConnectorState(self.store.ledger, "salesforce")

    def sync(
        self, *, now: datetime | None = None, compliance: bool = False, **kwargs: Any
    ) -> SyncResult:
        """One sync cycle, as `icp-sync sync` runs it (``now``: the client's clock).

        The compliance monitor (deal fields and alerts) runs only when asked, so that the
        call and write counts of the Account write-back tests are the write-back's alone.
        """
        stamp = now or datetime.now(UTC)
        return sync(
            self.settings,
            self.store,
            run_id=f"r{stamp.timestamp()}",
            now=stamp,
            connector=self.connector(),
            compliance=compliance,
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


def make_org(
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


def queries(stats: dict[str, Any]) -> int:
    by = stats["by_endpoint"]
    return sum(v["calls"] for name, v in by.items() if name.split(" ")[-1].startswith("query"))


def count(name: str, stats: dict[str, Any]) -> int:
    """Calls to one endpoint ("METHOD name"), or to all whose name starts with ``name*``."""
    by = stats["by_endpoint"]
    if name.endswith("*"):
        return sum(v["calls"] for endpoint, v in by.items() if endpoint.startswith(name[:-1]))
    return int(by.get(name, {}).get("calls", 0))


def override(org: Org, ids: list[str], tier: str) -> None:
    """Account owners set the ICP tier override by hand (in the UI, as themselves)."""
    sf = salesforce_client(org.sandbox)
    rows = sf.query_all("SELECT Id, OwnerId FROM Account")["records"]
    wanted = set(ids)
    for row in rows:
        if row["Id"] in wanted:
            org.sandbox.org.update(
                "Account", row["Id"], {"ICP_Tier_Override__c": tier}, user=row["OwnerId"]
            )


def names_not_in_tier(org: Org, tier: str, k: int) -> list[str]:
    current = org.icp_fields()
    return sorted(n for n, f in current.items() if f["ICP_Tier__c"] != tier)[:k]
