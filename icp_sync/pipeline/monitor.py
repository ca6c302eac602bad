"""The compliance monitor: open pipeline against the ICP and the commitment in force.

One cycle (after each sync, and ``icp-sync monitor``):

1. freeze the tier of every open deal seen for the first time (its account's tier under the
   live ICP version; never changed after, so re-scoring does not rewrite history);
2. judge the open deals with the ``[compliance]`` rules (:mod:`icp_sync.rules`) and the
   active commitment (which adds the TAL rule);
3. record new violations with their alerts in one transaction (a stable key per deal and
   rule: a violation is new once, across cycles and restarts); waivers, closed or deleted
   deals and deals back in ICP resolve theirs;
4. write tier at creation, compliance and its reason to the deals through the write-back
   planner and the connector's ``apply`` (only what changed);
5. deliver due alerts from the outbox (:func:`~icp_sync.pipeline.alerting.deliver_alerts`).

``dry_run`` judges and reports but stores, writes and sends nothing.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from connectors import make_connector
from connectors.base import Connector, WritableConnector
from icp_sync.compliance import Commitment
from icp_sync.config import Settings
from icp_sync.icp import from_toml
from icp_sync.log import get_logger
from icp_sync.model import WRITTEN_OPPORTUNITY_FIELDS, CrmObject, Tier
from icp_sync.pipeline.alerting import deliver_alerts, digest_alerts, violation_alerts
from icp_sync.pipeline.crm_task import task_channels, task_sinks
from icp_sync.pipeline.derive import load_model
from icp_sync.pipeline.history import History, connector_state
from icp_sync.pipeline.score import score
from icp_sync.rules import Compliance, Verdict, evaluate
from icp_sync.store import Alert, FrozenTier, Store, Violation
from icp_sync.writeback import Plan, canonical_value, plan, retry_due

__all__ = ["MonitorResult", "monitor", "monitor_once"]

log = get_logger()

OUT_OF_ICP, WAIVED, RESOLVED = "out_of_icp", "waived", "resolved"


@dataclass(slots=True, kw_only=True)
class MonitorResult:
    """What one monitor cycle found and did."""

    commitment: Commitment | None
    violations: list[Violation]
    checked: int = 0
    compliance: dict[str, int] = field(default_factory=dict)
    new: int = 0
    resolved: int = 0
    waived: int = 0
    frozen: int = 0
    writes: dict[str, Any] = field(default_factory=dict)
    alerts: dict[str, Any] = field(default_factory=dict)
    dry_run: bool = False
    duration_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """The ``monitor --json`` document (contract: ``commitment`` and ``violations``)."""
        return {
            "commitment": self.commitment.as_dict() if self.commitment else None,
            "violations": [v.as_dict() for v in self.violations],
        }

    def summary(self) -> dict[str, Any]:
        """Counts for the log line and the table output."""
        return {
            "checked": self.checked,
            "compliance": self.compliance,
            "new": self.new,
            "resolved": self.resolved,
            "waived": self.waived,
            "frozen": self.frozen,
            "writes": self.writes,
            "alerts": self.alerts,
            "dry_run": self.dry_run,
        }


def monitor(
    settings: Settings,
    store: Store,
    connector: Connector | None = None,
    *,
    now: datetime,
    dry_run: bool = False,
    run_id: str = "monitor",
    history: History | None = None,
) -> MonitorResult:
    """Run one compliance cycle (see the module docstring).

    Args:
        settings: The config (``[compliance]``, ``[alerts]``, the connector's section).
        store: The open state store.
        connector: The CRM to write compliance fields to (default: built from ``settings``
            when there is something to write).
        now: The time of the cycle.
        dry_run: Judge and report only.
        run_id: The run the writes are logged under.
        history: The mirror, when the caller has it loaded already.
    """
    started = time.perf_counter()
    commitment = store.commitments.active(now=now)
    result = MonitorResult(commitment=commitment, violations=[], dry_run=dry_run)
    if not settings.compliance.enabled:
        result.violations = store.violations.all()
        return result
    history = history or History.load(store)
    opportunities = history.opportunities
    open_deals = opportunities[~opportunities["is_closed"].astype(bool)]
    tiers = _freeze(
        settings, store, history, open_deals, commitment, now=now, dry_run=dry_run, result=result
    )
    verdicts = evaluate(open_deals, tiers, history.accounts, settings.compliance, commitment)
    result.checked = len(verdicts)
    for status in Compliance:
        result.compliance[str(status)] = sum(1 for v in verdicts if v.status is status)
    changes, alerts = _reconcile(
        settings,
        store,
        verdicts,
        opportunities=opportunities,
        accounts=history.accounts,
        commitment=commitment,
        now=now,
    )
    result.new = sum(1 for c in changes if c.first_seen_at == now and c.status == OUT_OF_ICP)
    result.resolved = sum(1 for c in changes if c.status == RESOLVED)
    result.waived = sum(1 for c in changes if c.status == WAIVED)
    if not dry_run:
        store.violations.save(changes, alerts=alerts, now=now)
        if settings.alerts.digest:
            channels = sorted(_sink_names(settings))
            open_now = store.violations.all(OUT_OF_ICP)
            store.outbox.add(digest_alerts(settings, open_now, channels, now=now), now=now)
    result.writes = _write(
        settings, store, connector, verdicts, run_id=run_id, now=now, dry_run=dry_run
    )
    if not dry_run:
        with task_sinks(settings, store, connector) as sinks:
            result.alerts = deliver_alerts(settings, store, now, sinks=sinks).as_dict()
    current = {v.violation_key: v for v in store.violations.all()}
    current |= {c.violation_key: c for c in changes} if dry_run else {}
    result.violations = sorted(current.values(), key=lambda v: (v.first_seen_at, v.violation_key))
    result.duration_s = time.perf_counter() - started
    log.info("monitor_summary", duration_s=round(result.duration_s, 3), **result.summary())
    return result


def monitor_once(
    settings: Settings, store: Store, *, now: datetime, run_id: str, dry_run: bool = False
) -> MonitorResult:
    """``icp-sync monitor``: one cycle holding the single-writer lease, in the run history."""
    if dry_run:
        return monitor(settings, store, now=now, dry_run=True, run_id=run_id)
    ttl = timedelta(seconds=settings.store.lease_ttl_s)
    wait = timedelta(seconds=settings.store.lease_wait_s)
    with store.lease.hold("sync", ttl=ttl, wait=wait):
        store.runs.start(run_id, "monitor", now=now)
        started = time.perf_counter()
        try:
            result = monitor(settings, store, now=now, run_id=run_id)
        except BaseException as exc:
            ended = now + timedelta(seconds=time.perf_counter() - started)
            store.runs.finish(run_id, status="failed", summary={"error": str(exc)}, now=ended)
            raise
        ended = now + timedelta(seconds=time.perf_counter() - started)
        store.runs.finish(run_id, status="ok", summary=result.summary(), now=ended)
    return result


def _sink_names(settings: Settings) -> list[str]:
    alerts = settings.alerts
    return [n for n in ("webhook", "slack", "email") if getattr(alerts, n) is not None]


def _account_tiers(
    settings: Settings, store: Store, history: History, version: str, *, now: datetime
) -> dict[str, str]:
    """Account id -> tier under ``version``: as stored by the last scoring, else scored now."""
    scores = store.versions.load_scores(version)
    if not len(scores):
        stored = store.versions.get(version)
        if stored is None:
            return {}
        definition = from_toml(stored.definition, source=f"stored {stored.version}")
        scored = score(
            settings, store, history, now=now, definition=definition, model=load_model(stored.model)
        )
        scores = scored.frame
    return dict(zip(scores["account_id"].astype(str), scores["tier"].astype(str), strict=True))


def _freeze(
    settings: Settings,
    store: Store,
    history: History,
    open_deals: pd.DataFrame,
    commitment: Commitment | None,
    *,
    now: datetime,
    dry_run: bool,
    result: MonitorResult,
) -> dict[str, Tier]:
    """The frozen tier per open deal, freezing those seen for the first time."""
    frozen = store.violations.frozen_tiers()
    activation = store.activations.current()
    version = activation.version if activation else (commitment.icp_version if commitment else None)
    fresh: list[FrozenTier] = []
    unseen = open_deals[~open_deals["opportunity_id"].isin(list(frozen))]
    if version is not None and len(unseen):
        account_tier = _account_tiers(settings, store, history, version, now=now)
        for opportunity_id, account_id in zip(
            unseen["opportunity_id"].astype(str), unseen["account_id"], strict=True
        ):
            tier = account_tier.get(str(account_id)) if pd.notna(account_id) else None
            if tier is None:
                continue
            fresh.append(
                FrozenTier(
                    opportunity_id=opportunity_id,
                    account_id=str(account_id),
                    tier=tier,
                    icp_version=version,
                    frozen_at=now,
                )
            )
    if not dry_run:
        result.frozen = store.violations.freeze(fresh)
    else:
        result.frozen = len(fresh)
    tiers = {k: Tier(v.tier) for k, v in frozen.items()}
    tiers |= {t.opportunity_id: Tier(t.tier) for t in fresh}
    return tiers


def _reconcile(
    settings: Settings,
    store: Store,
    verdicts: list[Verdict],
    *,
    opportunities: pd.DataFrame,
    accounts: pd.DataFrame,
    commitment: Commitment | None,
    now: datetime,
) -> tuple[list[Violation], list[Alert]]:
    """Violations to insert or update, and the alerts of the new ones."""
    known = {v.violation_key: v for v in store.violations.all()}
    deals = opportunities.set_index(opportunities["opportunity_id"].astype(str))
    names = (
        dict(zip(accounts["account_id"].astype(str), accounts["name"], strict=True))
        if len(accounts)
        else {}
    )
    channels = _sink_names(settings) + task_channels(settings)
    judged = {v.opportunity_id for v in verdicts}
    details = _details(
        deals,
        [
            v.opportunity_id
            for v in verdicts
            if v.status is not Compliance.COMPLIANT
            and v.rule is not None
            and f"{v.opportunity_id}:{v.rule}" not in known
        ],
        names,
    )
    changes: list[Violation] = []
    alerts: list[Alert] = []
    flagged: set[str] = set()
    for verdict in verdicts:
        if verdict.status is Compliance.COMPLIANT or verdict.rule is None:
            continue
        key = f"{verdict.opportunity_id}:{verdict.rule}"
        flagged.add(key)
        status = OUT_OF_ICP if verdict.status is Compliance.OUT_OF_ICP else WAIVED
        before = known.get(key)
        if before is None:
            created = Violation(
                violation_key=key,
                opportunity_id=verdict.opportunity_id,
                account_id=verdict.account_id,
                rule=verdict.rule,
                reason=verdict.reason,
                tier_at_creation=str(verdict.tier_at_creation)
                if verdict.tier_at_creation
                else None,
                status=status,
                first_seen_at=now,
                resolved_at=now if status == WAIVED else None,
                resolution="waived" if status == WAIVED else None,
                commitment_hash=commitment.content_hash if commitment else None,
                details=details[verdict.opportunity_id],
            )
            changes.append(created)
            if status == OUT_OF_ICP:
                alerts += violation_alerts(settings, created, commitment, channels)
        elif before.status != status:
            changes.append(
                _moved(before, status, now, "waived" if status == WAIVED else None, verdict.reason)
            )
    for key, before in known.items():
        if key in flagged or before.status != OUT_OF_ICP:
            continue
        resolution = _resolution(deals, before.opportunity_id, judged)
        if resolution is not None:
            changes.append(_moved(before, RESOLVED, now, resolution, before.reason))
    return changes, alerts


def _tier_text(tier: Tier | None) -> str | None:
    return str(tier) if tier is not None else None


def _resolution(deals: pd.DataFrame, opportunity_id: str, judged: set[str]) -> str | None:
    """Why an open violation no longer stands (``None``: the deal was not judged this time)."""
    if opportunity_id not in deals.index:
        return "deleted"
    deal = deals.loc[opportunity_id]
    if isinstance(deal, pd.DataFrame):
        deal = deal.iloc[0]
    if bool(deal["is_closed"]):
        return "closed_won" if bool(deal["is_won"]) else "closed_lost"
    if opportunity_id in judged:
        return "compliant"
    return None


def _moved(
    before: Violation, status: str, now: datetime, resolution: str | None, reason: str
) -> Violation:
    return Violation(
        violation_key=before.violation_key,
        opportunity_id=before.opportunity_id,
        account_id=before.account_id,
        rule=before.rule,
        reason=reason,
        tier_at_creation=before.tier_at_creation,
        status=status,
        first_seen_at=before.first_seen_at,
        resolved_at=None if status == OUT_OF_ICP else now,
        resolution=resolution,
        commitment_hash=before.commitment_hash,
        details=before.details,
    )


def _details(
    deals: pd.DataFrame, opportunity_ids: list[str], names: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """What a violation shows of each deal (name, account, amount, owner, type, motion)."""
    ids = list(dict.fromkeys(opportunity_ids))
    if not ids:
        return {}
    rows = deals[~deals.index.duplicated(keep="first")].reindex(ids)

    def column(name: str) -> list[Any]:
        if name not in rows:
            return [None] * len(ids)
        values = rows[name].astype(object)
        return values.where(values.notna(), None).tolist()

    accounts = column("account_id")
    amounts = column("amount")
    return {
        opportunity_id: {
            "opportunity_name": name,
            "account_name": names.get(str(account)) if account is not None else None,
            "amount": float(amount) if amount is not None else None,
            "owner_id": owner,
            "deal_type": deal_type,
            "motion": motion,
        }
        for opportunity_id, name, account, amount, owner, deal_type, motion in zip(
            ids,
            column("name"),
            accounts,
            amounts,
            column("owner_id"),
            column("deal_type"),
            column("motion"),
            strict=True,
        )
    }


def _write(
    settings: Settings,
    store: Store,
    connector: Connector | None,
    verdicts: list[Verdict],
    *,
    run_id: str,
    now: datetime,
    dry_run: bool,
) -> dict[str, Any]:
    """Plan the deals' compliance fields against what the CRM holds; apply unless a dry run."""
    if settings.crm.connector == "files" and connector is None:
        return {"skipped": "the files connector has no CRM to write to", "records_written": 0}
    desired = pd.DataFrame(
        {
            "tier_at_creation": [str(v.tier_at_creation) for v in verdicts],
            "compliance": [str(v.status) for v in verdicts],
            "compliance_reason": [v.reason for v in verdicts],
        },
        index=pd.Index([v.opportunity_id for v in verdicts], name="record_id"),
        dtype=object,
    )
    current = store.ledger.field_values(CrmObject.OPPORTUNITY)
    owned = connector is None
    active = connector or make_connector(settings, connector_state(store, settings))
    try:
        if not isinstance(active, WritableConnector):
            return {"skipped": "the connector cannot write", "records_written": 0}
        writable = set(active.writable_fields()) & set(WRITTEN_OPPORTUNITY_FIELDS)
        if not writable:
            return {
                "skipped": "no compliance fields on Opportunity; run `icp-sync setup-fields`",
                "records_written": 0,
            }
        planned = plan(desired, current, crm_object=CrmObject.OPPORTUNITY, writable=writable)
        skip = _known_rejects(store, planned, now=now)
        if skip:
            planned = plan(
                desired, current, crm_object=CrmObject.OPPORTUNITY, writable=writable, skip=skip
            )
        summary: dict[str, Any] = {"plan": planned.summary(), "records_written": 0}
        if dry_run or not settings.writeback.enabled or not planned.changes:
            return summary
        return summary | _apply(store, active, planned, run_id=run_id, now=now)
    finally:
        if owned:
            active.close()


def _known_rejects(store: Store, planned: Plan, *, now: datetime) -> dict[str, str]:
    """Deals refused before with the same values, not due for another try (backoff)."""
    refused = store.ledger.rejections(CrmObject.OPPORTUNITY)
    skip = {}
    for (_, record_id), values in planned.by_record().items():
        before = refused.get(record_id)
        if before is None:
            continue
        same = json.loads(before.values) == json.loads(json.dumps(values, default=str))
        if same and not retry_due(times=before.times, last_at=before.last_at, now=now):
            skip[record_id] = "rejected before with the same values; tried again later"
    return skip


def _apply(
    store: Store, connector: WritableConnector, planned: Plan, *, run_id: str, now: datetime
) -> dict[str, int]:
    obj = CrmObject.OPPORTUNITY
    counts = {"records_written": 0, "rejected": 0, "deferred": 0}
    wanted = planned.by_record()
    for batch in connector.apply(planned):
        written = {
            rid: {f: canonical_value(v) for f, v in fields.items()}
            for rid, fields in batch.written.items()
        }
        store.ledger.record_field_values(obj, written, source="written", now=now)
        entries = [(r, "written", batch.written[r], batch.method) for r in batch.written]
        entries += [
            (r, "rejected", wanted.get((obj, r), {}), why) for r, why in batch.rejected.items()
        ]
        entries += [(r, "deferred", {}, why) for r, why in batch.deferred.items()]
        store.ledger.log_writes(run_id, obj, entries, now=now)
        counts["records_written"] += len(batch.written)
        counts["rejected"] += len(batch.rejected)
        counts["deferred"] += len(batch.deferred)
    return counts
