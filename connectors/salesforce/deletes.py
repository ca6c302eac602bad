"""Salesforce deletions: getDeleted on its own cursor, and reconciliation by ids.

Deletes have their own cursor per object, kept in the connector state and advanced to the
``latestDateCovered`` of a getDeleted answer only once its ids are mirrored, so a failed
call, a budget stop or a crash never skips a window. Salesforce ignores the seconds of a
replication window and refuses one shorter than a minute, or one starting before
``earliestDateAvailable`` (``INVALID_REPLICATION_DATE``): a window under a minute waits
for the next cycle (no call), and one the retention period no longer covers falls back to
reconciliation. Reconciliation lists every live id (``SELECT Id``, 2,000 a page) so that
records deleted for good, purged from the recycle bin or hidden from the integration user
leave the mirror; it runs on a full sync (for free: the full read lists the live ids),
when the delete cursor is out of reach, and every ``reconcile_every_hours``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any, Literal

import pandas as pd

from connectors.base import Batch, ConnectorState
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.config import SalesforceConfig
from connectors.salesforce.fields import SOBJECT
from connectors.salesforce.prefetch import Prefetch
from connectors.salesforce.soql import parse_datetime, soql_datetime
from icp_sync.errors import FatalConnectorError
from icp_sync.log import get_logger
from icp_sync.model import CrmObject

__all__ = ["Deletions"]

log = get_logger(connector="salesforce")

_MINUTE = timedelta(minutes=1)


def _floor_minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


class Deletions:
    """Finds records deleted in Salesforce since the delete cursor.

    Args:
        client: The API client.
        config: The ``[salesforce]`` section.
        state: Holds the delete cursors and the last reconciliation per object.
    """

    def __init__(
        self,
        client: SalesforceClient,
        config: SalesforceConfig,
        state: ConnectorState,
        *,
        prefetch: Prefetch | None = None,
    ) -> None:
        self._client = client
        self._config = config
        self._state = state
        self._prefetch = prefetch

    def due_window(
        self, obj: CrmObject, *, now: datetime
    ) -> tuple[datetime, datetime] | Literal["wait", "other"]:
        """What :meth:`pending` would do now: the getDeleted window it would ask for, ``wait``
        (a window under a minute: no call), or ``other`` (a reconciliation)."""
        sobject = SOBJECT[obj]
        state = self._state.load()
        cursor = state.get("deleted_cursor", {}).get(sobject)
        reconciled = state.get("reconciled_at", {}).get(sobject)
        every = timedelta(hours=self._config.reconcile_every_hours)
        if cursor is None or reconciled is None or now - parse_datetime(str(reconciled)) >= every:
            return "other"
        start = _floor_minute(parse_datetime(str(cursor)))
        end = _floor_minute(now)
        if end - start < _MINUTE:
            return "wait"
        if now - start > timedelta(days=self._config.deleted_window_days):
            return "other"
        return start, end

    def after_full_read(
        self, obj: CrmObject, live: frozenset[str], *, read_from: datetime
    ) -> Iterator[Batch]:
        """The reconciliation a full read gives for free; covers deletes up to ``read_from``
        once the caller has applied it (a run stopped before that reconciles again)."""
        yield Batch(frame=pd.DataFrame(), live=live)
        self._advance(SOBJECT[obj], read_from, reconciled=True)

    def pending(self, obj: CrmObject, *, now: datetime) -> Iterator[Batch]:
        """Deletes since the delete cursor (getDeleted), or a reconciliation when due.

        Args:
            obj: Which object.
            now: The org's clock (never this machine's).
        """
        sobject = SOBJECT[obj]
        state = self._state.load()
        cursor = state.get("deleted_cursor", {}).get(sobject)
        reconciled = state.get("reconciled_at", {}).get(sobject)
        every = timedelta(hours=self._config.reconcile_every_hours)
        reason = None
        if cursor is None:
            reason = "no delete cursor yet"
        elif reconciled is None or now - parse_datetime(str(reconciled)) >= every:
            reason = f"scheduled (every {self._config.reconcile_every_hours:g} h)"
        ahead = self._prefetch.deleted(sobject) if self._prefetch else None
        considered = self._prefetch.considered(sobject) if self._prefetch else False
        if reason is None and ahead is None and considered:
            return  # not due when the cycle read ahead: the next cycle asks (no extra call)
        if reason is None:
            start = _floor_minute(parse_datetime(str(cursor)))
            end = _floor_minute(now)
            if ahead is not None and ahead[0] == start:
                end = ahead[1]  # read ahead in the cycle's Composite call
            if end - start < _MINUTE:
                return  # Salesforce refuses a window under a minute: wait for the next cycle
            if now - start > timedelta(days=self._config.deleted_window_days):
                reason = "the delete cursor is older than the getDeleted retention window"
            else:
                answer = (
                    ahead[2]
                    if ahead is not None and ahead[0] == start
                    else self._get_deleted(sobject, start, end)
                )
                if answer is None:
                    reason = "getDeleted refused the window (INVALID_REPLICATION_DATE)"
                elif parse_datetime(str(answer["earliestDateAvailable"])) > start:
                    reason = "getDeleted no longer covers the delete cursor"
                else:
                    ids = tuple(str(r["id"]) for r in answer.get("deletedRecords", []))
                    if ids:
                        yield Batch(frame=pd.DataFrame(), deleted=ids)
                    covered = answer.get("latestDateCovered")
                    self._advance(sobject, parse_datetime(str(covered)) if covered else end)
                    return
        log.info("reconciliation", object=str(obj), reason=reason)
        yield Batch(frame=pd.DataFrame(), live=self._live_ids(sobject))
        self._advance(sobject, now, reconciled=True)

    def _get_deleted(self, sobject: str, start: datetime, end: datetime) -> dict[str, Any] | None:
        try:
            answer: dict[str, Any] = self._client.call(
                f"getDeleted {sobject}", lambda sf: getattr(sf, sobject).deleted(start, end)
            )
        except FatalConnectorError as exc:
            if "INVALID_REPLICATION_DATE" in str(exc):
                return None
            raise
        return answer

    def _live_ids(self, sobject: str) -> frozenset[str]:
        headers = {"Sforce-Query-Options": "batchSize=2000"}
        soql = f"SELECT Id FROM {sobject}"
        page = self._client.call(f"reconcile {sobject}", lambda sf: sf.query(soql, headers=headers))
        ids: set[str] = set()
        seen: set[str] = set()
        while True:
            ids.update(str(r["Id"]) for r in page.get("records", []))
            if page.get("done", True):
                return frozenset(ids)
            url = str(page["nextRecordsUrl"])
            if url in seen:
                raise FatalConnectorError(
                    f"query paging returned {url} twice; stopping instead of looping",
                    connector="salesforce",
                )
            seen.add(url)
            page = self._client.call(f"reconcile {sobject}", _query_more(url, headers))

    def _advance(self, sobject: str, covered: datetime, *, reconciled: bool = False) -> None:
        state = self._state.load()
        cursors = dict(state.get("deleted_cursor", {}))
        cursors[sobject] = soql_datetime(covered)
        state["deleted_cursor"] = cursors
        if reconciled:
            state["reconciled_at"] = {
                **state.get("reconciled_at", {}),
                sobject: soql_datetime(covered),
            }
        self._state.save(state)


def _query_more(url: str, headers: dict[str, str]) -> Callable[[Any], Any]:
    def operation(sf: Any) -> Any:
        return sf.query_more(url, identifier_is_url=True, headers=headers)

    return operation
