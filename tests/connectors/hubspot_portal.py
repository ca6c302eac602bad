"""A sandbox HubSpot portal with an icp-sync config and store, and the sandbox's accounting.

Every call is counted by the sandbox (``GET /__sandbox/stats`` of the HubSpot port), not by
the connector, so the numbers the tests assert are what a real portal would count.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from connectors.hubspot.connector import HubSpotConnector
from icp_sync.config import Settings, load_settings
from icp_sync.model import OWNED, WRITTEN_ACCOUNT_FIELDS
from icp_sync.pipeline import SyncResult, sync
from icp_sync.sandbox.faults import FaultProfile
from icp_sync.sandbox.service import Sandbox
from icp_sync.store import Store, StoredConnectorState
from tests.conftest import SandboxFactory

__all__ = ["ICP_PROPERTIES", "Portal", "calls", "make_portal"]

ICP_PROPERTIES = tuple(OWNED[f].hubspot for f in WRITTEN_ACCOUNT_FIELDS if f != "scored_at")


@dataclass
class Portal:
    """One sandbox portal with an icp-sync config, a state store and call accounting."""

    sandbox: Sandbox
    settings: Settings
    store: Store

    def connector(self, **config: Any) -> HubSpotConnector:
        """A connector as the CLI builds it, minus real sleeping between retries."""
        assert self.settings.hubspot is not None
        section = self.settings.hubspot.model_copy(update=config)
        return HubSpotConnector(section, state=self.state(), sleep=lambda _: None)

    def state(self) -> StoredConnectorState:
        """The connector's own state as the store keeps it."""
        return StoredConnectorState(self.store.ledger, "hubspot")

    def sync(
        self, *, now: datetime | None = None, compliance: bool = False, **kwargs: Any
    ) -> SyncResult:
        """One sync cycle, as `icp-sync sync` runs it.

        The compliance monitor (deal properties and alerts) runs only when asked, so that the
        call and write counts of the company write-back tests are the write-back's alone.
        """
        stamp = now or datetime.now(UTC)
        connector = kwargs.pop("connector", None) or self.connector()
        try:
            return sync(
                self.settings,
                self.store,
                run_id=f"r{stamp.timestamp()}",
                now=stamp,
                connector=connector,
                compliance=compliance,
                **kwargs,
            )
        finally:
            connector.close()

    def setup_fields(self) -> None:
        """Create the ICP properties, as `icp-sync setup-fields` does."""
        connector = self.connector()
        result = connector.ensure_fields(dry_run=False)
        connector.close()
        assert not result.failed, result.failed

    def control(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call a control endpoint of the HubSpot port; its JSON answer."""
        response = requests.request(
            method, f"{self.sandbox.hubspot.url}{path}", timeout=10, **kwargs
        )
        response.raise_for_status()
        return response.json()

    def stats(self) -> dict[str, Any]:
        """The HubSpot port's accounting."""
        stats: dict[str, Any] = self.control("GET", "/__sandbox/stats")
        return stats

    def reset_stats(self) -> None:
        """Zero the HubSpot port's accounting."""
        self.control("POST", "/__sandbox/reset-stats")

    def faults(self, profile: FaultProfile) -> None:
        """Set the fault profile of the HubSpot port."""
        self.control("POST", "/__sandbox/faults", json=profile.as_dict())

    def limits(self, **limits: int) -> dict[str, Any]:
        """Change (and read) the portal's rate limits and search cap."""
        answer: dict[str, Any] = self.control("POST", "/__sandbox/limits", json=limits)
        return answer

    def icp_values(self) -> dict[str, dict[str, Any]]:
        """Live company id -> the ICP properties as the portal holds them now."""
        portal = self.sandbox.portal
        with portal.lock:
            return {
                r.id: {p: r.properties.get(p) for p in ICP_PROPERTIES}
                for r in portal.records["companies"].values()
                if not r.archived
            }

    def touch(self, ids: list[str], **values: str | None) -> None:
        """Change companies as a HubSpot user would (each write moves its stamp)."""
        portal = self.sandbox.portal
        for record_id in ids:
            portal.write("companies", record_id, portal.checked("companies", values))


def make_portal(
    factory: SandboxFactory, tmp_path: Path, *, accounts: int = 1000, **hubspot: Any
) -> Portal:
    """A sandbox and an icp-sync config pointing at its HubSpot portal."""
    sandbox: Sandbox = factory(
        accounts=accounts, **hubspot.pop("sandbox", {}), directory=tmp_path / "sandbox"
    )
    config = sandbox.write_config(tmp_path / "icp-sync.toml", crm="hubspot")
    settings = load_settings(config)
    assert settings.hubspot is not None
    settings = settings.model_copy(update={"hubspot": settings.hubspot.model_copy(update=hubspot)})
    store = Store.open(settings.store.url)
    return Portal(sandbox=sandbox, settings=settings, store=store)


def calls(stats: dict[str, Any], prefix: str = "") -> int:
    """Calls to endpoints whose name starts with ``prefix`` ("" counts all)."""
    return sum(v["calls"] for name, v in stats["by_endpoint"].items() if name.startswith(prefix))
