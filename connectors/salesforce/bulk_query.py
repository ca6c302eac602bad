"""Bulk API 2.0 query jobs, read page by page and resumed where they stopped.

The job id and the locator of the next result page are kept in the connector state after
each page is mirrored, so a transient error, a budget stop or a killed process resumes the
same job at the same page instead of running the query again. A job can be started ahead
(:meth:`BulkQuery.submit`) so the org runs it while an earlier object is read; the next
result page downloads while the current one is mirrored, so at most two pages are held in
memory.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from connectors.base import ConnectorState
from connectors.salesforce.client import SalesforceClient
from icp_sync.errors import FatalConnectorError, RetriableConnectorError
from icp_sync.log import get_logger

__all__ = ["BulkPage", "BulkQuery"]

log = get_logger(connector="salesforce")

_KEY = "bulk_query"
_RUNNING = ("UploadComplete", "InProgress")


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

    def saved(self, sobject: str) -> dict[str, Any] | None:
        """The job of ``sobject`` kept in the state (``job``, ``soql``, ``locator``), if any."""
        saved: dict[str, Any] | None = self._state.load().get(_KEY, {}).get(sobject)
        return saved

    def submit(self, sobject: str, soql: str) -> None:
        """Start the job of ``soql`` now, unless one is kept for it: the org runs it while
        other work goes on, and :meth:`pages` then reads it (one call, the job create)."""
        saved = self.saved(sobject)
        if saved and saved.get("soql") == soql:
            return
        self.adopt(sobject, soql, self.create(sobject, soql))

    def create(self, sobject: str, soql: str) -> str:
        """Create the job of ``soql`` and return its id, keeping nothing (safe on any thread:
        a job never adopted only runs a query)."""
        return self._submit(sobject, soql)

    def adopt(self, sobject: str, soql: str, job: str) -> None:
        """Keep ``job`` (created by :meth:`create`) as the job :meth:`pages` reads."""
        self._save(sobject, {"job": job, "soql": soql, "locator": "", "newest": None})

    def pages(self, sobject: str, soql: str) -> Iterator[BulkPage]:
        """The result pages of ``soql``, from where a stopped run of the same query left off.

        The next page is downloaded while the caller works on the current one; its locator
        is kept only once the caller asks for the page after it (the current one is done).
        """
        saved = self.saved(sobject)
        job, locator, newest = "", "", None
        state = self._state_of(str(saved["job"])) if saved and saved.get("soql") == soql else ""
        if saved and state in (*_RUNNING, "JobComplete"):
            job, locator, newest = str(saved["job"]), str(saved["locator"]), saved.get("newest")
            if locator:
                log.info("bulk_query_resumed", object=sobject, job=job, locator=locator)
            if state != "JobComplete":
                self._finish(job)
        else:
            job = self._submit(sobject, soql)
            self._save(sobject, {"job": job, "soql": soql, "locator": "", "newest": None})
            self._finish(job)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="bulk-page") as downloads:
            download = downloads.submit(self._page, sobject, job, locator)
            while True:
                text, following = download.result()
                if following:
                    download = downloads.submit(self._page, sobject, job, following)
                page = BulkPage(text=text, last=not following, newest=newest)
                yield page
                newest = page.newest
                if not following:
                    self._save(sobject, None)
                    return
                locator = following
                self._save(
                    sobject, {"job": job, "soql": soql, "locator": locator, "newest": newest}
                )

    def _page(self, sobject: str, job: str, locator: str) -> tuple[str, str]:
        page: tuple[str, str] = self._client.call(
            f"bulk query results {sobject}",
            self._client.query_results(job, locator, self._page_records),
        )
        return page

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

    def _state_of(self, job: str) -> str:
        """A kept job's state (``""`` when it expired or cannot be read)."""
        try:
            return str(self._status(job).get("state", ""))
        except FatalConnectorError:
            return ""

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
