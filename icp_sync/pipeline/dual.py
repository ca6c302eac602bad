"""``sync`` with both CRMs: Salesforce mirrored and scored, HubSpot given the same values.

With ``crm.connector = "salesforce+hubspot"`` a cycle first runs the ordinary sync against
Salesforce (extract, mirror, score, write-back). Then, under a single-writer lease of its own,
HubSpot's companies are read (incrementally, on their own watermark), matched onto the
mirrored Accounts (:func:`icp_sync.matching.match_accounts`: Salesforce sync id, else
domain, else name and country), and every matched company is planned to hold what its
Account holds in Salesforce: tier, score, segment, reasons, TAL membership and rank, version.
Unmatched and ambiguous companies are reported and left alone; nothing from HubSpot is
scored (deals and accounts come from Salesforce), so each account is scored once.

HubSpot's owned values are remembered in the ledger under ``hubspot:<id>`` record ids, so
their planning, manual-edit detection and write log work as for Salesforce; the company
index the matching needs (id, Salesforce id, domain, name, country) is kept in HubSpot's
part of the connector state.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd

from connectors import make_connector
from connectors.base import Connector
from icp_sync.config import Settings
from icp_sync.errors import BudgetExhaustedError
from icp_sync.log import get_logger
from icp_sync.manual_edits import ManualEditPolicy
from icp_sync.matching import MatchReport, match_accounts
from icp_sync.model import ATTR_PREFIX, CrmObject
from icp_sync.pipeline.apply import remember_read_back
from icp_sync.pipeline.history import connector_state
from icp_sync.pipeline.planning import same_attempt
from icp_sync.pipeline.sync import SyncResult
from icp_sync.pipeline.sync import sync as sync_one
from icp_sync.store import HeldLease, Store
from icp_sync.writeback import Plan, canonical_value, plan, retry_due

if TYPE_CHECKING:
    from connectors.both import BothCrms

__all__ = ["HUBSPOT_LEASE", "PREFIX", "sync"]

log = get_logger()

PREFIX = "hubspot:"
HUBSPOT_LEASE = "sync-hubspot"
_INDEX = "dual_index"


def _both(connector: Connector | None) -> BothCrms | None:
    """``connector`` if it is the two-CRM composite (whose clients are imported only then)."""
    from connectors.both import BothCrms

    return connector if isinstance(connector, BothCrms) else None


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
    """One sync cycle: :func:`icp_sync.pipeline.sync.sync`, plus HubSpot in dual mode."""
    both = _both(connector) if settings.crm.connector == "salesforce+hubspot" else None
    if settings.crm.connector != "salesforce+hubspot" or (connector is not None and not both):
        return sync_one(
            settings,
            store,
            run_id=run_id,
            now=now,
            full=full,
            dry_run=dry_run,
            allow_mass_change=allow_mass_change,
            connector=connector,
            wait_lease=wait_lease,
            lease=lease,
            stop=stop,
            skip_unchanged=skip_unchanged,
            compliance=compliance,
        )
    owned = both is None
    if both is None:
        both = _both(make_connector(settings, connector_state(store, settings)))
        assert both is not None
    try:
        result = sync_one(
            settings,
            store,
            run_id=run_id,
            now=now,
            full=full,
            dry_run=dry_run,
            allow_mass_change=allow_mass_change,
            connector=both.salesforce,
            wait_lease=wait_lease,
            lease=lease,
            stop=stop,
            skip_unchanged=skip_unchanged,
            compliance=compliance,
        )
        if result.status != "ok":
            return result
        wait = settings.store.lease_wait_s if wait_lease is None else wait_lease
        ttl = timedelta(seconds=settings.store.lease_ttl_s)
        # HubSpot's writes have their own lease: a second process that took "sync" as soon as
        # this one's Salesforce step released it cannot make this step fail, and HubSpot
        # still has a single writer
        with store.lease.hold(HUBSPOT_LEASE, ttl=ttl, wait=timedelta(seconds=wait)):
            try:
                part = hubspot_step(
                    settings, store, both, run_id=run_id, now=now, full=full, dry_run=dry_run
                )
            except BudgetExhaustedError as exc:
                log.warning("cycle_stopped", crm="hubspot", reason=str(exc), resume="next cycle")
                part = {"status": "budget_exhausted", "records_written": 0}
                result.status = "budget_exhausted"
        usage = both.hubspot.usage()
        result.connector = both.name
        result.api_calls += usage.calls
        result.api_by_endpoint = {
            **{f"salesforce {k}": v for k, v in result.api_by_endpoint.items()},
            **{f"hubspot {k}": v for k, v in usage.by_endpoint.items()},
        }
        writeback = dict(result.writeback or {"records_written": 0})
        salesforce_written = int(writeback.get("records_written", 0))
        writeback["by_crm"] = {
            "salesforce": salesforce_written,
            "hubspot": int(part.get("records_written", 0)),
        }
        writeback["records_written"] = salesforce_written + int(part.get("records_written", 0))
        writeback["hubspot"] = part
        result.writeback = writeback
        return result
    finally:
        if owned:
            both.close()


def hubspot_step(
    settings: Settings,
    store: Store,
    both: BothCrms,
    *,
    run_id: str,
    now: datetime,
    full: bool,
    dry_run: bool,
) -> dict[str, Any]:
    """Read HubSpot's companies, match them, write them their Accounts' values."""
    hubspot = both.hubspot
    state = both.hubspot_state
    index: dict[str, dict[str, Any]] = {} if full else dict(state.load().get(_INDEX) or {})
    since = None if full else store.watermarks.get(hubspot.name, CrmObject.ACCOUNT)
    cursor: str | None = None
    manual_edits = 0
    for batch in hubspot.extract(CrmObject.ACCOUNT, since=since, now=now):
        for gone in batch.deleted:
            index.pop(gone, None)
        if batch.live is not None:
            index = {k: v for k, v in index.items() if k in batch.live}
        frame = batch.frame
        if not frame.empty:
            for row in frame.to_dict("records"):
                rid = str(row["account_id"])
                if bool(row.get("is_deleted")):
                    index.pop(rid, None)
                    continue
                index[rid] = {
                    "salesforce_id": _text(row.get(ATTR_PREFIX + "salesforce_id")),
                    "domain": _text(row.get("domain")),
                    "name": _text(row.get("name")),
                    "country": _text(row.get("country")),
                }
            manual_edits += _read_back(settings, store, batch.owned, frame, batch, now=now)
        cursor = batch.cursor or cursor
    current = state.load()
    current[_INDEX] = index
    state.save(current)
    if cursor:
        store.watermarks.set(hubspot.name, CrmObject.ACCOUNT, cursor, now=now)
    # read again, not handed over: the Salesforce step released the sync lease, so another
    # process may have synced since; HubSpot is matched onto the mirror as it is now
    accounts = store.mirror.load(CrmObject.ACCOUNT)
    report = match_accounts(accounts, index)
    counts = report.counts()
    log.info(
        "crm_accounts_matched", **{k: v for k, v in counts.items() if k != "by"}, **counts["by"]
    )
    if report.ambiguous:
        log.warning(
            "crm_match_ambiguous",
            companies=len(report.ambiguous),
            examples=sorted(report.ambiguous)[:5],
            fix="give these HubSpot companies their Salesforce Account id or a distinct domain",
        )
    planned = _plan(store, report, writable=set(hubspot.writable_fields()), now=now)
    summary: dict[str, Any] = {
        "match": counts,
        "plan": planned.summary(),
        "manual_edits": manual_edits,
        "dry_run": dry_run or not settings.writeback.enabled,
        "records_written": 0,
        "rejected": 0,
        "deferred": 0,
    }
    if summary["dry_run"] or not planned.changes:
        return summary
    for outcome in hubspot.apply(planned):
        written = {
            PREFIX + rid: {f: canonical_value(v) for f, v in fields.items()}
            for rid, fields in outcome.written.items()
        }
        store.ledger.record_field_values(CrmObject.ACCOUNT, written, source="written", now=now)
        entries = [(PREFIX + r, "written", outcome.written[r], "hubspot") for r in outcome.written]
        wanted = planned.by_record()
        entries += [
            (PREFIX + r, "rejected", wanted.get((CrmObject.ACCOUNT, r), {}), why)
            for r, why in outcome.rejected.items()
        ]
        entries += [(PREFIX + r, "deferred", {}, why) for r, why in outcome.deferred.items()]
        store.ledger.log_writes(run_id, CrmObject.ACCOUNT, entries, now=now)
        summary["records_written"] += len(outcome.written)
        summary["rejected"] += len(outcome.rejected)
        summary["deferred"] += len(outcome.deferred)
        for record_id, reason in outcome.rejected.items():
            log.warning("record_rejected", crm="hubspot", record_id=record_id, reason=reason)
    log.info(
        "writeback_applied",
        crm="hubspot",
        **{k: summary[k] for k in ("records_written", "rejected", "deferred")},
    )
    return summary


def _text(value: Any) -> str | None:
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):  # noqa: PLR0124
        return None
    return str(value)


def _read_back(
    settings: Settings,
    store: Store,
    owned: pd.DataFrame | None,
    frame: pd.DataFrame,
    batch: Any,
    *,
    now: datetime,
) -> int:
    """HubSpot's owned values as read, remembered under prefixed ids; manual edits counted."""
    if owned is None or owned.empty:
        return 0
    values = owned.copy()
    values.index = pd.Index([PREFIX + str(i) for i in values.index], name="record_id")
    clean = pd.DataFrame({"account_id": [PREFIX + str(i) for i in frame["account_id"]]})
    others = batch.edited_by_others
    manual, _ = remember_read_back(
        store,
        CrmObject.ACCOUNT,
        values,
        clean,
        now=now,
        edited_by_others=frozenset(PREFIX + i for i in others) if others is not None else None,
        policy=ManualEditPolicy(settings.writeback.manual_edits),
    )
    return manual


def _plan(store: Store, report: MatchReport, *, writable: set[str], now: datetime) -> Plan:
    """Each matched company to hold what its Account holds in Salesforce."""
    held = store.ledger.field_values(CrmObject.ACCOUNT)
    if held.empty or not report.matched:
        return Plan()
    prefixed = held.index.astype(str).str.startswith(PREFIX)
    salesforce = held.loc[~prefixed]
    hubspot = held.loc[prefixed]
    hubspot.index = hubspot.index.astype(str).str.removeprefix(PREFIX)
    pairs = [(c, a) for c, a in report.matched.items() if a in salesforce.index]
    if not pairs:
        return Plan()
    desired = salesforce.reindex([a for _, a in pairs])
    desired.index = pd.Index([c for c, _ in pairs], name="record_id")
    desired = desired.astype(object).map(lambda v: None if _text(v) in (None, "") else v)
    current = hubspot.astype(object)
    planned = plan(desired, current, writable=writable)
    # a company refused before with the same values waits as the primary's records do
    refused = store.ledger.rejections(CrmObject.ACCOUNT)
    skip = {
        rid: "rejected before with the same values; tried again later"
        for (_, rid), values in planned.by_record().items()
        if (PREFIX + rid) in refused
        and same_attempt(refused[PREFIX + rid].values, values)
        and not retry_due(
            times=refused[PREFIX + rid].times, last_at=refused[PREFIX + rid].last_at, now=now
        )
    }
    return plan(desired, current, writable=writable, skip=skip) if skip else planned
