"""The start of an incremental cycle read ahead in one Composite call.

Every object's first query page and every getDeleted window due go as subrequests of one
``POST composite``.

A cycle in which nothing changed then costs one API call instead of one per query and one
per getDeleted (Composite runs up to 25 subrequests, 5 of them queries, as one call). The
extractor takes its first page from here when the query matches, and the deletions their
answer; a subrequest that failed is simply not kept, so the normal call (with its retries
and error handling) runs instead. Later pages, bulk queries and reconciliations are not
prefetched here (:meth:`Prefetch.keep` holds a first page read early by the extractor).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

from connectors.salesforce.client import SalesforceClient
from icp_sync.log import get_logger

__all__ = ["Prefetch"]

log = get_logger(connector="salesforce")


def _iso(moment: datetime) -> str:
    return quote(moment.strftime("%Y-%m-%dT%H:%M:%S+00:00"), safe="")


class Prefetch:
    """First pages and getDeleted answers read ahead in one Composite call.

    Args:
        client: The API client.
        api_version: The REST API version of the subrequest URLs (``59.0``).
    """

    def __init__(self, client: SalesforceClient, api_version: str) -> None:
        self._client = client
        self._base = f"/services/data/v{api_version}"
        self._pages: dict[str, tuple[dict[str, Any], datetime]] = {}
        self._deleted: dict[str, tuple[datetime, datetime, dict[str, Any] | None]] = {}
        self._considered: set[str] = set()

    def run(
        self,
        queries: dict[str, str],
        windows: dict[str, tuple[datetime, datetime]],
        *,
        waiting: set[str],
        started: datetime,
    ) -> int:
        """Read ``queries`` (sObject -> SOQL, through queryAll) and the getDeleted ``windows``
        (sObject -> (start, end)) in one call; returns how many answers were kept.

        ``waiting``: objects whose getDeleted window is under a minute now; the cycle then
        asks for none (even if the minute passes meanwhile), the next cycle does."""
        self._pages.clear()
        self._deleted.clear()
        self._considered = set(waiting)
        subrequests: list[dict[str, Any]] = []
        for sobject, soql in queries.items():
            url = f"{self._base}/queryAll/?q={quote(soql, safe='')}"
            subrequests.append({"method": "GET", "url": url, "referenceId": f"q_{sobject}"})
        for sobject, (start, end) in windows.items():
            url = f"{self._base}/sobjects/{sobject}/deleted/?start={_iso(start)}&end={_iso(end)}"
            subrequests.append({"method": "GET", "url": url, "referenceId": f"d_{sobject}"})
        if len(subrequests) < 2:
            return 0  # one request gains nothing from Composite
        body = {"allOrNone": False, "compositeRequest": subrequests}
        answer = self._client.call(
            "composite", lambda sf: sf.restful("composite", method="POST", json=body)
        )
        # the read's moment is the answer's Date (the org's clock, whole seconds): the
        # queries ran during the call, and the next read starts a lookback before it, so a
        # commit that landed meanwhile is read then; a Date from the previous cycle would
        # leave the cursor a whole interval behind and read the same rows again
        started = max(started, self._client.server_now(started))
        kept = 0
        for result in (answer or {}).get("compositeResponse", []):
            reference = str(result.get("referenceId", ""))
            kind, _, sobject = reference.partition("_")
            status = int(result.get("httpStatusCode", 0))
            if kind == "d" and sobject in windows and _refused_window(result.get("body")):
                self._deleted[sobject] = (*windows[sobject], None)
                kept += 1
                continue
            if status != 200 or not isinstance(result.get("body"), dict):
                log.info("prefetch_miss", subrequest=reference, status=status)
                continue
            if kind == "q" and sobject in queries:
                self._pages[queries[sobject]] = (result["body"], started)
                kept += 1
            elif kind == "d" and sobject in windows:
                self._deleted[sobject] = (*windows[sobject], result["body"])
                kept += 1
        return kept

    def page(self, soql: str) -> tuple[dict[str, Any], datetime] | None:
        """The first page of ``soql`` read ahead, with the server time before it (once)."""
        return self._pages.pop(soql, None)

    def peek(self, soql: str) -> dict[str, Any] | None:
        """The first page of ``soql`` read ahead, left for :meth:`page`."""
        ahead = self._pages.get(soql)
        return ahead[0] if ahead else None

    def keep(self, soql: str, page: dict[str, Any], started: datetime) -> None:
        """Keep a first page read ahead outside the Composite call (for :meth:`page`)."""
        self._pages[soql] = (page, started)

    def considered(self, sobject: str) -> bool:
        """Whether this cycle's read-ahead looked at ``sobject``'s deletes (and found none due:
        then the cycle asks for none either, and the next one does)."""
        found = sobject in self._considered
        self._considered.discard(sobject)
        return found

    def deleted(self, sobject: str) -> tuple[datetime, datetime, dict[str, Any] | None] | None:
        """The getDeleted window read ahead for ``sobject`` and its answer (once); the answer
        is ``None`` when Salesforce refused the window (``INVALID_REPLICATION_DATE``)."""
        return self._deleted.pop(sobject, None)


def _refused_window(body: Any) -> bool:
    """A getDeleted answer refusing the window (Salesforce's top-level error array)."""
    return isinstance(body, list) and any(
        isinstance(e, dict) and e.get("errorCode") == "INVALID_REPLICATION_DATE" for e in body
    )
