"""Salesforce write-back calls: sObject Collections and Bulk API 2.0 ingest jobs.

Both take a ``call`` that runs one operation on the simple-salesforce client with the
connector's retries and budget guard (see :mod:`connectors.salesforce`), and yield one
:class:`~connectors.base.ApplyBatch` per call or job so that the pipeline can record what was
written before the next call starts. Row locks and unprocessed records are retried with
backoff; every other per-record error is a rejection, reported and not retried.
"""

from __future__ import annotations

import csv
import io
import random
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from connectors.base import ApplyBatch
from icp_sync.errors import RetriableConnectorError
from icp_sync.log import get_logger

__all__ = ["Caller", "Upload", "backoff", "bulk_update", "collections_update", "salesforce_value"]

log = get_logger(connector="salesforce")

Caller = Callable[[str, Callable[[Any], Any]], Any]
"""Runs ``operation(sf)`` named ``what`` with retries: ``call(what, operation)``."""

COLLECTION_SIZE = 200
RETRIABLE_CODES = frozenset({"UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE", "UNKNOWN_EXCEPTION"})
_MAX_TEXT = {"segment": 255, "version": 32, "reasons": 32768}


def salesforce_value(owned: str, value: Any) -> Any:
    """A planned value in the form its Salesforce field takes (JSON)."""
    if value is None:
        return None
    if owned == "scored_at" and isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    if owned in ("score", "tal_rank"):
        return int(value)
    if owned == "tal":
        return bool(value)
    if owned in _MAX_TEXT:
        return str(value)[: _MAX_TEXT[owned]]
    return value


def backoff(attempt: int) -> float:
    """Jittered exponential delay before try ``attempt + 1`` (0.25 s .. 30 s)."""
    return float(min(30.0, 0.5 * 2.0 ** (attempt - 1))) * random.uniform(0.5, 1.0)


def collections_update(
    call: Caller,
    records: Mapping[str, Mapping[str, Any]],
    owned_of: Mapping[str, str],
    *,
    max_attempts: int,
    sleep: Callable[[float], None],
) -> Iterator[ApplyBatch]:
    """Update Accounts 200 at a time with ``PATCH composite/sobjects`` (allOrNone false).

    Args:
        call: Runs one operation with retries.
        records: Record id -> API field -> value.
        owned_of: API field name -> owned field name (to report what was written).
        max_attempts: Rounds for records that hit a row lock.
        sleep: Waits between rounds.
    """
    pending = list(records)
    for attempt in range(1, max_attempts + 1):
        locked: list[str] = []
        for start in range(0, len(pending), COLLECTION_SIZE):
            chunk = pending[start : start + COLLECTION_SIZE]
            body = {
                "allOrNone": False,
                "records": [
                    {"attributes": {"type": "Account"}, "Id": rid, **records[rid]} for rid in chunk
                ],
            }

            def update(sf: Any, body: dict[str, Any] = body) -> Any:
                return sf.restful("composite/sobjects", method="PATCH", json=body)

            results = call("update Account collection", update) or []
            written: dict[str, dict[str, Any]] = {}
            rejected: dict[str, str] = {}
            deferred: dict[str, str] = {}
            for rid, result in zip(chunk, results, strict=False):
                if result.get("success"):
                    written[rid] = {owned_of[k]: v for k, v in records[rid].items()}
                    continue
                errors = result.get("errors") or [{}]
                codes = {str(e.get("statusCode")) for e in errors}
                reason = "; ".join(f"{e.get('statusCode')}: {e.get('message')}" for e in errors)
                if not codes & RETRIABLE_CODES:
                    rejected[rid] = reason
                elif attempt < max_attempts:
                    locked.append(rid)
                else:  # still locked after every round: a transient state, not a refusal
                    deferred[rid] = f"{reason}; written next cycle"
            yield ApplyBatch(written=written, rejected=rejected, deferred=deferred)
        if not locked:
            return
        log.warning("salesforce_row_locks", records=len(locked), attempt=attempt)
        sleep(backoff(attempt))
        pending = locked


Upload = Callable[[str, bytes], Callable[[Any], Any]]
"""``upload(job_id, csv_bytes)`` -> the operation that PUTs a job's CSV data (expects 201)."""


def bulk_update(
    call: Caller,
    upload: Upload,
    records: Mapping[str, Mapping[str, Any]],
    owned_of: Mapping[str, str],
    *,
    max_attempts: int,
    sleep: Callable[[float], None],
    poll: float,
) -> Iterator[ApplyBatch]:
    """Update Accounts with a Bulk API 2.0 ingest job; retry row locks and unprocessed rows.

    Args:
        call: Runs one operation with retries.
        upload: Builds the operation that uploads a job's CSV.
        records: Record id -> API field -> value.
        owned_of: API field name -> owned field name.
        max_attempts: Jobs at most (the first plus retries of retriable failures).
        sleep: Waits between status polls and between jobs.
        poll: First wait between job status polls, in seconds.
    """
    pending = dict(records)
    for attempt in range(1, max_attempts + 1):
        job_id = _submit(call, upload, pending)
        outcome = _outcome(call, job_id, sleep=sleep, poll=poll)
        written = {
            rid: {owned_of[k]: v for k, v in pending[rid].items()}
            for rid in outcome["successful"]
            if rid in pending
        }
        retry = {
            rid: pending[rid]
            for rid, error in outcome["failed"].items()
            if error.split(":", 1)[0] in RETRIABLE_CODES and rid in pending
        }
        retry |= {rid: pending[rid] for rid in outcome["unprocessed"] if rid in pending}
        last = attempt == max_attempts
        rejected = {rid: error for rid, error in outcome["failed"].items() if rid not in retry}
        # still locked or unprocessed after every job: transient, so written next cycle
        deferred = (
            {
                rid: f"{outcome['failed'].get(rid, 'not processed by the bulk job')}; "
                "written next cycle"
                for rid in retry
            }
            if last
            else {}
        )
        yield ApplyBatch(written=written, rejected=rejected, deferred=deferred, method="bulk")
        if not retry or last:
            return
        log.warning("salesforce_bulk_retry", records=len(retry), attempt=attempt)
        sleep(backoff(attempt))
        pending = retry


def _csv_cell(value: Any) -> str:
    # in Bulk API CSV an empty cell means "leave as is"; #N/A clears the field
    if value is None:
        return "#N/A"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _submit(call: Caller, upload: Upload, records: Mapping[str, Mapping[str, Any]]) -> str:
    columns = sorted({k for row in records.values() for k in row})
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["Id", *columns])
    for rid, row in records.items():
        # a field this record does not change stays an empty cell: "leave as is" in Bulk CSV
        writer.writerow([rid, *(_csv_cell(row[c]) if c in row else "" for c in columns)])
    spec = {
        "object": "Account",
        "operation": "update",
        "contentType": "CSV",
        "lineEnding": "LF",
        "columnDelimiter": "COMMA",
    }
    job = call("bulk ingest job", lambda sf: sf.restful("jobs/ingest", method="POST", json=spec))
    job_id = str(job["id"])
    call("bulk upload", upload(job_id, buffer.getvalue().encode("utf-8")))
    call(
        "bulk close",
        lambda sf: sf.restful(
            f"jobs/ingest/{job_id}", method="PATCH", json={"state": "UploadComplete"}
        ),
    )
    return job_id


def _outcome(
    call: Caller, job_id: str, *, sleep: Callable[[float], None], poll: float
) -> dict[str, Any]:
    delay = poll
    deadline = time.monotonic() + 3600
    while True:
        info = call("bulk job status", lambda sf: sf.restful(f"jobs/ingest/{job_id}"))
        state = str(info.get("state"))
        if state in ("JobComplete", "Failed", "Aborted"):
            break
        if time.monotonic() > deadline:
            raise RetriableConnectorError(
                f"bulk job {job_id} still {state}", connector="salesforce"
            )
        sleep(delay)
        delay = min(delay * 1.5, 30.0)
    if state != "JobComplete":
        log.warning("salesforce_bulk_job", job=job_id, state=state, error=info.get("errorMessage"))
    successful = _rows(
        call("bulk results", lambda sf: sf.bulk2.Account.get_successful_records(job_id))
    )
    failed = _rows(call("bulk failures", lambda sf: sf.bulk2.Account.get_failed_records(job_id)))
    unprocessed = _rows(
        call("bulk unprocessed", lambda sf: sf.bulk2.Account.get_unprocessed_records(job_id))
    )
    return {
        "successful": [r.get("sf__Id", "") for r in successful],
        "failed": {r.get("sf__Id", ""): r.get("sf__Error", "") for r in failed},
        "unprocessed": [r.get("Id", "") for r in unprocessed],
    }


def _rows(text: object) -> list[dict[str, str]]:
    content = str(text or "")
    if not content.strip():
        return []
    return list(csv.DictReader(io.StringIO(content)))
