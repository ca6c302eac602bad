"""Running the sandbox: generate (or reload) the data, serve both CRMs, describe the way in.

A sandbox lives in a folder: its TLS certificate authority, its credentials and, when
asked to persist, the state of each CRM, saved on stop and reloaded on the next start.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from icp_sync.sandbox.accounting import ApiStats
from icp_sync.sandbox.faults import FaultInjector, FaultProfile
from icp_sync.sandbox.generate import generate
from icp_sync.sandbox.hubspot.app import HubSpotCredentials, create_hubspot_app
from icp_sync.sandbox.hubspot.load import link
from icp_sync.sandbox.hubspot.load import load_canonical as load_portal
from icp_sync.sandbox.hubspot.persist import read_portal, save_portal
from icp_sync.sandbox.hubspot.portal import HubSpotPortal
from icp_sync.sandbox.salesforce.app import SalesforceCredentials, create_salesforce_app
from icp_sync.sandbox.salesforce.load import load_canonical as load_org
from icp_sync.sandbox.salesforce.org import SalesforceOrg
from icp_sync.sandbox.salesforce.persist import read_org, save_org
from icp_sync.sandbox.server import ServerThread, make_tls

__all__ = ["Sandbox", "SandboxSettings"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SandboxSettings:
    """How to run a sandbox.

    Attributes:
        directory: Where the CA, credentials and saved state live.
        accounts: Accounts to generate when there is no saved state.
        seed: Seed of the generated data.
        signal: Plant an ICP in the generated data.
        faults: The fault profile of both CRMs.
        salesforce_port: Port of the Salesforce API (0: any free port).
        hubspot_port: Port of the HubSpot API (0: any free port).
        persist: Reload saved state at start and save it at stop.
        daily_api_limit: Salesforce ``DailyApiRequests`` Max.
        linked: Serve the two CRMs as one company runs both: HubSpot companies carry the
            Salesforce Account id in ``salesforceaccountid`` (6 in 10), or are found by
            domain (3 in 10) or only by name and country (1 in 10, domain left empty), and
            2 in 100 more companies exist only in HubSpot.
        opportunities: Pad the generated history with earlier lost deals up to this many
            opportunities (0: as drawn, about 3 per account).
    """

    directory: Path
    accounts: int = 5_000
    seed: int = 0
    signal: bool = True
    faults: FaultProfile = field(default_factory=FaultProfile)
    salesforce_port: int = 0
    hubspot_port: int = 0
    persist: bool = False
    daily_api_limit: int = 100_000
    linked: bool = False
    opportunities: int = 0


class Sandbox:
    """Both CRM emulators, serving until :meth:`stop`."""

    def __init__(self, settings: SandboxSettings) -> None:
        self.settings = settings
        self.directory = settings.directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self._credentials = self._load_credentials()
        self.tls = make_tls(self.directory / "tls")
        self.org, self.portal = self._load_or_generate()
        self.salesforce_stats = ApiStats()
        self.hubspot_stats = ApiStats()
        self.salesforce_faults = FaultInjector(settings.faults)
        self.hubspot_faults = FaultInjector(settings.faults)
        sf = self._credentials["salesforce"]
        hs = self._credentials["hubspot"]
        self.salesforce = ServerThread(
            create_salesforce_app(
                self.org,
                credentials=SalesforceCredentials(**sf),
                stats=self.salesforce_stats,
                faults=self.salesforce_faults,
            ),
            port=settings.salesforce_port,
            tls=self.tls,
            date_header=False,  # the org's clock stamps Date
        )
        self.hubspot = ServerThread(
            create_hubspot_app(
                self.portal,
                credentials=HubSpotCredentials(**hs),
                stats=self.hubspot_stats,
                faults=self.hubspot_faults,
            ),
            port=settings.hubspot_port,
        )

    def _load_credentials(self) -> dict[str, dict[str, str]]:
        path = self.directory / "credentials.json"
        if path.exists():
            loaded: dict[str, dict[str, str]] = json.loads(path.read_text(encoding="utf-8"))
            return loaded
        credentials = {
            "salesforce": {
                "access_token": f"00D5g0000000001!{secrets.token_urlsafe(24)}",
                "client_id": f"3MVG9sandbox{secrets.token_hex(8)}",
                "client_secret": secrets.token_hex(16),
                "username": "integration@sandbox.example",
                "password": secrets.token_urlsafe(12),
                "security_token": secrets.token_urlsafe(8),
            },
            "hubspot": {
                "access_token": f"pat-sandbox-{secrets.token_hex(16)}",
                "client_id": secrets.token_hex(8),
                "client_secret": secrets.token_hex(16),
                "refresh_token": secrets.token_hex(16),
            },
        }
        path.write_text(json.dumps(credentials, indent=1), encoding="utf-8")
        path.chmod(0o600)
        return credentials

    @property
    def _org_file(self) -> Path:
        return self.directory / "salesforce-org.json.gz"

    @property
    def _portal_file(self) -> Path:
        return self.directory / "hubspot-portal.json.gz"

    def _load_or_generate(self) -> tuple[SalesforceOrg, HubSpotPortal]:
        settings = self.settings
        if settings.persist and self._org_file.exists() and self._portal_file.exists():
            return read_org(self._org_file), read_portal(self._portal_file)
        crm = generate(
            settings.accounts,
            seed=settings.seed,
            signal=settings.signal,
            opportunities_wanted=settings.opportunities,
        )
        org = SalesforceOrg(daily_api_limit=settings.daily_api_limit)
        sf_ids = load_org(org, crm.accounts, crm.opportunities, crm.owners)
        portal = HubSpotPortal()
        hs_ids = load_portal(portal, crm.accounts, crm.opportunities, crm.owners)
        if settings.linked:
            link(portal, crm.accounts, sf_ids, hs_ids, seed=settings.seed)
        (self.directory / "truth.json").write_text(json.dumps(crm.truth), encoding="utf-8")
        return org, portal

    def start(self) -> Sandbox:
        """Serve both CRMs; returns once both accept connections."""
        self.salesforce.start()
        try:
            self.hubspot.start()
        except BaseException:
            self.salesforce.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop serving (and save the state when persisting)."""
        self.salesforce.stop()
        self.hubspot.stop()
        if self.settings.persist:
            save_org(self.org, self._org_file)
            save_portal(self.portal, self._portal_file)

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def info(self) -> dict[str, Any]:
        """How to connect (contract of ``sandbox serve --json``)."""
        return {
            "salesforce": {
                "instance_url": self.salesforce.url,
                "access_token": self._credentials["salesforce"]["access_token"],
                "ca_file": str(self.tls.ca_file),
            },
            "hubspot": {
                "base_url": self.hubspot.url,
                "access_token": self._credentials["hubspot"]["access_token"],
            },
        }

    def write_config(self, path: Path, *, crm: str = "salesforce") -> Path:
        """Write a complete icp-sync config that connects to this sandbox.

        Secrets go to files in the sandbox's own folder (``<dir>/secrets``, mode 600),
        referenced as ``file:`` paths, so nothing secret lands beside the config (e.g. in a
        checkout); the state store is a SQLite file beside the config.
        """
        secret_dir = self.directory / "secrets"
        secret_dir.mkdir(parents=True, exist_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)

        def secret(name: str, value: str) -> str:
            target = secret_dir / name
            target.write_text(value, encoding="utf-8")
            target.chmod(0o600)
            return f"file:{target}"

        def salesforce() -> str:
            sf = self._credentials["salesforce"]
            return f"""[salesforce]
auth = "client_credentials"
instance_url = "{self.salesforce.url}"
client_id = "{secret("salesforce-client-id", sf["client_id"])}"
client_secret = "{secret("salesforce-client-secret", sf["client_secret"])}"
ca_file = "{self.tls.ca_file}"
"""

        def hubspot() -> str:
            hs = self._credentials["hubspot"]
            return f"""[hubspot]
base_url = "{self.hubspot.url}"
access_token = "{secret("hubspot-access-token", hs["access_token"])}"
"""

        sections = {
            "salesforce": (salesforce,),
            "hubspot": (hubspot,),
            "salesforce+hubspot": (salesforce, hubspot),
        }
        if crm not in sections:
            raise ValueError(f"unknown CRM {crm!r}: salesforce, hubspot or salesforce+hubspot")
        body = f'[crm]\nconnector = "{crm}"\n\n' + "\n".join(part() for part in sections[crm])
        path.write_text(
            f"""# Connects to the icp-sync sandbox in {self.directory}
# (written by `icp-sync sandbox serve --write-config`).

{body}
[store]
url = "sqlite:///icp-sync.db"
""",
            encoding="utf-8",
        )
        return path
