"""``sync``: one cycle, wired: extract -> normalise -> mirror -> score -> plan -> apply.

The CLI and the daemon call it. Every step that must not be lost is committed before the
next one starts: a batch is mirrored, then its cursor is stored; a write call succeeds, then
what it wrote is recorded. A run killed at any point resumes from the last committed step
and reaches the state a clean run would. A spent API budget ends the cycle cleanly; the next
one resumes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from connectors import Connector, make_connector
from connectors.base import Batch, Prefetching, WritableConnector
from icp_sync import progress
from icp_sync.config import Settings
from icp_sync.errors import BudgetExhaustedError, CycleInterruptedError
from icp_sync.log import get_logger
from icp_sync.manual_edits import ManualEditPolicy
from icp_sync.model import ID_COLUMN, CrmObject, NormalizeReport
from icp_sync.normalize import normalize
from icp_sync.pipeline.apply import remember_read_back, write_back
from icp_sync.pipeline.delete_guard import DeleteGuard
from icp_sync.pipeline.history import History, connector_state
from icp_sync.pipeline.monitor import monitor
from icp_sync.pipeline.unchanged import ScoringMark, usage_since, with_deal_writes
from icp_sync.segments import dimension_summary
from icp_sync.store import HeldLease, Store

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
    manual_edits: int = 0
    mirror_before: int = 0
    """Live records of the object in the mirror before this sync."""
    arrived_deleted: int = 0
    """New records read already flagged deleted in the CRM: mirrored as deleted, never live."""
    restored: int = 0
    """Records deleted in the mirror that came back live (undeleted in the CRM)."""
    owned_changed: int = 0
    """Records whose owned-field values read back differ from what icp-sync knew."""
    report: NormalizeReport | None = None
    owned_changed_ids: set[str] = field(default_factory=set)
    """The records counted in ``owned_changed``."""

    @property
    def nothing_new(self) -> bool:
        """Nothing read changes the mirror or the owned values (re-read overlap rows only)."""
        counts = (self.inserted, self.updated, self.deleted, self.restored, self.arrived_deleted)
        return not any(counts) and not self.manual_edits and not self.owned_changed

    @property
    def mirror_after(self) -> int:
        """Live records after this sync: before + new - arrived deleted - deleted + restored."""
        return (
            self.mirror_before + self.inserted - self.arrived_deleted - self.deleted + self.restored
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "source_unchanged": self.source_unchanged,
            "extracted": self.extracted,
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "deleted": self.deleted,
            "manual_edits": self.manual_edits,
            "mirror_before": self.mirror_before,
            "arrived_deleted": self.arrived_deleted,
            "restored": self.restored,
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
    compliance: dict[str, Any] | None = None
    api_remaining: int | None = None
    """The org's daily API calls left, as last reported (``None`` when unknown)."""

    @property
    def records_rejected(self) -> int:
        """Records refused by the CRM in this cycle's write-back."""
        return int(self.writeback.get("rejected", 0)) if self.writeback else 0

    @property
    def records_written(self) -> int:
        """CRM records updated by this cycle (accounts, and deals by the compliance monitor)."""
        accounts = int(self.writeback["records_written"]) if self.writeback else 0
        writes = (self.compliance or {}).get("writes") or {}
        return accounts + int(writes.get("records_written", 0))

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
            "compliance": self.compliance,
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
    allow_mass_change: bool = False,
    connector: Connector | None = None,
    wait_lease: float | None = None,
    lease: HeldLease | None = None,
    stop: Callable[[], bool] | None = None,
    skip_unchanged: bool = False,
    compliance: bool = True,
) -> SyncResult:
    """Run one sync cycle, holding the single-writer lease, and record it in the run history.

    Args:
        settings: The validated configuration.
        store: The open state store.
        run_id: Identifier of this run (bound to every log line).
        now: Start of the run.
        full: Ignore stored cursors and read everything again.
        dry_run: Plan the write-back but write nothing to the CRM.
        allow_mass_change: Let through deletions and tier moves above the ``[guards]``
            shares (otherwise such a sync stops before writing, with ``MassChangeError``).
        connector: Use this connector instead of building one from ``settings``.
        wait_lease: Seconds to wait for another process's lease (default: the config's).
        lease: The ``sync`` lease, already held by the caller (the daemon holds it across
            cycles); checked before every write. Default: taken for this cycle only.
        stop: Asked between committed steps; when it says yes the cycle raises
            :class:`CycleInterruptedError` (everything done so far is kept).
        skip_unchanged: When nothing changed in the CRM and the ICP in force is the one the
            last write-back applied completely, skip loading, scoring and planning (the
            daemon's no-change cycle). ``segments`` is then empty.
        compliance: Run the compliance monitor after the write-back (flags out-of-ICP deals,
            writes their compliance fields, sends alerts; see :func:`~.monitor.monitor`).

    Raises:
        LeaseHeldError: Another process holds the lease (after the wait); nothing was done.
        CycleInterruptedError: ``stop`` said yes; the next cycle resumes.
    """
    options = _Options(
        full=full,
        dry_run=dry_run,
        allow_mass_change=allow_mass_change,
        stop=stop or (lambda: False),
        skip_unchanged=skip_unchanged,
        compliance=compliance,
    )
    if lease is not None:
        lease.check()
        return _cycle(
            settings,
            store,
            run_id=run_id,
            now=now,
            options=options,
            connector=connector,
            lease=lease,
        )
    wait = settings.store.lease_wait_s if wait_lease is None else wait_lease
    ttl = timedelta(seconds=settings.store.lease_ttl_s)
    with store.lease.hold("sync", ttl=ttl, wait=timedelta(seconds=wait)) as held:
        return _cycle(
            settings,
            store,
            run_id=run_id,
            now=now,
            options=options,
            connector=connector,
            lease=held,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class _Options:
    full: bool
    dry_run: bool
    allow_mass_change: bool
    stop: Callable[[], bool]
    skip_unchanged: bool
    compliance: bool

    def check_stop(self, where: str) -> None:
        if self.stop():
            raise CycleInterruptedError(f"stop requested {where}; the next cycle resumes from here")


def _cycle(  # noqa: PLR0915 (one cycle's steps in order, each a call)
    settings: Settings,
    store: Store,
    *,
    run_id: str,
    now: datetime,
    options: _Options,
    connector: Connector | None,
    lease: HeldLease,
) -> SyncResult:
    started = time.perf_counter()
    owned = connector is None
    connector = connector or make_connector(settings, connector_state(store, settings))
    calls_before = connector.usage()
    for run in store.runs.start(run_id, "sync", now=now):
        log.warning(
            "run_abandoned",
            abandoned_run=run.run_id,
            command=run.command,
            started_at=run.started_at.isoformat(),
            detected_at=now.isoformat(),
        )
    objects = {obj: ObjectSync(crm_object=obj) for obj in CrmObject}
    status = "ok"
    writeback: dict[str, Any] | None = None
    monitored: dict[str, Any] | None = None
    try:
        if options.full:
            store.watermarks.clear(connector.name)
        history: History | None = None
        mark = ScoringMark(store, connector.name)
        skipped = wrote = False
        try:
            _read(settings, store, connector, objects, run_id=run_id, now=now, options=options)
            writable = (
                sorted(connector.writable_fields())
                if isinstance(connector, WritableConnector)
                else []
            )
            # the last write-back applied its whole plan: only what changed since is planned
            settled = (
                options.skip_unchanged
                and not options.full
                and mark.still_valid(settings, writable=writable)
            )
            if settled and all(o.nothing_new for o in objects.values()):
                writeback = mark.skipped()
                history = History.empty()
                skipped = True
            else:
                mark.clear()
                with progress.step("loading the mirror"):
                    history = History.load(store)
            if writeback is None and isinstance(connector, WritableConnector):
                lease.check()
                writeback = write_back(
                    settings,
                    store,
                    connector,
                    history,
                    run_id=run_id,
                    now=now,
                    dry_run=options.dry_run,
                    allow_mass_change=options.allow_mass_change,
                    stop=options.stop,
                    read_back=objects[CrmObject.ACCOUNT].owned_changed_ids if settled else None,
                )
                wrote = True
            if options.compliance and not skipped:
                lease.check()
                monitored = monitor(
                    settings,
                    store,
                    connector,
                    now=now,
                    dry_run=options.dry_run,
                    run_id=run_id,
                    history=history,
                ).summary()
            if wrote and writeback is not None and not options.dry_run:
                mark.remember(
                    settings, with_deal_writes(writeback, monitored), writable=writable, now=now
                )
        except BudgetExhaustedError as exc:
            status = "budget_exhausted"
            log.warning("cycle_stopped", reason=str(exc), resume="next cycle")
        history = history or History.load(store)
        usage = usage_since(calls_before, connector.usage())
        segments = (
            dimension_summary(history.accounts, history.opportunities, settings.segments)
            if not history.accounts.empty
            else pd.DataFrame()
        )
        result = SyncResult(
            run_id=run_id,
            connector=connector.name,
            objects=objects,
            mirror=store.mirror.counts(),
            segments=segments,
            api_calls=usage.calls,
            api_by_endpoint=usage.by_endpoint,
            api_remaining=usage.remaining,
            duration_s=time.perf_counter() - started,
            status=status,
            writeback=writeback,
            compliance=monitored,
        )
    except CycleInterruptedError as exc:
        store.runs.finish(
            run_id, status="interrupted", summary={"error": str(exc)}, now=_ended(now, started)
        )
        raise
    except BaseException as exc:
        store.runs.finish(
            run_id, status="failed", summary={"error": str(exc)}, now=_ended(now, started)
        )
        raise
    finally:
        if owned:
            connector.close()
    summary = result.as_dict()
    summary.pop("segments")
    store.runs.finish(run_id, status=status, summary=summary, now=_ended(now, started))
    return result


def _ended(now: datetime, started: float) -> datetime:
    """When a run that began at ``now`` (perf counter ``started``) ends, on the same clock."""
    return now + timedelta(seconds=time.perf_counter() - started)


def _read(
    settings: Settings,
    store: Store,
    connector: Connector,
    objects: dict[CrmObject, ObjectSync],
    *,
    run_id: str,
    now: datetime,
    options: _Options,
) -> None:
    """Mirror every object's changes (the first requests read ahead where the CRM can)."""
    if isinstance(connector, Prefetching):  # a full read has no cursors: nothing read ahead
        cursors = {obj: store.watermarks.get(connector.name, obj) for obj in CrmObject}
        connector.prefetch(cursors, now=now)
    for obj in CrmObject:
        _sync_object(
            settings=settings,
            store=store,
            connector=connector,
            outcome=objects[obj],
            run_id=run_id,
            now=now,
            allow_mass_change=options.allow_mass_change,
            options=options,
        )
    options.check_stop("before scoring")


def _sync_object(  # noqa: PLR0915 (one batch's steps in order, each a call)
    *,
    settings: Settings,
    store: Store,
    connector: Connector,
    outcome: ObjectSync,
    run_id: str,
    now: datetime,
    allow_mass_change: bool,
    options: _Options,
) -> None:
    obj = outcome.crm_object
    since = store.watermarks.get(connector.name, obj)
    # live and known ids, read once a batch brings something (a quiet cycle never does) and
    # then kept current in memory, so the counts add up to the mirror's
    live, known, loaded = set[str](), set[str](), False
    outcome.mirror_before = store.mirror.counts()[str(obj)]
    guard = DeleteGuard(store, obj, limit=settings.guards.max_delete_share, allow=allow_mass_change)
    for batch in _shown(connector.extract(obj, since=since, now=now), f"reading {obj} records"):
        options.check_stop(f"while reading {obj}")
        quiet = batch.frame.empty and not (batch.deleted or batch.snapshot)
        if not loaded and not (quiet and batch.live is None):
            live, known, loaded = (
                store.mirror.ids(obj),
                store.mirror.ids(obj, include_deleted=True),
                True,
            )
        if batch.deleted:
            guard.check(batch.deleted)
            outcome.deleted += store.mirror.mark_deleted(obj, batch.deleted, now=now)
            live -= set(batch.deleted)
        if batch.live is not None:
            missing = live - batch.live
            guard.check(missing)
            outcome.deleted += store.mirror.mark_deleted(obj, missing, now=now)
            live -= missing
        if batch.frame.empty and (batch.deleted or batch.live is not None):
            continue
        outcome.source_unchanged = False
        clean, report = normalize(batch.frame, obj, settings.normalize, now=now)
        ids = set(clean[ID_COLUMN[obj]])
        gone: set[str] = set()
        if batch.snapshot:
            gone = live - ids
            guard.check(gone)
        written = store.mirror.upsert(obj, clean, now=now, known=known)
        flagged = set(clean.loc[clean["is_deleted"].astype(bool), ID_COLUMN[obj]])
        outcome.arrived_deleted += len(flagged - known)
        outcome.deleted += len(flagged & live)
        outcome.restored += len((ids - flagged) & (known - live))
        live = (live - flagged) | (ids - flagged)
        known |= ids
        if gone:
            outcome.deleted += store.mirror.mark_deleted(obj, gone, now=now)
            live -= gone
        edits, differing = remember_read_back(
            store,
            obj,
            batch.owned,
            clean,
            now=now,
            edited_by_others=batch.edited_by_others,
            unrecorded=batch.unrecorded,
            policy=ManualEditPolicy(settings.writeback.manual_edits),
            differing=outcome.owned_changed_ids,
        )
        outcome.manual_edits += edits
        outcome.owned_changed += differing
        store.runs.add_rejects(run_id, report.rejects)
        if batch.cursor is not None:
            store.watermarks.set(connector.name, obj, batch.cursor, now=now)
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


def _shown(batches: Iterable[Batch], description: str) -> Iterator[Batch]:
    """``batches``, shown as a progress step counting their records."""
    with progress.step(description) as advance:
        for batch in batches:
            yield batch
            advance(len(batch.frame))
