"""Salesforce and HubSpot at once (``crm.connector = "salesforce+hubspot"``).

Salesforce is the primary CRM: its Accounts and Opportunities are mirrored and scored, and
as a connector this composite reads and writes Salesforce. HubSpot rides along: ``check``
and ``setup-fields`` cover both CRMs, and the pipeline's dual step (``icp_sync.pipeline.dual``)
reads HubSpot's companies, matches them onto the Accounts and writes them the same values.
Each CRM keeps its own part of the one connector state.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from typing import Any

from connectors.base import ApiUsage, ApplyBatch, Batch, CheckItem, ConnectorState, FieldSetup
from connectors.hubspot.config import HubSpotConfig
from connectors.hubspot.connector import HubSpotConnector
from connectors.salesforce.config import SalesforceConfig
from connectors.salesforce.connector import SalesforceConnector
from icp_sync.model import CrmObject
from icp_sync.writeback import Plan

__all__ = ["BothCrms", "PartState"]


class _Memory:
    """State kept in memory, when no state store is given."""

    def __init__(self) -> None:
        self._state: dict[str, Any] = {}

    def load(self) -> dict[str, Any]:
        return dict(self._state)

    def save(self, state: dict[str, Any]) -> None:
        self._state = dict(state)


class PartState:
    """One CRM's part (``key``) of a shared connector state."""

    def __init__(self, state: ConnectorState, key: str) -> None:
        self._state = state
        self._key = key

    def load(self) -> dict[str, Any]:
        """This part's state."""
        part: dict[str, Any] = dict(self._state.load().get(self._key) or {})
        return part

    def save(self, state: dict[str, Any]) -> None:
        """Replace this part's state."""
        whole = self._state.load()
        whole[self._key] = state
        self._state.save(whole)


class BothCrms:
    """Salesforce (primary, mirrored and scored) with HubSpot alongside."""

    name = "salesforce+hubspot"

    def __init__(
        self,
        salesforce: SalesforceConfig,
        hubspot: HubSpotConfig,
        state: ConnectorState | None = None,
    ) -> None:
        state = state or _Memory()
        self.salesforce = SalesforceConnector(salesforce, state=PartState(state, "salesforce"))
        self.hubspot_state = PartState(state, "hubspot")
        self.hubspot = HubSpotConnector(hubspot, state=self.hubspot_state)

    def check(self) -> list[CheckItem]:
        """Both CRMs' findings, each named after its CRM."""
        return [
            replace(item, name=f"{crm}: {item.name}")
            for crm, connector in (("salesforce", self.salesforce), ("hubspot", self.hubspot))
            for item in connector.check()
        ]

    def extract(self, obj: CrmObject, *, since: str | None, now: datetime) -> Iterator[Batch]:
        """The primary CRM's records."""
        return self.salesforce.extract(obj, since=since, now=now)

    def writable_fields(self) -> dict[str, str]:
        """The primary CRM's owned fields that exist."""
        return self.salesforce.writable_fields()

    def ensure_fields(self, *, dry_run: bool) -> FieldSetup:
        """Create the owned fields in both CRMs."""
        first = self.salesforce.ensure_fields(dry_run=dry_run)
        second = self.hubspot.ensure_fields(dry_run=dry_run)
        return FieldSetup(
            existing=first.existing + second.existing,
            created=first.created + second.created,
            failed=first.failed | second.failed,
            dry_run=dry_run,
        )

    def apply(self, plan: Plan) -> Iterator[ApplyBatch]:
        """Write a plan to the primary CRM."""
        return self.salesforce.apply(plan)

    def usage(self) -> ApiUsage:
        """Calls to both CRMs (endpoints prefixed by CRM)."""
        parts = {"salesforce": self.salesforce.usage(), "hubspot": self.hubspot.usage()}
        return ApiUsage(
            calls=sum(u.calls for u in parts.values()),
            by_endpoint={
                f"{crm} {name}": n for crm, u in parts.items() for name, n in u.by_endpoint.items()
            },
        )

    def close(self) -> None:
        """Release both CRMs' connections."""
        self.salesforce.close()
        self.hubspot.close()
