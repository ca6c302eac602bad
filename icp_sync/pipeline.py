"""One cycle, wired: extract -> normalise -> mirror -> score -> plan -> apply.

The only module that brings connectors, the store and the core together; the CLI and the
daemon call it. Every step that must not be lost is committed before the next one starts:
a batch is mirrored, then its cursor is stored; a write call succeeds, then what it wrote is
recorded. A run killed at any point resumes from the last committed step and reaches the
same state a clean run would. A spent API budget ends the cycle cleanly; the next one resumes.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import pandas as pd

from connectors import Connector, make_connector
from connectors.base import WritableConnector
from icp_sync.config import Settings
from icp_sync.errors import BudgetExhaustedError
from icp_sync.log import get_logger
from icp_sync.model import ID_COLUMN, CrmObject, NormalizeReport
from icp_sync.normalize import normalize
from icp_sync.segments import dimension_summary
from icp_sync.store import Store
from icp_sync.writeback import ACCOUNT_FIELDS, Plan, canonical_value, desired_account_values, plan

__all__ = ["ObjectSync", "SyncResult", "sync"]

log = get_logger()


@dataclass(slots=True, kw_only=True)
class ObjectSync:
    """What one sync did to one object."""

    crm_object: CrmObject
    source_unchanged: bool = True
    extracted: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    report: NormalizeReport | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "source_unchanged": self.source_unchanged,
            "extracted": self.extracted,
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "deleted": self.deleted,
            "rejected": len(self.report.rejects) if self.report else 0,
            "normalization": self.report.as_dict() if self.report else None,
        }


@dataclass(slots=True, kw_only=True)
class SyncResult:
    """The outcome of one sync cycle."""

    run_id: str
    connector: str
    objects: dict[CrmObject, ObjectSync]
    mirror: dict[str, int]
    segments: pd.DataFrame
    api_calls: int
    duration_s: float
    status: str = "ok"
    writeback: dict[str, Any] | None = None
    api_by_endpoint: dict[str, int] = field(default_factory=dict)

    @property
    def records_written(self) -> int:
        """CRM records updated by this cycle."""
        return int(self.writeback["records_written"]) if self.writeback else 0

    def as_dict(self) -> dict[str, Any]:
        """The ``sync --json`` document (contract: includes ``api_calls``, ``records_written``)."""
        segments = self.segments.astype(object).where(self.segments.notna(), None)
        return {
            "run_id": self.run_id,
            "status": self.status,
            "connector": self.connector,
            "duration_s": round(self.duration_s, 3),
            "api_calls": self.api_calls,
            "api_calls_by_endpoint": self.api_by_endpoint,
            "records_written": self.records_written,
            "objects": {str(k): v.as_dict() for k, v in self.objects.items()},
            "mirror": self.mirror,
            "writeback": self.writeback,
            "segments": segments.to_dict("records"),
        }


def sync(
    settings: Settings,
    store: Store,
    *,
    run_id: str,
    now: datetime,
    full: bool = False,
    dry_run: bool = False,
    connector: Connector | None = None,
) -> SyncResult:
    """Run one sync cycle and record it in the run history.

    Args:
        settings: The validated configuration.
        store: The open state store.
        run_id: Identifier of this run (bound to every log line).
        now: Start of the run.
        full: Ignore stored cursors and read everything again.
        dry_run: Plan the write-back but write nothing to the CRM.
        connector: Use this connector instead of building one from ``settings``.
    """
    started = time.perf_counter()
    owned = connector is None
    connector = connector or make_connector(settings, store)
    store.start_run(run_id, "sync", now=now)
    objects = {obj: ObjectSync(crm_object=obj) for obj in CrmObject}
    status = "ok"
    writeback: dict[str, Any] | None = None
    try:
        if full:
            store.clear_watermarks(connector.name)
        try:
            for obj in CrmObject:
                _sync_object(
                    settings=settings,
                    store=store,
                    connector=connector,
                    outcome=objects[obj],
                    run_id=run_id,
                    now=now,
                )
            if isinstance(connector, WritableConnector):
                writeback = _write_back(
                    settings, store, connector, run_id=run_id, now=now, dry_run=dry_run
                )
        except BudgetExhaustedError as exc:
            status = "budget_exhausted"
            log.warning("cycle_stopped", reason=str(exc), resume="next cycle")
        accounts = store.load_frame(CrmObject.ACCOUNT)
        opportunities = store.load_frame(CrmObject.OPPORTUNITY)
        usage = connector.usage()
        result = SyncResult(
            run_id=run_id,
            connector=connector.name,
            objects=objects,
            mirror=store.mirror_counts(),
            segments=dimension_summary(accounts, opportunities, settings.segments),
            api_calls=usage.calls,
            api_by_endpoint=usage.by_endpoint,
            duration_s=time.perf_counter() - started,
            status=status,
            writeback=writeback,
        )
    except BaseException as exc:
        store.finish_run(run_id, status="failed", summary={"error": str(exc)}, now=now)
        raise
    finally:
        if owned:
            connector.close()
    summary = result.as_dict()
    summary.pop("segments")
    store.finish_run(run_id, status=status, summary=summary, now=now)
    return result


def _sync_object(
    *,
    settings: Settings,
    store: Store,
    connector: Connector,
    outcome: ObjectSync,
    run_id: str,
    now: datetime,
) -> None:
    obj = outcome.crm_object
    since = store.get_watermark(connector.name, obj)
    for batch in connector.extract(obj, since=since, now=now):
        if batch.deleted:
            outcome.deleted += store.mark_deleted(obj, batch.deleted, now=now)
            if batch.frame.empty:
                continue
        outcome.source_unchanged = False
        clean, report = normalize(batch.frame, obj, settings.normalize, now=now)
        written = store.upsert_mirror(obj, clean, now=now)
        if batch.snapshot:
            gone = store.mirror_ids(obj) - set(clean[ID_COLUMN[obj]])
            outcome.deleted += store.mark_deleted(obj, gone, now=now)
        _remember_read_back(store, obj, batch.owned, clean, now=now)
        store.add_rejects(run_id, report.rejects)
        if batch.cursor is not None:
            store.set_watermark(connector.name, obj, batch.cursor, now=now)
        outcome.extracted += len(batch.frame)
        outcome.inserted += written.inserted
        outcome.updated += written.updated
        outcome.unchanged += written.unchanged
        if outcome.report is None:
            outcome.report = report
        else:
            outcome.report.merge(report)
    log.info(
        "object_synced",
        object=str(obj),
        connector=connector.name,
        **{k: v for k, v in outcome.as_dict().items() if k != "normalization"},
    )


def _remember_read_back(
    store: Store, obj: CrmObject, owned: pd.DataFrame | None, clean: pd.DataFrame, *, now: datetime
) -> None:
    """Owned-field values read from the CRM become the 'current' the planner compares with."""
    columns = [f for f in ACCOUNT_FIELDS if owned is not None and f in owned]
    if obj is not CrmObject.ACCOUNT or owned is None or not columns or clean.empty:
        return
    values = owned.loc[owned.index.isin(clean["account_id"]), columns].map(canonical_value)
    rows = cast(dict[str, dict[str, str]], values.to_dict("index"))
    store.record_field_values(obj, rows, source="read", now=now)


def _write_back(
    settings: Settings,
    store: Store,
    connector: WritableConnector,
    *,
    run_id: str,
    now: datetime,
    dry_run: bool,
) -> dict[str, Any]:
    """Score with the active ICP, plan the field changes, and (unless a dry run) apply them."""
    from icp_sync import scoring

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
    definition, model = scoring.active_definition(settings, store, now=now)
    scored = scoring.score(settings, store, now=now, definition=definition, model=model)
    stored_tal = store.latest_tal(definition.version)
    if stored_tal is None:
        members, coverage = scoring.build_tal(scored.frame, definition, settings.tal.size)
        store.save_tal(
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
    current = store.field_values(CrmObject.ACCOUNT)
    planned = plan(desired, current, writable=writable)
    refused = store.rejected_writes(CrmObject.ACCOUNT)
    skip = {
        record_id: "rejected last time with the same values"
        for (_, record_id), values in planned.by_record().items()
        if record_id in refused and _same_attempt(refused[record_id], values)
    }
    if skip:
        planned = plan(desired, current, writable=writable, skip=skip)
    summary: dict[str, Any] = {
        "version": definition.version,
        "tiers": scored.tiers,
        "overrides": scored.overrides,
        "plan": planned.summary(),
        "skipped_known_rejects": len(skip),
        "dry_run": dry_run or not settings.writeback.enabled,
        "records_written": 0,
        "rejected": 0,
        "deferred": 0,
    }
    if summary["dry_run"]:
        return summary
    summary |= _apply(store, connector, planned, run_id=run_id, now=now)
    log.info(
        "writeback_applied", **{k: summary[k] for k in ("records_written", "rejected", "deferred")}
    )
    return summary


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
        store.record_field_values(CrmObject.ACCOUNT, written, source="written", now=now)
        entries = [(r, "written", batch.written[r], batch.method) for r in batch.written]
        entries += [
            (r, "rejected", wanted.get((CrmObject.ACCOUNT, r), {}), reason)
            for r, reason in batch.rejected.items()
        ]
        entries += [(r, "deferred", {}, reason) for r, reason in batch.deferred.items()]
        store.log_writes(run_id, CrmObject.ACCOUNT, entries, now=now)
        counts["records_written"] += len(batch.written)
        counts["rejected"] += len(batch.rejected)
        counts["deferred"] += len(batch.deferred)
        for record_id, reason in batch.rejected.items():
            log.warning("record_rejected", record_id=record_id, reason=reason)
    return counts
