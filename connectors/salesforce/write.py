"""Salesforce write-back: the allow-list check, sObject Collections and Bulk API 2.0 ingest.

:class:`Writer` turns a plan into Salesforce values (only owned fields that exist, checked
before anything is sent), defers records changed in Salesforce since they were read, and
records a write window so extraction can skip reading its own writes back. Up to the bulk
threshold it sends sObject Collections (200 records a call, allOrNone false); above, one Bulk
API 2.0 ingest job with failed and unprocessed records read back. Records that hit a row lock
are sent again in later rounds, waiting as the client's retry policy says; every other
per-record error is a rejection, reported and not retried. One
:class:`~connectors.base.ApplyBatch` is yielded per call or job, so that the pipeline records
what was written before the next call starts.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.base import ApplyBatch, ConnectorState
from connectors.salesforce.client import RETRIABLE_CODES, SalesforceClient
from connectors.salesforce.config import SalesforceConfig
from connectors.salesforce.extract import soql_datetime, soql_literal
from connectors.salesforce.fields import Fields
from icp_sync.errors import FatalConnectorError, RetriableConnectorError
from icp_sync.log import get_logger
from icp_sync.model import OWNED, CrmObject, FieldKind
from icp_sync.writeback import Plan

__all__ = ["COLLECTION_SIZE", "Writer", "bulk_update", "collections_update", "salesforce_value"]

log = get_logger(connector="salesforce")

COLLECTION_SIZE = 200


def salesforce_value(owned: str, value: Any) -> Any:
    """A planned value of owned field ``owned`` in the form its Salesforce field takes (JSON)."""
    if value is None:
        return None
    spec = OWNED[owned]
    if spec.kind is FieldKind.DATETIME and isinstance(value, datetime):
        return soql_datetime(value)
    if spec.kind is FieldKind.NUMBER:
        return int(value)
    if spec.kind is FieldKind.CHECKBOX:
        return bool(value)
    if spec.kind in (FieldKind.TEXT, FieldKind.LONG_TEXT) and spec.length:
        return str(value)[: spec.length]
    return value


class Writer:
    """Applies write-back plans to Salesforce Accounts.

    Args:
        client: The API client.
        config: The ``[salesforce]`` section.
        fields: Which fields exist.
        state: Where write windows and the integration user id are kept.
        bulk_wait: First wait between bulk job status polls, in seconds.
    """

    def __init__(
        self,
        client: SalesforceClient,
        config: SalesforceConfig,
        fields: Fields,
        state: ConnectorState,
        *,
        bulk_wait: float,
    ) -> None:
        self._client = client
        self._config = config
        self._fields = fields
        self._state = state
        self._bulk_wait = bulk_wait

    def apply(self, plan: Plan) -> Iterator[ApplyBatch]:
        """Write the plan's Account changes; yields results per call (or per bulk job)."""
        mapping = self._config.fields.writeback
        allowed = set(self._fields.writable().values())
        records: dict[str, dict[str, Any]] = {}
        for (obj, record_id), values in plan.by_record().items():
            if obj is not CrmObject.ACCOUNT:
                raise FatalConnectorError(
                    f"icp-sync writes no {obj} fields", connector="salesforce"
                )
            row = {mapping[owned]: salesforce_value(owned, v) for owned, v in values.items()}
            outside = set(row) - allowed
            if outside:
                raise FatalConnectorError(
                    f"refusing to write {', '.join(sorted(outside))}: not an existing owned field",
                    connector="salesforce",
                )
            records[record_id] = row
        if not records:
            return
        windows = [w for w in self._state.load().get("write_windows", []) if w.get("end")]
        windows = [*windows[-5:], {"start": soql_datetime(datetime.now(UTC)), "end": None}]
        self._remember(write_windows=windows)
        conflicts = self._changed_since_read(list(records))
        if conflicts:
            reason = "changed in Salesforce since it was read; written next cycle"
            yield ApplyBatch(deferred=dict.fromkeys(conflicts, reason))
            for record_id in conflicts:
                records.pop(record_id, None)
        owned_of = {api: owned for owned, api in mapping.items()}
        written: str | None = None
        try:
            if len(records) > self._config.bulk_write_threshold:
                log.info("writeback_method", method="bulk", records=len(records))
                batches = bulk_update(self._client, records, owned_of, poll=self._bulk_wait)
            else:
                log.info("writeback_method", method="collections", records=len(records))
                batches = collections_update(self._client, records, owned_of)
            for batch in batches:
                written = written or next(iter(batch.written), None)
                yield batch
        finally:
            windows[-1]["end"] = soql_datetime(datetime.now(UTC) + timedelta(seconds=1))
            self._remember(write_windows=windows)
        if written and not self._state.load().get("user_id"):
            self._learn_user(written)

    def _remember(self, **values: Any) -> None:
        state = self._state.load()
        state.update(values)
        self._state.save(state)

    def _changed_since_read(self, ids: list[str]) -> list[str]:
        read_at = self._state.load().get("last_read")
        if not read_at or not ids:
            return []
        user = self._state.load().get("user_id")
        soql = f"SELECT Id FROM Account WHERE SystemModstamp > {read_at}" + (
            f" AND LastModifiedById != {soql_literal(str(user))}" if user else ""
        )
        result = self._client.call("conflict check", lambda sf: sf.query_all(soql))
        wanted = set(ids)
        return [str(r["Id"]) for r in result.get("records", []) if str(r["Id"]) in wanted]

    def _learn_user(self, record_id: str) -> None:
        soql = f"SELECT LastModifiedById FROM Account WHERE Id = {soql_literal(record_id)}"
        result = self._client.call("identify integration user", lambda sf: sf.query(soql))
        rows = result.get("records", [])
        if rows and rows[0].get("LastModifiedById"):
            self._remember(user_id=str(rows[0]["LastModifiedById"]))


def collections_update(
    client: SalesforceClient,
    records: Mapping[str, Mapping[str, Any]],
    owned_of: Mapping[str, str],
) -> Iterator[ApplyBatch]:
    """Update Accounts 200 at a time with ``PATCH composite/sobjects`` (allOrNone false).

    Args:
        client: Runs each call with retries.
        records: Record id -> API field -> value.
        owned_of: API field name -> owned field name (to report what was written).
    """
    max_attempts = client.max_attempts
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

            results = client.call("update Account collection", update) or []
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
        client.pause(attempt)
        pending = locked


def bulk_update(
    client: SalesforceClient,
    records: Mapping[str, Mapping[str, Any]],
    owned_of: Mapping[str, str],
    *,
    poll: float,
) -> Iterator[ApplyBatch]:
    """Update Accounts with a Bulk API 2.0 ingest job; retry row locks and unprocessed rows.

    Args:
        client: Runs each call with retries; its ``max_attempts`` bounds the jobs.
        records: Record id -> API field -> value.
        owned_of: API field name -> owned field name.
        poll: First wait between job status polls, in seconds.
    """
    max_attempts = client.max_attempts
    pending = dict(records)
    for attempt in range(1, max_attempts + 1):
        job_id = _submit(client, pending)
        outcome = _outcome(client, job_id, poll=poll)
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
        client.pause(attempt)
        pending = retry


def _csv_cell(value: Any) -> str:
    # in Bulk API CSV an empty cell means "leave as is"; #N/A clears the field
    if value is None:
        return "#N/A"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _submit(client: SalesforceClient, records: Mapping[str, Mapping[str, Any]]) -> str:
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
    call = client.call
    job = call("bulk ingest job", lambda sf: sf.restful("jobs/ingest", method="POST", json=spec))
    job_id = str(job["id"])
    call("bulk upload", client.upload_csv(job_id, buffer.getvalue().encode("utf-8")))
    call(
        "bulk close",
        lambda sf: sf.restful(
            f"jobs/ingest/{job_id}", method="PATCH", json={"state": "UploadComplete"}
        ),
    )
    return job_id


def _outcome(client: SalesforceClient, job_id: str, *, poll: float) -> dict[str, Any]:
    call = client.call
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
        client.wait(delay)
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
