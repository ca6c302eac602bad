"""The real client libraries, pointed at a running sandbox, as a user would configure them."""

from __future__ import annotations

from typing import Any

import requests
from hubspot import HubSpot
from simple_salesforce import Salesforce

from icp_sync.sandbox.service import Sandbox

__all__ = ["hubspot_client", "salesforce_client"]


def salesforce_client(sandbox: Sandbox, **kwargs: Any) -> Salesforce:
    """simple-salesforce on the sandbox org with its access token, verifying TLS with its CA."""
    info = sandbox.info()["salesforce"]
    session = requests.Session()
    session.trust_env = False  # else REQUESTS_CA_BUNDLE from the environment replaces the CA
    session.verify = info["ca_file"]
    return Salesforce(
        instance_url=info["instance_url"],
        session_id=info["access_token"],
        session=session,
        **kwargs,
    )


def hubspot_client(sandbox: Sandbox, *, access_token: str | None = None) -> HubSpot:
    """hubspot-api-client on the sandbox portal, with strict client-side validation."""
    info = sandbox.info()["hubspot"]
    return HubSpot(
        access_token=access_token or info["access_token"],
        host=info["base_url"],
        client_side_validation=True,
    )
