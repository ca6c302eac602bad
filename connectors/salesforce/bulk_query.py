"""Bulk API 2.0 query jobs, read page by page and resumed where they stopped.

The job id and the locator of the next result page are kept in the connector state after
each page is mirrored, so a transient error, a budget stop or a killed process resumes the
same job at the same page instead of running the query again; only the current page is held
in memory.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from connectors.base import ConnectorState
from connectors.salesforce.client import SalesforceClient
from icp_sync.errors import FatalConnectorError, RetriableConnectorError
from icp_sync.log import get_logger

__all__ = ["BulkPage", "BulkQuery"]

log = get_logger(connector="salesforce")

_KEY = "bulk_query"


@dataclass(slots=True)
class BulkPage:
    """One page of CSV results.

    Attributes:
        text: The CSV.
        last: No page follows.
        newest: The newest ``SystemModstamp`` seen so far (the reader updates it before
            asking for the next page; it is kept with the locator).
    """

    text: str
    last: bool
    newest: str | None


class BulkQuery:
    """Runs (or resumes) one ``queryAll`` job per object.

    Args:
        client: The API client.
        state: Where the job id and next locator are kept.
        wait: First wait between status polls, in seconds.
        page_records: Records per result page (``maxRecords``).
    """

    def __init__(
        self,
        client: SalesforceClient,
        state: ConnectorState,
        *,
        wait: float,
        page_records: int = 50_000,
    ) -> None:
        self._client = client
        self._state = state
        self._wait = wait
        self._page_records = page_records

    def pages(self, sobject: str, soql: str) -> Iterator[BulkPage]:
        """The result pages of ``soql``, from where a stopped run of the same query left off."""
        saved = self._state.load().get(_KEY, {}).get(sobject)
        job, locator, newest = "", "", None
        if saved and saved.get("soql") == soql and self._usable(str(saved["job"])):
            job, locator, newest = str(saved["job"]), str(saved["locator"]), saved.get("newest")
            log.info("bulk_query_resumed", object=sobject, job=job, locator=locator or "start")
        else:
            job = self._submit(sobject, soql)
            self._save(sobject, {"job": job, "soql": soql, "locator": "", "newest": None})
            self._finish(job)
        while True:
            text, following = self._client.call(
                f"bulk query results {sobject}",
                self._client.query_results(job, locator, self._page_records),
            )
            page = BulkPage(text=text, last=not following, newest=newest)
            yield page
            newest = page.newest
            if not following:
                self._save(sobject, None)
                return
            locator = following
            self._save(sobject, {"job": job, "soql": soql, "locator": locator, "newest": newest})

    def _submit(self, sobject: str, soql: str) -> str:
        spec = {
            "operation": "queryAll",
            "query": soql,
            "columnDelimiter": "COMMA",
            "lineEnding": "LF",
        }
        job = self._client.call(
            f"bulk query {sobject}",
            lambda sf: sf.restful("jobs/query", method="POST", json=spec),
        )
        return str(job["id"])

    def _status(self, job: str) -> dict[str, Any]:
        info: dict[str, Any] = self._client.call(
            "bulk query status", lambda sf: sf.restful(f"jobs/query/{job}")
        )
        return info

    def _usable(self, job: str) -> bool:
        """Whether a stored job can still serve results (it may have expired or failed)."""
        try:
            info = self._status(job)
        except FatalConnectorError:
            return False
        return info.get("state") == "JobComplete"

    def _finish(self, job: str) -> None:
        delay = self._wait
        deadline = time.monotonic() + 3600
        while True:
            info = self._status(job)
            state = str(info.get("state"))
            if state == "JobComplete":
                return
            if state in ("Failed", "Aborted") or time.monotonic() > deadline:
                message = " ".join(str(info.get("errorMessage") or state).split())[:300]
                raise RetriableConnectorError(
                    f"bulk query job {job} {state}: {message}", connector="salesforce"
                )
            self._client.wait(delay)
            delay = min(delay * 1.5, 30.0)

    def _save(self, sobject: str, progress: dict[str, Any] | None) -> None:
        state = self._state.load()
        jobs = dict(state.get(_KEY, {}))
        if progress is None:
            jobs.pop(sobject, None)
        else:
            jobs[sobject] = progress
        state[_KEY] = jobs
        self._state.save(state)
