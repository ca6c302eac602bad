"""Salesforce write-back: the allow-list check, sObject Collections and Bulk API 2.0 ingest.

:class:`Writer` turns a plan into Salesforce values (only owned fields that exist, checked
before anything is sent) and defers records changed in Salesforce since they were read;
its own writes are read back by the next extraction like any change. Account and
Opportunity changes alike go, up to the bulk threshold, by sObject Collections (200 records a
call, allOrNone false); above, by Bulk API 2.0 ingest jobs on their object
(:mod:`~connectors.salesforce.ingest`: journaled per object, split by size, resumed or aborted
after a crash) with failed and unprocessed records read back. Records that hit a row lock
are sent again in later rounds, waiting as the client's retry policy says; every other
per-record error is a rejection, reported and not retried. One
:class:`~connectors.base.ApplyBatch` is yielded per call or job, so that the pipeline records
what was written before the next call starts.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from connectors.base import ApplyBatch, ConnectorState
from connectors.salesforce.client import RETRIABLE_CODES, SalesforceClient
from connectors.salesforce.config import SalesforceConfig
from connectors.salesforce.fields import SOBJECT, Fields
from connectors.salesforce.ingest import (
    JobJournal,
    abort_unjournaled,
    bulk_update,
    csv_cell,
    landed_values,
    recover,
)
from connectors.salesforce.soql import soql_datetime, soql_literal
from icp_sync.errors import FatalConnectorError
from icp_sync.log import get_logger
from icp_sync.model import OWNED, CrmObject, FieldKind
from icp_sync.writeback import Plan, canonical_value

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
    """Applies write-back plans to Salesforce Accounts and Opportunities.

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

    def cost(self, records: int) -> dict[str, Any]:
        """The API calls writing ``records`` changed records of one object makes (Account or
        Opportunity alike): a conflict check, then one sObject Collections call per 200
        records, or above ``bulk_write_threshold`` one Bulk API 2.0 ingest job (create,
        upload, close, at least one status poll, three result sets)."""
        if records == 0:
            return {"method": "none", "calls": 0}
        if records > self._config.bulk_write_threshold:
            return {"method": "bulk", "calls": 1 + 7, "jobs": 1}
        return {"method": "collections", "calls": 1 + math.ceil(records / COLLECTION_SIZE)}

    def apply(self, plan: Plan) -> Iterator[ApplyBatch]:
        """Write the plan's changes (Account, then Opportunity); yields results per call or job.

        Only the objects the plan changes are written and settled (an empty plan is the
        Account write-back's): what a killed run left in flight for an object is settled by
        the next plan for that object, so its results are recorded as that object's.
        """
        grouped: dict[CrmObject, dict[str, dict[str, Any]]] = {}
        for (obj, record_id), values in plan.by_record().items():
            mapping, allowed = self._allow_list(obj)
            row = {mapping[owned]: salesforce_value(owned, v) for owned, v in values.items()}
            outside = set(row) - allowed
            if outside:
                raise FatalConnectorError(
                    f"refusing to write {', '.join(sorted(outside))}: not an existing owned field",
                    connector="salesforce",
                )
            grouped.setdefault(obj, {})[record_id] = row
        # an empty plan still settles what a killed run left in flight
        objects = plan.objects or {CrmObject.ACCOUNT}
        for obj in (CrmObject.ACCOUNT, CrmObject.OPPORTUNITY):
            if obj in objects:
                yield from self._apply(obj, grouped.get(obj, {}))

    def _allow_list(self, obj: CrmObject) -> tuple[Mapping[str, str], set[str]]:
        """Owned field -> API name for ``obj``, and the API names that exist (the allow-list)."""
        fields = self._config.fields
        mapping = fields.writeback if obj is CrmObject.ACCOUNT else fields.opportunity_writeback
        existing = self._fields.existing(SOBJECT[obj])
        return mapping, {api for api in mapping.values() if api in existing}

    def _apply(self, obj: CrmObject, records: dict[str, dict[str, Any]]) -> Iterator[ApplyBatch]:
        sobject = SOBJECT[obj]
        mapping, _ = self._allow_list(obj)
        owned_of = {api: owned for owned, api in mapping.items()}
        journal = JobJournal(self._state, sobject)
        yield from self._recover(journal, records, owned_of, sobject)
        if not records:
            return
        conflicts = self._changed_since_read(list(records), sobject)
        if conflicts:
            reason = "changed in Salesforce since it was read; written next cycle"
            yield ApplyBatch(deferred=dict.fromkeys(conflicts, reason))
            for record_id in conflicts:
                records.pop(record_id, None)
        written: str | None = None
        if len(records) > self._config.bulk_write_threshold:
            log.info("writeback_method", method="bulk", records=len(records), sobject=sobject)
            batches = bulk_update(
                self._client,
                records,
                owned_of,
                journal,
                poll=self._bulk_wait,
                max_bytes=self._config.bulk_upload_max_bytes,
            )
        else:
            log.info(
                "writeback_method", method="collections", records=len(records), sobject=sobject
            )
            batches = collections_update(
                self._client, records, owned_of, self._state, sobject=sobject
            )
        for batch in batches:
            written = written or next(iter(batch.written), None)
            yield batch
        if written and not self._state.load().get("user_id"):
            self._learn_user(written, sobject)

    def _recover(
        self,
        journal: JobJournal,
        records: dict[str, dict[str, Any]],
        owned_of: dict[str, str],
        sobject: str,
    ) -> Iterator[ApplyBatch]:
        """Settle a killed run's writes; drop from ``records`` what they already wrote.

        A Collections call in flight when the run died is checked by reading its records
        back (one query): those holding the sent values were written. Bulk jobs on this
        object are resumed or aborted (:func:`~connectors.salesforce.ingest.recover`).
        """
        intent = self._state.load().get(_intent_key(sobject))
        batches: list[Iterator[ApplyBatch]] = []
        if intent:
            batches.append(self._landed(intent, owned_of, sobject))
        if journal.was_creating():
            abort_unjournaled(self._client, journal)
        if journal.pending():
            batches.append(recover(self._client, journal, owned_of, poll=self._bulk_wait))
        for batch in (b for source in batches for b in source):
            for rid, values in batch.written.items():
                if rid in records and _same(records[rid], values, owned_of):
                    records.pop(rid)
            yield batch

    def _landed(
        self, intent: dict[str, dict[str, Any]], owned_of: dict[str, str], sobject: str
    ) -> Iterator[ApplyBatch]:
        fields = sorted({api for row in intent.values() for api in row})
        ids = ", ".join(soql_literal(rid) for rid in intent)
        soql = f"SELECT Id, {', '.join(fields)} FROM {sobject} WHERE Id IN ({ids})"
        found = self._client.call("verify interrupted write", lambda sf: sf.query_all(soql))
        held = {str(r["Id"]): r for r in found.get("records", [])}
        landed = {
            rid: {owned_of[api]: value for api, value in row.items()}
            for rid, row in intent.items()
            if rid in held
            and all(
                canonical_value(held[rid].get(api)) == canonical_value(v) for api, v in row.items()
            )
        }
        log.info("salesforce_interrupted_write", sent=len(intent), landed=len(landed))
        yield ApplyBatch(written=landed)
        self._remember(**{_intent_key(sobject): None})

    def _remember(self, **values: Any) -> None:
        state = self._state.load()
        state.update(values)
        self._state.save(state)

    def _changed_since_read(self, ids: list[str], sobject: str) -> list[str]:
        key = "last_read" if sobject == "Account" else f"last_read:{sobject}"
        read_at = self._state.load().get(key)
        if not read_at or not ids:
            return []
        user = self._state.load().get("user_id")
        soql = f"SELECT Id FROM {sobject} WHERE SystemModstamp > {read_at}" + (
            f" AND LastModifiedById != {soql_literal(str(user))}" if user else ""
        )
        result = self._client.call("conflict check", lambda sf: sf.query_all(soql))
        wanted = set(ids)
        return [str(r["Id"]) for r in result.get("records", []) if str(r["Id"]) in wanted]

    def _learn_user(self, record_id: str, sobject: str) -> None:
        soql = f"SELECT LastModifiedById FROM {sobject} WHERE Id = {soql_literal(record_id)}"
        result = self._client.call("identify integration user", lambda sf: sf.query(soql))
        rows = result.get("records", [])
        if rows and rows[0].get("LastModifiedById"):
            self._remember(user_id=str(rows[0]["LastModifiedById"]))


def collections_update(
    client: SalesforceClient,
    records: Mapping[str, Mapping[str, Any]],
    owned_of: Mapping[str, str],
    state: ConnectorState | None = None,
    *,
    sobject: str = "Account",
) -> Iterator[ApplyBatch]:
    """Update records 200 at a time with ``PATCH composite/sobjects`` (allOrNone false).

    Args:
        client: Runs each call with retries.
        records: Record id -> API field -> value.
        owned_of: API field name -> owned field name (to report what was written).
        state: Where each call's records are noted before it is sent and cleared once its
            results were recorded, so a run killed in between can check what landed.
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
                    {"attributes": {"type": sobject}, "Id": rid, **records[rid]} for rid in chunk
                ],
            }

            def update(sf: Any, body: dict[str, Any] = body) -> Any:
                return sf.restful("composite/sobjects", method="PATCH", json=body)

            if state is not None:
                _note(state, {rid: dict(records[rid]) for rid in chunk}, sobject)
            results = client.call(f"update {sobject} collection", update) or []
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
            if state is not None:
                _note(state, None, sobject)
        if not locked:
            return
        log.warning("salesforce_row_locks", records=len(locked), attempt=attempt)
        client.pause(attempt)
        pending = locked


_INTENT = "collection_in_flight"


def _intent_key(sobject: str) -> str:
    """Where the records of a Collections call in flight are noted (Account: the old key)."""
    return _INTENT if sobject == "Account" else f"{_INTENT}:{sobject}"


def unrecorded_writes(
    client: SalesforceClient, state: ConnectorState, sobject: str, *, poll: float
) -> dict[str, dict[str, Any]]:
    """What writes of icp-sync's may have put in records without the ledger knowing yet
    (``{id: {api name: value}}``): the records of a Collections call interrupted in flight,
    and what the Bulk jobs a killed run left wrote (read from their results: no call unless
    such a job exists)."""
    intent = state.load().get(_intent_key(sobject)) or {}
    unrecorded = {str(rid): dict(values) for rid, values in intent.items()}
    for rid, values in landed_values(client, JobJournal(state, sobject), poll=poll).items():
        unrecorded.setdefault(rid, {}).update(values)
    return unrecorded


def _note(
    state: ConnectorState, intent: dict[str, dict[str, Any]] | None, sobject: str = "Account"
) -> None:
    current = state.load()
    current[_intent_key(sobject)] = intent
    state.save(current)


def _same(
    row: Mapping[str, Any], recovered: Mapping[str, Any], owned_of: Mapping[str, str]
) -> bool:
    """Did a recovered job write these API values (compared as Bulk CSV cells)?

    The scoring stamp is left out: it says when the values were computed, and the job wrote
    the same values at an earlier stamp.
    """
    return all(
        owned_of[api] in recovered and csv_cell(value) == csv_cell(recovered[owned_of[api]])
        for api, value in row.items()
        if owned_of[api] != "scored_at"
    )
