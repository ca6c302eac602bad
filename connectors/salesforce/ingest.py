"""Bulk API 2.0 ingest jobs for write-back: journaled, split, resumed or aborted after a crash.

Every job's id is journaled in the connector state (kept in the state store, per sObject) as
soon as the job exists, before any data is uploaded, and marked settled only once its
results have been handed to the pipeline and recorded. A run killed at any point leaves a
journaled job that the next run settles first (:func:`recover`): a job still ``Open`` may
hold a partial upload, so it is aborted (its records are planned and sent again); a closed
job is polled to its end and its results read, so what it wrote is recorded once and never
sent again. Uploads are split so no job's CSV exceeds the configured size (Salesforce takes
at most 100 MB / 150 M characters a job; a record is about 300 bytes).
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from connectors.base import ApplyBatch, ConnectorState
from connectors.salesforce.client import RETRIABLE_CODES, SalesforceClient
from icp_sync.errors import FatalConnectorError, RetriableConnectorError
from icp_sync.log import get_logger

__all__ = ["JobJournal", "bulk_update", "csv_cell", "recover", "split"]

log = get_logger(connector="salesforce")

_DONE = ("JobComplete", "Failed", "Aborted")


class JobJournal:
    """The bulk jobs of one sObject not yet settled, kept in the connector state.

    Account jobs are kept under ``bulk_jobs`` (the key older versions used for them), other
    objects' under ``bulk_jobs:<sObject>``, so a job is always settled with its own object's
    field mapping.
    """

    def __init__(self, state: ConnectorState, sobject: str = "Account") -> None:
        self._state = state
        self.sobject = sobject
        self._key = "bulk_jobs" if sobject == "Account" else f"bulk_jobs:{sobject}"

    def pending(self) -> list[str]:
        """Ids of journaled jobs whose results were not yet recorded."""
        return [str(j) for j in self._state.load().get(self._key) or []]

    def add(self, job_id: str) -> None:
        """Journal a job that now exists (committed before this returns)."""
        self._write([*self.pending(), job_id], creating=False)

    def creating(self) -> None:
        """Note that a job is being created: a run killed before :meth:`add` leaves a job
        nobody journaled, which the next run finds and aborts."""
        self._write(self.pending(), creating=True)

    def was_creating(self) -> bool:
        """A run died between a job create and its journal entry."""
        return bool(self._state.load().get(self._key + ":creating"))

    def created_by(self) -> str | None:
        """The integration user's id, as the connector learned it (``None`` if not yet)."""
        user = self._state.load().get("user_id")
        return str(user) if user else None

    def settle(self, job_id: str) -> None:
        """Forget a job whose results were recorded (or that was aborted)."""
        self._write([j for j in self.pending() if j != job_id])

    def settle_creating(self) -> None:
        """Forget an interrupted create once its job (if any) was aborted."""
        self._write(self.pending(), creating=False)

    def _write(self, jobs: list[str], *, creating: bool | None = None) -> None:
        state = self._state.load()
        state[self._key] = jobs
        if creating is not None:
            state[self._key + ":creating"] = creating
        self._state.save(state)


def csv_cell(value: Any) -> str:
    """A value as a Bulk CSV cell: ``#N/A`` clears a field (an empty cell leaves it as is)."""
    if value is None:
        return "#N/A"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def split(
    records: Mapping[str, Mapping[str, Any]], max_bytes: int
) -> list[tuple[list[str], bytes]]:
    """The records as CSV parts of at most ``max_bytes`` each: ``[(ids, csv bytes)]``."""
    columns = sorted({k for row in records.values() for k in row})
    header = _line(["Id", *columns])
    parts: list[tuple[list[str], bytes]] = []
    ids: list[str] = []
    chunks: list[bytes] = [header]
    size = len(header)
    for rid, row in records.items():
        # a field this record does not change stays an empty cell: "leave as is" in Bulk CSV
        line = _line([rid, *(csv_cell(row[c]) if c in row else "" for c in columns)])
        if ids and size + len(line) > max_bytes:
            parts.append((ids, b"".join(chunks)))
            ids, chunks, size = [], [header], len(header)
        ids.append(rid)
        chunks.append(line)
        size += len(line)
    if ids:
        parts.append((ids, b"".join(chunks)))
    return parts


def _line(cells: list[str]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(cells)
    return buffer.getvalue().encode("utf-8")


def recover(
    client: SalesforceClient,
    journal: JobJournal,
    owned_of: Mapping[str, str],
    *,
    poll: float,
) -> Iterator[ApplyBatch]:
    """Settle the jobs a killed run left: abort open ones, read the results of closed ones."""
    for job_id in journal.pending():
        try:
            info = _status(client, job_id)
        except FatalConnectorError:  # deleted or never visible: nothing of it to record
            journal.settle(job_id)
            continue
        state = str(info.get("state"))
        if state in ("Open", "Aborted"):
            if state == "Open":
                _abort(client, job_id)
            log.warning("salesforce_bulk_job_abandoned", job=job_id, state=state)
            journal.settle(job_id)
            continue
        outcome = _outcome(client, job_id, sobject=journal.sobject, poll=poll)
        log.info("salesforce_bulk_job_resumed", job=job_id, written=len(outcome["successful"]))
        yield ApplyBatch(
            written={
                # an empty cell was "leave as is": only the others were written
                rid: {owned_of[k]: _cell_value(v) for k, v in row.items() if k in owned_of and v}
                for rid, row in outcome["successful"].items()
            },
            rejected=outcome["failed"],
            method="bulk",
        )
        journal.settle(job_id)


def landed_values(
    client: SalesforceClient, journal: JobJournal, *, poll: float
) -> dict[str, dict[str, Any]]:
    """What the unsettled jobs of a killed run wrote (``{id: {api name: value}}``), read from
    their results without settling them: an Open or Aborted job wrote nothing."""
    landed: dict[str, dict[str, Any]] = {}
    for job_id in journal.pending():
        try:
            state = str(_status(client, job_id).get("state"))
        except FatalConnectorError:
            continue
        if state in ("Open", "Aborted"):
            continue
        outcome = _outcome(client, job_id, sobject=journal.sobject, poll=poll)
        for rid, row in outcome["successful"].items():
            landed.setdefault(rid, {}).update({k: _cell_value(v) for k, v in row.items() if v})
    return landed


def _cell_value(cell: str) -> Any:
    return None if cell == "#N/A" else cell


def bulk_update(
    client: SalesforceClient,
    records: Mapping[str, Mapping[str, Any]],
    owned_of: Mapping[str, str],
    journal: JobJournal,
    *,
    poll: float,
    max_bytes: int,
) -> Iterator[ApplyBatch]:
    """Update records with Bulk API 2.0 ingest jobs; retry row locks and unprocessed rows.

    Args:
        client: Runs each call with retries; its ``max_attempts`` bounds the rounds.
        records: Record id -> API field -> value.
        owned_of: API field name -> owned field name.
        journal: Where job ids are kept until their results are recorded; its sObject is
            the jobs' object.
        poll: First wait between job status polls, in seconds.
        max_bytes: Most CSV bytes a job uploads; more records take more jobs.
    """
    max_attempts = client.max_attempts
    pending = dict(records)
    for attempt in range(1, max_attempts + 1):
        retry: dict[str, Mapping[str, Any]] = {}
        last = attempt == max_attempts
        for ids, data in split(pending, max_bytes):
            journal.creating()
            job_id = _create(client, journal.sobject)
            journal.add(job_id)
            _upload(client, job_id, data)
            outcome = _outcome(client, job_id, sobject=journal.sobject, poll=poll)
            part = set(ids)
            failed = {r: e for r, e in outcome["failed"].items() if r in part}
            again = {r for r, e in failed.items() if e.split(":", 1)[0] in RETRIABLE_CODES}
            again |= {r for r in outcome["unprocessed"] if r in part}
            retry |= {r: pending[r] for r in again}
            yield ApplyBatch(
                written={
                    rid: {owned_of[k]: v for k, v in pending[rid].items()}
                    for rid in outcome["successful"]
                    if rid in part
                },
                rejected={r: e for r, e in failed.items() if r not in again},
                # still locked or unprocessed after every round: transient, next cycle
                deferred={
                    r: f"{failed.get(r, 'not processed by the bulk job')}; written next cycle"
                    for r in again
                }
                if last
                else {},
                method="bulk",
            )
            journal.settle(job_id)
        if not retry or last:
            return
        log.warning("salesforce_bulk_retry", records=len(retry), attempt=attempt)
        client.pause(attempt)
        pending = dict(retry)


def _create(client: SalesforceClient, sobject: str) -> str:
    """Create an ingest job; when the create had to be retried, abort the orphans it left."""
    spec = {
        "object": sobject,
        "operation": "update",
        "contentType": "CSV",
        "lineEnding": "LF",
        "columnDelimiter": "COMMA",
    }
    tries: list[str] = []

    def create(sf: Any) -> Any:
        tries.append("")
        return sf.restful("jobs/ingest", method="POST", json=spec)

    job_id = str(client.call("bulk ingest job", create)["id"])
    if len(tries) > 1:
        # a try whose answer was lost may still have created a job: find and abort it
        _abort_orphans(client, keep=job_id, creator=_created_by(client, job_id), sobject=sobject)
    return job_id


def abort_unjournaled(client: SalesforceClient, journal: JobJournal) -> None:
    """After a run died between a job create and its journal entry: abort the Open update
    jobs on the journal's object that our user created and nobody journaled (an Open job was
    never closed, so nothing of it was processed)."""
    creator = journal.created_by()
    if creator is None:
        return
    keep = set(journal.pending())
    listing = client.call("bulk ingest jobs", lambda sf: sf.restful("jobs/ingest"))
    for job in listing.get("records", []):
        orphan = (
            job.get("state") == "Open"
            and job.get("id") not in keep
            and job.get("object") == journal.sobject
            and job.get("operation") == "update"
            and str(job.get("createdById", ""))[:15] == creator[:15]
        )
        if orphan:
            log.warning("salesforce_bulk_orphan_aborted", job=job["id"])
            _abort(client, str(job["id"]))
    journal.settle_creating()


def _created_by(client: SalesforceClient, job_id: str) -> str:
    return str(_status(client, job_id).get("createdById", ""))


def _abort_orphans(client: SalesforceClient, *, keep: str, creator: str, sobject: str) -> None:
    """Abort our user's other Open update jobs on ``sobject`` (never uploaded: nothing lost)."""
    listing = client.call("bulk ingest jobs", lambda sf: sf.restful("jobs/ingest"))
    for job in listing.get("records", []):
        orphan = (
            job.get("state") == "Open"
            and job.get("id") != keep
            and job.get("object") == sobject
            and job.get("operation") == "update"
            and job.get("createdById") == creator
        )
        if orphan:
            log.warning("salesforce_bulk_orphan_aborted", job=job["id"])
            _abort(client, str(job["id"]))


def _upload(client: SalesforceClient, job_id: str, data: bytes) -> None:
    client.call("bulk upload", client.upload_csv(job_id, data))
    client.call(
        "bulk close",
        lambda sf: sf.restful(
            f"jobs/ingest/{job_id}", method="PATCH", json={"state": "UploadComplete"}
        ),
    )


def _status(client: SalesforceClient, job_id: str) -> dict[str, Any]:
    info: dict[str, Any] = client.call(
        "bulk job status", lambda sf: sf.restful(f"jobs/ingest/{job_id}")
    )
    return info


def _abort(client: SalesforceClient, job_id: str) -> None:
    client.call(
        "bulk abort",
        lambda sf: sf.restful(f"jobs/ingest/{job_id}", method="PATCH", json={"state": "Aborted"}),
    )


def _outcome(client: SalesforceClient, job_id: str, *, sobject: str, poll: float) -> dict[str, Any]:
    """Poll a closed job to its end and read its three result sets."""
    call = client.call
    delay = poll
    deadline = time.monotonic() + 3600
    while True:
        info = _status(client, job_id)
        state = str(info.get("state"))
        if state in _DONE:
            break
        if time.monotonic() > deadline:
            raise RetriableConnectorError(
                f"bulk job {job_id} still {state}", connector="salesforce"
            )
        client.wait(delay)
        delay = min(delay * 1.5, 30.0)
    if state != "JobComplete":
        log.warning("salesforce_bulk_job", job=job_id, state=state, error=info.get("errorMessage"))
    successful = _rows(call("bulk results", _results(job_id, "successfulResults", sobject)))
    failed = _rows(call("bulk failures", _results(job_id, "failedResults", sobject)))
    unprocessed = _rows(call("bulk unprocessed", _results(job_id, "unprocessedRecords", sobject)))
    return {
        "successful": {
            r.get("sf__Id", ""): {k: v for k, v in r.items() if not k.startswith("sf__")}
            for r in successful
        },
        "failed": {r.get("sf__Id", ""): r.get("sf__Error", "") for r in failed},
        "unprocessed": [r.get("Id", "") for r in unprocessed],
    }


def _results(job_id: str, kind: str, sobject: str) -> Callable[[Any], str]:
    """The operation that GETs one result set of an ingest job on ``sobject`` as CSV text.

    The result sets are served at ``jobs/ingest/{id}/<kind>`` for every object; the client's
    Bulk 2.0 accessor for the job's object reads them.
    """
    readers = {
        "successfulResults": "get_successful_records",
        "failedResults": "get_failed_records",
        "unprocessedRecords": "get_unprocessed_records",
    }

    def operation(sf: Any) -> str:
        return str(getattr(getattr(sf.bulk2, sobject), readers[kind])(job_id))

    return operation


def _rows(text: object) -> list[dict[str, str]]:
    content = str(text or "")
    if not content.strip():
        return []
    return list(csv.DictReader(io.StringIO(content)))
