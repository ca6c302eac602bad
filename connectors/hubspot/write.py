"""HubSpot write-back: the allow-list check and batch updates, 100 companies or deals a call.

Companies get the ICP properties of the write-back, deals the compliance properties of the
compliance monitor (each plan holds one or the other).

Every input carries an ``objectWriteTraceId`` (the record id), so HubSpot answers a batch
with some bad inputs 207 and writes the others; each error is matched back to its record.
Validation errors and unknown ids are rejections (reported, not retried now); anything
else is sent again in later rounds, and still failing after the last round is deferred to
the next cycle. Before every call the properties are checked against the allow-list (owned
properties that exist, and HubSpot's native ICP properties when enabled), and the call's
values are noted in the connector state; a run killed before their results were recorded
reads those records back first (one batch read) and records what landed, so nothing is
written twice and the read-back is not mistaken for someone else's edit.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from connectors.base import ApplyBatch, ConnectorState
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.config import HubSpotConfig
from connectors.hubspot.extract import INTENT, iso
from connectors.hubspot.fields import KIND, Metadata
from icp_sync.errors import FatalConnectorError
from icp_sync.log import get_logger
from icp_sync.model import OWNED, CrmObject, FieldKind
from icp_sync.writeback import Plan, canonical_value

__all__ = ["BATCH_SIZE", "NATIVE_TIERS", "Writer", "hubspot_value"]

log = get_logger(connector="hubspot")

BATCH_SIZE = 100
NATIVE_TIERS = {"Green": "tier_1", "Yellow": "tier_2", "Red": "tier_3"}
_FINAL = ("VALIDATION_ERROR", "OBJECT_NOT_FOUND", "INVALID_EMAIL", "PROPERTY_DOESNT_EXIST")


def hubspot_value(owned: str, value: Any) -> str:
    """A planned value of owned field ``owned`` as a HubSpot property string ("" clears)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    spec = OWNED[owned]
    if spec.kind is FieldKind.DATETIME and isinstance(value, datetime):
        return iso(value)
    if spec.kind is FieldKind.NUMBER:
        number = float(value)
        return str(int(number)) if number.is_integer() else repr(number)
    if spec.kind is FieldKind.CHECKBOX:
        if isinstance(value, str):  # canonical text
            return "true" if value.strip().casefold() == "true" else "false"
        return "true" if bool(value) else "false"
    text = str(value)
    return text[: spec.length] if spec.length else text


class Writer:
    """Applies write-back plans to HubSpot companies and deals."""

    def __init__(
        self,
        client: HubSpotClient,
        config: HubSpotConfig,
        metadata: Metadata,
        state: ConnectorState,
        *,
        rounds: int = 3,
    ) -> None:
        self._client = client
        self._config = config
        self._metadata = metadata
        self._state = state
        self._rounds = rounds

    def apply(self, plan: Plan) -> Iterator[ApplyBatch]:
        """Write the plan's company changes, or its deal changes (the compliance monitor's);
        yields the results of every call.

        A plan with deal changes settles a killed run's deal write first, any other (even an
        empty one) a killed run's company write: each caller records the results under its
        own object.
        """
        grouped: dict[CrmObject, dict[str, dict[str, Any]]] = {}
        for (obj, record_id), values in plan.by_record().items():
            if obj not in KIND:
                raise FatalConnectorError(f"icp-sync writes no {obj} fields", connector="hubspot")
            grouped.setdefault(obj, {})[record_id] = dict(values)
        if len(grouped) > 1:
            raise FatalConnectorError(
                "a plan writes companies or deals, not both", connector="hubspot"
            )
        obj = next(iter(grouped), CrmObject.ACCOUNT)
        yield from self._apply(obj, grouped.get(obj, {}))

    def _apply(self, obj: CrmObject, planned: dict[str, dict[str, Any]]) -> Iterator[ApplyBatch]:
        kind = KIND[obj]
        mapping = self._metadata.writable(obj)
        native = self._metadata.native() if obj is CrmObject.ACCOUNT else {}
        allowed = set(mapping.values()) | set(native.values())
        records: dict[str, dict[str, str]] = {}
        for record_id, values in planned.items():
            unknown = set(values) - set(mapping)
            if unknown:
                raise FatalConnectorError(
                    f"refusing to write {', '.join(sorted(unknown))}: not an existing owned "
                    f"{kind} property",
                    connector="hubspot",
                )
            row = {mapping[k]: hubspot_value(k, v) for k, v in values.items()}
            if "tier" in values and "tier" in native:
                row[native["tier"]] = NATIVE_TIERS.get(str(values["tier"]), "")
            if "tal" in values and "tal" in native:
                row[native["tal"]] = hubspot_value("tal", values["tal"])
            records[record_id] = row
        yield from self._recover(kind, records, mapping)
        owned_of = {p: k for k, p in mapping.items()}
        pending = list(records)
        for attempt in range(1, self._rounds + 1):
            again: list[str] = []
            for start in range(0, len(pending), BATCH_SIZE):
                chunk = pending[start : start + BATCH_SIZE]
                outside = {p for rid in chunk for p in records[rid]} - allowed
                if outside:  # checked before every call, whatever built the rows
                    raise FatalConnectorError(
                        f"refusing to write {', '.join(sorted(outside))}: not on the allow-list",
                        connector="hubspot",
                    )
                self._note(
                    kind,
                    {
                        rid: {owned_of[p]: v for p, v in records[rid].items() if p in owned_of}
                        for rid in chunk
                    },
                )
                answer = self._client.batch_update(
                    kind,
                    [
                        {"id": rid, "properties": records[rid], "objectWriteTraceId": rid}
                        for rid in chunk
                    ],
                )
                batch, retry = _outcome(chunk, answer, planned, final=attempt == self._rounds)
                again += retry
                yield batch
                self._note(kind, None)
            if not again:
                return
            log.warning("hubspot_write_retry", kind=kind, records=len(again), round=attempt)
            self._client.pause(attempt)
            pending = again

    def _note(self, kind: str, intent: dict[str, dict[str, str]] | None) -> None:
        state = self._state.load()
        state[_intent_key(kind)] = intent
        self._state.save(state)

    def _recover(
        self, kind: str, records: dict[str, dict[str, str]], mapping: Mapping[str, str]
    ) -> Iterator[ApplyBatch]:
        """Record what a killed run's last call wrote; drop it from ``records``."""
        intent: dict[str, dict[str, str]] = self._state.load().get(_intent_key(kind)) or {}
        if not intent:
            return
        ids = list(intent)
        landed: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), BATCH_SIZE):
            chunk = ids[start : start + BATCH_SIZE]
            answer = self._client.batch_read(kind, chunk, mapping.values())
            for result in answer.get("results") or []:
                rid = str(result["id"])
                held = result.get("properties") or {}
                sent = intent.get(rid, {})
                if all(
                    canonical_value(held.get(mapping[k])) == canonical_value(v)
                    for k, v in sent.items()
                    if k in mapping
                ):
                    landed[rid] = dict(sent)
        log.info("hubspot_interrupted_write", kind=kind, sent=len(intent), landed=len(landed))
        yield ApplyBatch(written=landed, method="batch")
        for rid, values in landed.items():
            row = records.get(rid)
            if row is not None and all(
                canonical_value(row.get(mapping[k])) == canonical_value(v)
                for k, v in values.items()
                if k != "scored_at" and k in mapping
            ):
                records.pop(rid)
        self._note(kind, None)


def _intent_key(kind: str) -> str:
    """Where the values of the call in flight are noted (companies: where extraction looks)."""
    return INTENT if kind == "companies" else f"{INTENT}:{kind}"


def _outcome(
    chunk: list[str],
    answer: Mapping[str, Any],
    planned: Mapping[str, Mapping[str, Any]],
    *,
    final: bool,
) -> tuple[ApplyBatch, list[str]]:
    """The written, rejected and deferred records of one batch answer, and those to retry."""
    written = {
        str(r["id"]): dict(planned[str(r["id"])])
        for r in answer.get("results") or []
        if str(r["id"]) in planned
    }
    rejected: dict[str, str] = {}
    deferred: dict[str, str] = {}
    retry: list[str] = []
    for error in answer.get("errors") or []:
        context = error.get("context") or {}
        ids = [str(i) for i in (context.get("objectWriteTraceId") or context.get("ids") or [])]
        category = str(error.get("category") or "")
        reason = f"{category}: {error.get('message')}"
        for rid in ids:
            if rid not in planned or rid in written:
                continue
            if category in _FINAL:
                rejected[rid] = reason
            elif final:
                deferred[rid] = f"{reason}; written next cycle"
            else:
                retry.append(rid)
    unanswered = [r for r in chunk if r not in written and r not in rejected and r not in deferred]
    for rid in unanswered:
        if rid in retry:
            continue
        if final:
            deferred[rid] = "no answer for this record; written next cycle"
        else:
            retry.append(rid)
    return ApplyBatch(written=written, rejected=rejected, deferred=deferred, method="batch"), retry
