"""The write-back step of a sync: score with the active ICP and its TAL, plan, apply, record.

Owned-field values read from the CRM and those written are recorded as the current state
the planner compares with, so an unchanged value never costs a call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from connectors.base import ApplyBatch, WritableConnector
from icp_sync import progress
from icp_sync.config import Settings
from icp_sync.errors import CycleInterruptedError, MassChangeError
from icp_sync.log import get_logger
from icp_sync.manual_edits import ManualEditPolicy, detect
from icp_sync.model import CrmObject
from icp_sync.pipeline.history import History
from icp_sync.pipeline.planning import WritePlan, plan_writes
from icp_sync.pipeline.preview import preview
from icp_sync.pipeline.versions import icp_in_force
from icp_sync.store import Store
from icp_sync.writeback import ACCOUNT_FIELDS, Plan, canonical_value, canonical_values

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
    unrecorded: Mapping[str, Mapping[str, str]] | None = None,
    policy: ManualEditPolicy = ManualEditPolicy.REVERT,
    differing: set[str] | None = None,
) -> tuple[int, int]:
    """Owned-field values read from the CRM become the 'current' the planner compares with.

    Values that differ from what icp-sync last knew and that icp-sync cannot have written
    (see :func:`icp_sync.manual_edits.detect`) are manual edits: recorded as such, logged one
    line per field, and counted.

    ``differing``: when given, the ids of the records whose owned values differ are added.

    Returns:
        (manual edits, records whose owned values differ from what icp-sync knew).
    """
    columns = [f for f in ACCOUNT_FIELDS if owned is not None and f in owned]
    if obj is not CrmObject.ACCOUNT or owned is None or not columns or clean.empty:
        return 0, 0
    ids = set(clean["account_id"].tolist())
    mine = np.fromiter((i in ids for i in owned.index.tolist()), dtype=bool, count=len(owned))
    values = canonical_values(owned.loc[mine, columns])
    record_ids = values.index.tolist()
    known = store.ledger.known_values(obj, record_ids)
    # nothing known is the empty value (as the planner sees it): an empty field read on a
    # new record is no change, and 100,000 new records cost no 800,000 ledger rows
    changed = _changed_fields(record_ids, values, known)
    if differing is not None:
        differing.update(changed)
    fresh = not known and not store.ledger.has_values(obj)
    edits = detect(known, changed, edited_by_others or (), unrecorded, fresh=fresh)
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
    read = changed
    if manual:
        read = {
            record_id: {f: v for f, v in fields.items() if (record_id, f) not in manual}
            for record_id, fields in changed.items()
        }
    store.ledger.record_field_values(obj, read, source="read", now=now)
    by_hand: dict[str, dict[str, str]] = {}
    for edit in edits:
        by_hand.setdefault(edit.record_id, {})[edit.field] = edit.after
    store.ledger.record_field_values(obj, by_hand, source="manual", now=now)
    return len(edits), len(changed)


def _changed_fields(
    record_ids: list[Any], values: pd.DataFrame, known: dict[str, dict[str, str]]
) -> dict[str, dict[str, str]]:
    """The fields of ``values`` (canonical texts; rows: ``record_ids``) that differ from
    ``known`` (absent is the empty text), as ``{id: {field: text}}`` in ``values``' order
    (records and fields), records with no differing field left out."""
    read = values.to_numpy(dtype=object)
    before = np.full(read.shape, "", dtype=object)
    if known:
        position = {name: i for i, name in enumerate(values.columns)}
        at = values.index.get_indexer(pd.Index(list(known)))
        for at_row, fields in zip(at.tolist(), known.values(), strict=True):
            if at_row < 0:
                continue
            for name, text in fields.items():
                column = position.get(name)
                if column is not None:
                    before[at_row, column] = text
    rows, columns = np.nonzero(read != before)
    names = values.columns.tolist()
    changed: dict[str, dict[str, str]] = {}
    for row, column, text in zip(
        rows.tolist(), columns.tolist(), read[rows, columns].tolist(), strict=True
    ):
        changed.setdefault(record_ids[row], {})[names[column]] = text
    return changed


def write_back(
    settings: Settings,
    store: Store,
    connector: WritableConnector,
    history: History,
    *,
    run_id: str,
    now: datetime,
    dry_run: bool,
    allow_mass_change: bool = False,
    stop: Callable[[], bool] | None = None,
    read_back: set[str] | None = None,
) -> dict[str, Any]:
    """Score with the active ICP and its TAL, plan the changes, and (unless a dry run) apply.

    ``read_back``: the accounts whose owned values read in this cycle differ from what
    icp-sync knew, when the last write-back applied its whole plan with the same ICP in
    force: only accounts whose scoring inputs changed are scored, and only those and these
    are planned (see :func:`plan_writes`).

    ``stop`` is asked after every write call; when it says yes the write-back stops there
    (what was written is recorded) with :class:`CycleInterruptedError`.

    Raises:
        MassChangeError: If more accounts would move tier under the same version than
            ``guards.max_retier_share`` allows (and ``allow_mass_change`` is false).
    """
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
    icp, first = icp_in_force(settings, store, history, now=now)
    if icp is None:
        proposed = ", ".join(v for v, _, _ in store.versions.history())
        reason = (
            f"no ICP version is active (proposed: {proposed}); preview one with "
            "`icp-sync activate VERSION --dry-run`, then activate it"
        )
        log.warning("writeback_skipped", reason=reason)
        return {"skipped": reason, "records_written": 0}
    with progress.step("scoring accounts and planning the write-back"):
        proposal = plan_writes(
            settings,
            store,
            history,
            icp,
            writable=set(writable),
            now=now,
            keep=True,
            read_back=read_back if first is None else None,
        )
    planned = proposal.planned
    manual, policy = proposal.manual, proposal.policy
    summary: dict[str, Any] = {
        "version": icp.definition.version,
        "as_of": icp.definition.as_of.isoformat(),
        "tal_id": icp.tal_id,
        "tiers": proposal.scored.tiers,
        "overrides": proposal.scored.overrides,
        "plan": planned.summary(),
        "scoring": proposal.scoring,
        "skipped_known_rejects": proposal.skipped_known_rejects,
        "retried_rejects": proposal.retried_rejects,
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
    if first is not None:
        summary["activated"] = {
            "version": first.version,
            "by": first.activated_by,
            "reason": "first run on an empty store: activated automatically",
        }
    tripped = None if allow_mass_change else _retier_guard(settings, proposal)
    if tripped and summary["dry_run"]:
        summary["guard"] = tripped
    elif tripped:
        raise MassChangeError(tripped)
    if summary["dry_run"]:
        summary["preview"] = preview(planned, proposal.scored.frame, connector)
        return summary
    summary |= _apply(store, connector, planned, run_id=run_id, now=now, stop=stop)
    counted = ("records_written", "rejected", "deferred", "retried_rejects")
    log.info("writeback_applied", **{k: summary[k] for k in counted})
    return summary


def _reverting(planned: Plan, manual: set[tuple[str, str]]) -> int:
    """Manual edits this plan writes over (each logged)."""
    if not manual:
        return 0
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


def _retier_guard(settings: Settings, proposal: WritePlan) -> str | None:
    """Why this write-back is a mass change (``None`` when it is not)."""
    limit = settings.guards.max_retier_share
    if proposal.retier_share <= limit:
        return None
    return (
        f"this sync would move {proposal.retiered:,} of {proposal.tiered:,} tiered accounts "
        f"({proposal.retier_share:.0%}) to another tier under the same ICP version, above "
        f"guards.max_retier_share = {limit:g}; nothing was written. Check the data "
        "(`icp-sync sync --dry-run` shows the moves); if the change is right, run "
        "`icp-sync sync --allow-mass-change`"
    )


def _apply(
    store: Store,
    connector: WritableConnector,
    planned: Plan,
    *,
    run_id: str,
    now: datetime,
    stop: Callable[[], bool] | None = None,
) -> dict[str, Any]:
    counts = {"records_written": 0, "rejected": 0, "deferred": 0}
    wanted = planned.by_record()
    texts: dict[tuple[type, Any], str] = {}
    with progress.step("writing to the CRM", total=len(wanted)) as advance:
        for batch in connector.apply(planned):
            advance(len(batch.written) + len(batch.rejected) + len(batch.deferred))
            _record(store, batch, wanted, counts, run_id=run_id, now=now, texts=texts)
            if stop is not None and stop():
                raise CycleInterruptedError(
                    f"stop requested during write-back after {counts['records_written']:,} "
                    "records; the next cycle writes the rest"
                )
    return counts


def _record(
    store: Store,
    batch: ApplyBatch,
    wanted: dict[tuple[CrmObject, str], dict[str, Any]],
    counts: dict[str, int],
    *,
    run_id: str,
    now: datetime,
    texts: dict[tuple[type, Any], str] | None = None,
) -> None:
    """Record one write call's outcome in the ledger (one transaction), and count it.

    ``texts``: canonical texts already computed, by (type, value), shared across calls.
    """
    known = {} if texts is None else texts

    def text(value: Any) -> str:
        # many records share a value (tier, version, score): canonicalised once each
        key = (type(value), value)
        try:
            return known[key]
        except KeyError:
            known[key] = canonical_value(value)
            return known[key]
        except TypeError:  # unhashable
            return canonical_value(value)

    try:
        # a known value's text without a call
        written = {
            record_id: {
                f: t if (t := known.get((type(v), v))) is not None else text(v)
                for f, v in fields.items()
            }
            for record_id, fields in batch.written.items()
        }
    except TypeError:  # an unhashable value
        written = {
            record_id: {f: text(v) for f, v in fields.items()}
            for record_id, fields in batch.written.items()
        }
    entries = [(r, "written", batch.written[r], batch.method) for r in batch.written]
    entries += [
        (r, "rejected", wanted.get((CrmObject.ACCOUNT, r), {}), reason)
        for r, reason in batch.rejected.items()
    ]
    entries += [(r, "deferred", {}, reason) for r, reason in batch.deferred.items()]
    store.ledger.record_outcome(CrmObject.ACCOUNT, written, entries, run_id=run_id, now=now)
    counts["records_written"] += len(batch.written)
    counts["rejected"] += len(batch.rejected)
    counts["deferred"] += len(batch.deferred)
    for record_id, reason in batch.rejected.items():
        log.warning("record_rejected", record_id=record_id, reason=reason)
