"""The Salesforce connector: the protocol of :mod:`connectors.base`, composed of its parts.

:mod:`~connectors.salesforce.client` (the API, retries and budget),
:mod:`~connectors.salesforce.auth`, :mod:`~connectors.salesforce.extract`,
:mod:`~connectors.salesforce.write` and :mod:`~connectors.salesforce.fields`; this module
wires them together and answers ``icp-sync check``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import requests

from connectors.base import (
    ApiUsage,
    ApplyBatch,
    Batch,
    CheckItem,
    ConnectorState,
    CrmTask,
    FieldSetup,
)
from connectors.salesforce.auth import Token
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.config import SalesforceConfig
from connectors.salesforce.extract import Extractor, soql_literal
from connectors.salesforce.fields import SOBJECT, Fields
from connectors.salesforce.tasks import create_task
from connectors.salesforce.write import Writer
from icp_sync.errors import AuthError, ConnectorError
from icp_sync.model import CrmObject
from icp_sync.writeback import Plan

__all__ = ["SalesforceConnector", "soql_literal"]


class _MemoryState:
    """Connector state kept in memory, when no state store is given."""

    def __init__(self) -> None:
        self._state: dict[str, Any] = {}

    def load(self) -> dict[str, Any]:
        return dict(self._state)

    def save(self, state: dict[str, Any]) -> None:
        self._state = dict(state)


class SalesforceConnector:
    """Reads accounts and opportunities from Salesforce and writes owned fields back.

    Args:
        config: The ``[salesforce]`` section.
        state: Where the connector keeps its write windows and integration user id.
        session: A requests session to use (default: one built from the TLS settings).
        sleep: How to wait between retries (injected by tests).
        bulk_wait: First wait between bulk job status polls, in seconds.
    """

    name = "salesforce"

    def __init__(
        self,
        config: SalesforceConfig,
        *,
        state: ConnectorState | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        bulk_wait: float = 1.0,
    ) -> None:
        self._config = config
        self._state = state or _MemoryState()
        self._client = SalesforceClient(
            config, session=session, sleep=sleep, on_login=self._logged_in
        )
        self._fields = Fields(self._client, config.fields)
        self._extractor = Extractor(
            self._client, config, self._fields, self._state, bulk_wait=bulk_wait
        )
        self._writer = Writer(self._client, config, self._fields, self._state, bulk_wait=bulk_wait)

    def _logged_in(self, token: Token) -> None:
        if token.user_id:
            state = self._state.load()
            state["user_id"] = token.user_id
            self._state.save(state)

    def usage(self) -> ApiUsage:
        """Calls made by this connector, and the org's daily allowance as last reported."""
        return self._client.usage()

    def close(self) -> None:
        """Release the HTTP session (after a read-ahead still running)."""
        self._extractor.close()
        self._client.close()

    def refresh_metadata(self) -> None:
        """Forget the described field lists; the next use describes again (one call each)."""
        self._fields.forget()

    def create_task(self, task: CrmTask) -> str:
        """A ``Task`` for the deal's owner on the deal, unless one with its key exists."""
        return create_task(self._client, task)

    def read_limits(self) -> dict[str, Any]:
        """The org's ``/limits`` (also primes the budget guard)."""
        return self._client.read_limits()

    def extract(self, obj: CrmObject, *, since: str | None, now: datetime) -> Iterator[Batch]:
        """Records of ``obj`` changed since ``since`` (a ``SystemModstamp``), up to ``now``."""
        return self._extractor.extract(obj, since=since, now=now)

    def prefetch(self, cursors: dict[CrmObject, str | None], *, now: datetime) -> int:
        """Read the first page of every incremental query and the getDeleted windows due in
        one Composite call (the cycle's extracts then use them); returns answers kept."""
        return self._extractor.prefetch(cursors, now=now)

    def write_cost(self, records: int) -> dict[str, Any]:
        """The calls a write of ``records`` changed records makes (see :mod:`.write`)."""
        return self._writer.cost(records)

    def writable_fields(self) -> dict[str, str]:
        """Owned field -> API name, for those that exist (Account, and Opportunity)."""
        return self._fields.writable()

    def ensure_fields(self, *, dry_run: bool) -> FieldSetup:
        """Create the missing owned fields through the Tooling API (idempotent)."""
        return self._fields.ensure(dry_run=dry_run)

    def check(self) -> list[CheckItem]:
        """Login, API budget, readable objects and fields, write-back fields."""
        items: list[CheckItem] = []
        try:
            limits = self._client.read_limits()
        except AuthError as exc:
            return [
                CheckItem(
                    name="salesforce login",
                    ok=False,
                    detail=str(exc),
                    fix="check the credentials and the connected app",
                )
            ]
        except ConnectorError as exc:
            return [
                CheckItem(
                    name="salesforce connection",
                    ok=False,
                    detail=str(exc),
                    fix="check instance_url / login_url, ca_file and the network",
                )
            ]
        instance = self._client.token.instance_url if self._client.token else "?"
        items.append(
            CheckItem(
                name="salesforce login",
                ok=True,
                detail=f"{self._config.auth} on {instance}",
            )
        )
        daily = limits.get("DailyApiRequests", {})
        items.append(
            CheckItem(
                name="API budget",
                ok=True,
                detail=f"{daily.get('Remaining', '?'):,} of {daily.get('Max', '?'):,} daily "
                f"calls left; a cycle may use {self._config.budget_share:.0%}",
            )
        )
        fields = self._config.fields
        for obj, mapping, extra in (
            (CrmObject.ACCOUNT, fields.account, fields.account_attributes),
            (CrmObject.OPPORTUNITY, fields.opportunity, fields.opportunity_attributes),
        ):
            sobject = SOBJECT[obj]
            try:
                existing = self._fields.existing(sobject)
            except ConnectorError as exc:
                items.append(
                    CheckItem(
                        name=f"{sobject} access",
                        ok=False,
                        detail=str(exc),
                        fix=f"grant the integration user read access to {sobject}",
                    )
                )
                continue
            absent = [f"{column} ({api})" for column, api in mapping.items() if api not in existing]
            absent += [f"attr_{n} ({api})" for n, api in extra.items() if api not in existing]
            required = [
                a
                for a in absent
                if a.split(" ")[0] in ("account_id", "opportunity_id", "name", "modified_at")
            ]
            items.append(
                CheckItem(
                    name=f"{sobject} fields",
                    ok=not absent,
                    required=bool(required),
                    detail=f"{len(mapping) + len(extra) - len(absent)} mapped fields readable"
                    + (f"; missing: {', '.join(absent)}" if absent else ""),
                    fix=""
                    if not absent
                    else (
                        "create the fields or grant field-level security; missing lifecycle "
                        "fields are derived from deals, other optional ones are left empty"
                    ),
                )
            )
        writable = {k: v for k, v in self.writable_fields().items() if k in fields.writeback}
        missing = sorted(set(fields.writeback) - set(writable))
        items.append(
            CheckItem(
                name="write-back fields",
                ok=not missing,
                required=False,
                detail=f"{len(writable)} of {len(fields.writeback)} ICP fields exist on Account"
                + (
                    f"; missing: {', '.join(fields.writeback[m] for m in missing)}"
                    if missing
                    else ""
                ),
                fix="run `icp-sync setup-fields` (and grant field-level security)"
                if missing
                else "",
            )
        )
        return items

    def apply(self, plan: Plan) -> Iterator[ApplyBatch]:
        """Write the plan's Account and Opportunity changes; yields results per call or job."""
        return self._writer.apply(plan)
