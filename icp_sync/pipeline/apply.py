"""The write-back step of a sync: score with the ICP in force, plan, apply, record.

Owned-field values read from the CRM and those written are recorded as the current state
the planner compares with, so an unchanged value never costs a call.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, cast

import pandas as pd

from connectors.base import WritableConnector
from icp_sync.config import Settings
from icp_sync.log import get_logger
from icp_sync.manual_edits import ManualEditPolicy, detect, keep_overrides
from icp_sync.model import CrmObject
from icp_sync.pipeline.derive import active_definition
from icp_sync.pipeline.history import History
from icp_sync.pipeline.score import score
from icp_sync.store import Store
from icp_sync.tiering import build_tal
from icp_sync.writeback import (
    ACCOUNT_FIELDS,
    Plan,
    canonical_value,
    desired_account_values,
    plan,
    retry_due,
)

__all__ = ["remember_read_back", "write_back"]

log = get_logger()


def remember_read_back(
    store: Store,
    obj: CrmObject,
    owned: pd.DataFrame | None,
    clean: pd.DataFrame,
    *,
    now: datetime,
    edited_by_others: frozenset[str] | None = None,
    policy: ManualEditPolicy = ManualEditPolicy.REVERT,
) -> int:
    """Owned-field values read from the CRM become the 'current' the planner compares with.

    Values that differ from what icp-sync last knew, on records someone else modified last,
    are manual edits: recorded as such, logged one line per field, and counted (returned).
    """
    columns = [f for f in ACCOUNT_FIELDS if owned is not None and f in owned]
    if obj is not CrmObject.ACCOUNT or owned is None or not columns or clean.empty:
        return 0
    values = owned.loc[owned.index.isin(clean["account_id"]), columns].map(canonical_value)
    rows = cast(dict[str, dict[str, str]], values.to_dict("index"))
    known = store.ledger.known_values(obj, rows)
    changed = {
        record_id: {f: v for f, v in fields.items() if known.get(record_id, {}).get(f) != v}
        for record_id, fields in rows.items()
    }
    changed = {record_id: fields for record_id, fields in changed.items() if fields}
    edits = detect(known, changed, edited_by_others or ())
    manual = {(e.record_id, e.field) for e in edits}
    for edit in edits:
        log.warning(
            "manual_edit",
            record_id=edit.record_id,
            field=edit.field,
            was=edit.before,
            now=edit.after,
            action="kept as an override"
            if policy is ManualEditPolicy.KEEP
            else "reverted by the next write-back",
        )
    read = {
        record_id: {f: v for f, v in fields.items() if (record_id, f) not in manual}
        for record_id, fields in changed.items()
    }
    store.ledger.record_field_values(obj, read, source="read", now=now)
    by_hand: dict[str, dict[str, str]] = {}
    for edit in edits:
        by_hand.setdefault(edit.record_id, {})[edit.field] = edit.after
    store.ledger.record_field_values(obj, by_hand, source="manual", now=now)
    return len(edits)


def write_back(
    settings: Settings,
    store: Store,
    connector: WritableConnector,
    history: History,
    *,
    run_id: str,
    now: datetime,
    dry_run: bool,
) -> dict[str, Any]:
    """Score with the active ICP, plan the field changes, and (unless a dry run) apply them."""
    writable = connector.writable_fields()
    if not writable:
        log.warning(
            "writeback_skipped",
            reason="no ICP fields exist in the CRM yet",
            fix="run `icp-sync setup-fields`",
        )
        return {
            "skipped": "no ICP fields exist in the CRM; run `icp-sync setup-fields`",
            "records_written": 0,
        }
    definition, model = active_definition(settings, store, history, now=now)
    scored = score(settings, store, history, now=now, definition=definition, model=model)
    stored_tal = store.versions.latest_tal(definition.version)
    if stored_tal is None:
        members, coverage = build_tal(scored.frame, definition, settings.tal.size)
        store.versions.save_tal(
            name=settings.tal.name,
            version=definition.version,
            members=members,
            coverage=coverage,
            now=now,
        )
    else:
        members = stored_tal.members
    desired = desired_account_values(
        scored.frame, members, version=definition.version, scored_at=now
    )
    current = store.ledger.field_values(CrmObject.ACCOUNT)
    manual = store.ledger.manual_fields(CrmObject.ACCOUNT)
    policy = ManualEditPolicy(settings.writeback.manual_edits)
    if manual and policy is ManualEditPolicy.KEEP:
        desired = keep_overrides(desired, current, manual)
    planned = plan(desired, current, writable=writable)
    refused = store.ledger.rejections(CrmObject.ACCOUNT)
    again = {
        record_id: _same_attempt(refused[record_id].values, values)
        for (_, record_id), values in planned.by_record().items()
        if record_id in refused
    }
    skip = {
        record_id: "rejected before with the same values; tried again later"
        for record_id, same in again.items()
        if same
        and not retry_due(
            times=refused[record_id].times, last_at=refused[record_id].last_at, now=now
        )
    }
    if skip:
        planned = plan(desired, current, writable=writable, skip=skip)
    summary: dict[str, Any] = {
        "version": definition.version,
        "tiers": scored.tiers,
        "overrides": scored.overrides,
        "plan": planned.summary(),
        "skipped_known_rejects": len(skip),
        "retried_rejects": len(again) - len(skip),
        "dry_run": dry_run or not settings.writeback.enabled,
        "records_written": 0,
        "rejected": 0,
        "deferred": 0,
        "manual_edits": {
            "policy": str(policy),
            "kept": len(manual) if policy is ManualEditPolicy.KEEP else 0,
            "reverting": _reverting(planned, manual) if policy is ManualEditPolicy.REVERT else 0,
        },
    }
    if summary["dry_run"]:
        return summary
    summary |= _apply(store, connector, planned, run_id=run_id, now=now)
    counted = ("records_written", "rejected", "deferred", "retried_rejects")
    log.info("writeback_applied", **{k: summary[k] for k in counted})
    return summary


def _reverting(planned: Plan, manual: set[tuple[str, str]]) -> int:
    """Manual edits this plan writes over (each logged)."""
    reverted = [c for c in planned.changes if (c.record_id, c.field) in manual]
    for change in reverted:
        log.warning(
            "manual_edit_reverted",
            record_id=change.record_id,
            field=change.field,
            manual_value=change.old,
            icp_value=change.new,
        )
    return len(reverted)


def _same_attempt(refused: str, values: dict[str, Any]) -> bool:
    """Would this write repeat a refused one? (The scoring time alone does not count.)"""
    before = {k: v for k, v in json.loads(refused).items() if k != "scored_at"}
    now = {k: v for k, v in values.items() if k != "scored_at"}
    return bool(before == json.loads(json.dumps(now, default=str)))


def _apply(
    store: Store, connector: WritableConnector, planned: Plan, *, run_id: str, now: datetime
) -> dict[str, Any]:
    counts = {"records_written": 0, "rejected": 0, "deferred": 0}
    wanted = planned.by_record()
    for batch in connector.apply(planned):
        written = {
            record_id: {f: canonical_value(v) for f, v in fields.items()}
            for record_id, fields in batch.written.items()
        }
        store.ledger.record_field_values(CrmObject.ACCOUNT, written, source="written", now=now)
        entries = [(r, "written", batch.written[r], batch.method) for r in batch.written]
        entries += [
            (r, "rejected", wanted.get((CrmObject.ACCOUNT, r), {}), reason)
            for r, reason in batch.rejected.items()
        ]
        entries += [(r, "deferred", {}, reason) for r, reason in batch.deferred.items()]
        store.ledger.log_writes(run_id, CrmObject.ACCOUNT, entries, now=now)
        counts["records_written"] += len(batch.written)
        counts["rejected"] += len(batch.rejected)
        counts["deferred"] += len(batch.deferred)
        for record_id, reason in batch.rejected.items():
            log.warning("record_rejected", record_id=record_id, reason=reason)
    return counts
