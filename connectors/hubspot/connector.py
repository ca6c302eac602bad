"""The HubSpot connector: the protocol of :mod:`connectors.base`, composed of its parts.

:mod:`~connectors.hubspot.client` (the API, pacing, retries and budget),
:mod:`~connectors.hubspot.auth`, :mod:`~connectors.hubspot.extract`,
:mod:`~connectors.hubspot.write` and :mod:`~connectors.hubspot.fields`; this module wires
them together and answers ``icp-sync check``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from connectors.base import (
    ApiUsage,
    ApplyBatch,
    Batch,
    CheckItem,
    ConnectorState,
    CrmTask,
    FieldSetup,
)
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.config import HubSpotConfig
from connectors.hubspot.extract import Extractor
from connectors.hubspot.fields import KIND, Metadata
from connectors.hubspot.tasks import create_task
from connectors.hubspot.write import Writer
from icp_sync.errors import AuthError, ConnectorError
from icp_sync.model import CrmObject
from icp_sync.writeback import Plan

__all__ = ["HubSpotConnector"]


class _MemoryState:
    """Connector state kept in memory, when no state store is given."""

    def __init__(self) -> None:
        self._state: dict[str, Any] = {}

    def load(self) -> dict[str, Any]:
        return dict(self._state)

    def save(self, state: dict[str, Any]) -> None:
        self._state = dict(state)


class HubSpotConnector:
    """Reads companies and deals from HubSpot and writes owned properties back.

    Args:
        config: The ``[hubspot]`` section.
        state: Where the connector keeps its metadata cache, rotated refresh token and the
            write in flight.
        sleep: How to wait between retries and for the rate limits (injected by tests).
    """

    name = "hubspot"

    def __init__(
        self,
        config: HubSpotConfig,
        *,
        state: ConnectorState | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._config = config
        self._state = state or _MemoryState()
        self._client = HubSpotClient(config, self._state, sleep=sleep)
        self._metadata = Metadata(self._client, config, self._state)
        self._extractor = Extractor(self._client, config, self._metadata, self._state)
        self._writer = Writer(self._client, config, self._metadata, self._state)

    def usage(self) -> ApiUsage:
        """Calls made by this connector, and the portal's daily allowance as last reported."""
        return self._client.usage()

    def close(self) -> None:
        """Release the connection pools."""
        self._client.close()

    def extract(self, obj: CrmObject, *, since: str | None, now: datetime) -> Iterator[Batch]:
        """Records of ``obj`` changed since ``since`` (an ``hs_lastmodifieddate``)."""
        return self._extractor.extract(obj, since=since, now=now)

    def create_task(self, task: CrmTask) -> str:
        """A task for the deal's owner, associated with the deal, unless one with its key
        exists."""
        return create_task(self._client, task)

    def writable_fields(self) -> dict[str, str]:
        """Owned field -> property name, for those that exist (companies, and deals)."""
        return self._metadata.writable(CrmObject.ACCOUNT) | self._metadata.writable(
            CrmObject.OPPORTUNITY
        )

    def ensure_fields(self, *, dry_run: bool) -> FieldSetup:
        """Create the ``icp_sync`` group and the missing owned properties (idempotent)."""
        return self._metadata.ensure(dry_run=dry_run)

    def apply(self, plan: Plan) -> Iterator[ApplyBatch]:
        """Write the plan's company or deal changes, 100 a call; yields every call's results."""
        return self._writer.apply(plan)

    def check(self) -> list[CheckItem]:
        """Access, API limits, readable properties, deal stages, write-back properties."""
        self._metadata.forget()
        try:
            existing = {kind: self._metadata.existing(kind) for kind in KIND.values()}
        except AuthError as exc:
            return [
                CheckItem(
                    name="hubspot access",
                    ok=False,
                    detail=str(exc),
                    fix="check the token (or the OAuth app's refresh token) and its scopes: "
                    "crm.objects.companies.read/write, crm.objects.deals.read/write, "
                    "crm.schemas.companies.write, crm.schemas.deals.write",
                )
            ]
        except ConnectorError as exc:
            return [
                CheckItem(
                    name="hubspot connection",
                    ok=False,
                    detail=str(exc),
                    fix="check hubspot.base_url and the network",
                )
            ]
        usage = self._client.usage()
        items = [
            CheckItem(name="hubspot access", ok=True, detail=f"{self._config.auth} token accepted"),
            CheckItem(
                name="API budget",
                ok=True,
                detail=(
                    f"{usage.remaining:,} of {usage.limit:,} daily calls left; a cycle may use "
                    f"{self._config.budget_share:.0%}"
                )
                if usage.limit is not None and usage.remaining is not None
                else "the portal reports no daily limit (OAuth app)",
            ),
        ]
        fields = self._config.fields
        for obj, mapping, extra in (
            (CrmObject.ACCOUNT, fields.company, fields.company_attributes),
            (CrmObject.OPPORTUNITY, fields.deal, fields.deal_attributes),
        ):
            kind = KIND[obj]
            absent = [f"{c} ({p})" for c, p in mapping.items() if p not in existing[kind]]
            absent += [f"attr_{n} ({p})" for n, p in extra.items() if p not in existing[kind]]
            required = [a for a in absent if a.split(" ")[0] in ("name", "modified_at")]
            items.append(
                CheckItem(
                    name=f"{kind} properties",
                    ok=not absent,
                    required=bool(required),
                    detail=f"{len(mapping) + len(extra) - len(absent)} mapped properties readable"
                    + (f"; missing: {', '.join(absent)}" if absent else ""),
                    fix=""
                    if not absent
                    else "create the properties or fix the hubspot.fields mapping; optional "
                    "ones are left empty",
                )
            )
        stages = self._metadata.stages()
        items.append(
            CheckItem(
                name="deal stages",
                ok=bool(stages),
                required=False,
                detail=", ".join(f"{s}={v}" for s, v in sorted(stages.items())) or "none found",
                fix="" if stages else "map stage ids in hubspot.stages (open, won or lost)",
            )
        )
        writable = self._metadata.writable(CrmObject.ACCOUNT)
        missing = sorted(set(fields.writeback) - set(writable))
        items.append(
            CheckItem(
                name="write-back fields",
                ok=not missing,
                required=False,
                detail=f"{len(writable)} of {len(fields.writeback)} ICP properties exist on "
                "companies"
                + (
                    f"; missing: {', '.join(fields.writeback[m] for m in missing)}"
                    if missing
                    else ""
                )
                + ("; native ICP properties written too" if self._metadata.native() else ""),
                fix="run `icp-sync setup-fields`" if missing else "",
            )
        )
        return items
