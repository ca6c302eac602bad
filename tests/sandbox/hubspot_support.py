"""Helpers for the HubSpot emulator tests: SDK refusals and the sandbox control endpoints."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from hubspot.crm.associations.v4.exceptions import ApiException as AssociationsError
from hubspot.crm.companies.exceptions import ApiException as CompaniesError
from hubspot.crm.deals.exceptions import ApiException as DealsError
from hubspot.crm.objects.exceptions import ApiException as ObjectsError
from hubspot.crm.owners.exceptions import ApiException as OwnersError
from hubspot.crm.pipelines.exceptions import ApiException as PipelinesError
from hubspot.crm.properties.exceptions import ApiException as PropertiesError
from hubspot.oauth.exceptions import ApiException as OAuthError

from icp_sync.sandbox.service import Sandbox

API_ERRORS = (
    AssociationsError,
    CompaniesError,
    DealsError,
    ObjectsError,
    OwnersError,
    PipelinesError,
    PropertiesError,
    OAuthError,
)
SMALL = 300


@dataclass(frozen=True, slots=True)
class Refusal:
    """What an SDK call that failed brought back."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str]


def refused_call(call: Callable[[], object]) -> Refusal:
    """Run an SDK call that must fail; what it brought back."""
    with pytest.raises(API_ERRORS) as raised:
        call()
    error = raised.value
    headers = {k.lower(): v for k, v in (error.headers or {}).items()}
    try:
        body = json.loads(error.body)
    except (TypeError, ValueError):
        body = {"raw": error.body}
    return Refusal(error.status, body, headers)


def control_call(sandbox: Sandbox, method: str, path: str, **kwargs: Any) -> Any:
    """Call a control endpoint of the HubSpot port; its JSON answer."""
    response = requests.request(method, f"{sandbox.hubspot.url}{path}", timeout=10, **kwargs)
    response.raise_for_status()
    return response.json()


def read_stats(sandbox: Sandbox) -> dict[str, Any]:
    """The HubSpot port's API accounting."""
    stats: dict[str, Any] = control_call(sandbox, "GET", "/__sandbox/stats")
    return stats


def reset_stats(sandbox: Sandbox) -> None:
    """Zero the HubSpot port's API accounting."""
    control_call(sandbox, "POST", "/__sandbox/reset-stats")


def set_limits(sandbox: Sandbox, **limits: int) -> None:
    """Change the portal's rate limits."""
    control_call(sandbox, "POST", "/__sandbox/limits", json=limits)


def live_ids(sandbox: Sandbox, kind: str) -> list[str]:
    """Ids of the portal's live (not archived) records of one kind, in id order."""
    records = sandbox.portal.records[kind].values()
    return sorted((r.id for r in records if not r.archived), key=int)


def header_map(raw: Any) -> dict[str, str]:
    """Response headers with lower-case names."""
    return {k.lower(): v for k, v in dict(raw).items()}
