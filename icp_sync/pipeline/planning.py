"""The write-back plan of an ICP version: score, desired values, and what would change.

One function serves both the sync (which then applies the plan) and the activation preview
(which shows it), so a preview's counts are what the next sync writes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from connectors import make_connector
from connectors.base import WritableConnector
from icp_sync.config import Settings
from icp_sync.icp import IcpDefinition
from icp_sync.manual_edits import ManualEditPolicy, keep_overrides
from icp_sync.model import CrmObject
from icp_sync.pipeline.history import History, connector_state
from icp_sync.pipeline.incremental import score_incrementally
from icp_sync.pipeline.score import score
from icp_sync.store import Activation, Store
from icp_sync.tiering import ScoreResult
from icp_sync.writeback import (
    Plan,
    canonical_values,
    desired_account_values,
    plan,
    retry_due,
)

if TYPE_CHECKING:
    from icp_sync.lookalike import LookalikeModel

__all__ = ["IcpInForce", "WritePlan", "plan_writes", "preview_writes", "same_attempt"]


@dataclass(frozen=True, slots=True, kw_only=True)
class IcpInForce:
    """An ICP version with its model and the TAL that goes with it."""

    definition: IcpDefinition
    model: LookalikeModel | None
    tal_id: int | None
    members: pd.DataFrame
    coverage: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class WritePlan:
    """What writing ``icp`` to the CRM would change."""

    planned: Plan
    scored: ScoreResult
    skipped_known_rejects: int
    retried_rejects: int
    retiered: int
    tiered: int
    manual: set[tuple[str, str]]
    """(record, field) cells a person edited by hand since icp-sync last wrote them."""
    policy: ManualEditPolicy
    scoring: dict[str, Any] = field(default_factory=dict)
    """How the accounts were scored: ``mode`` (full|incremental), ``accounts``,
    ``accounts_scored``, ``accounts_planned``."""

    @property
    def retier_share(self) -> float:
        """Accounts moving tier under the version the CRM already holds, as a share."""
        return self.retiered / self.tiered if self.tiered else 0.0


def plan_writes(
    settings: Settings,
    store: Store,
    history: History,
    icp: IcpInForce,
    *,
    writable: set[str] | None,
    now: datetime,
    keep: bool,
    read_back: set[str] | None = None,
) -> WritePlan:
    """Score with ``icp`` and plan the owned-field changes against what the CRM holds.

    Args:
        writable: Owned fields that exist in the CRM (``None``: every owned field).
        keep: Store the scores (a sync does; a preview does not).
        read_back: The CRM holds every account's planned values but for those scored again
            and these (whose owned values read in this cycle differ from what icp-sync knew):
            plan only them, and score only the accounts whose inputs changed. ``None``:
            score and plan every account.
    """
    definition = icp.definition
    scoring: dict[str, Any] = {}
    if keep:
        kept = score_incrementally(
            settings,
            store,
            history,
            now=now,
            definition=definition,
            model=icp.model,
            plan_also=read_back,
        )
        scored = kept.result
        scoring = {
            "mode": "incremental" if kept.incremental else "full",
            "accounts": kept.accounts,
            "accounts_scored": len(kept.rescored),
            "accounts_planned": len(scored.frame),
        }
    else:
        scored = score(
            settings, store, history, now=now, definition=definition, model=icp.model, keep=keep
        )
    desired = desired_account_values(
        scored.frame, icp.members, version=definition.version, scored_at=now
    )
    incremental = scoring.get("mode") == "incremental"
    current = store.ledger.field_values(
        CrmObject.ACCOUNT, ids=desired.index.tolist() if incremental else None
    )
    manual = store.ledger.manual_fields(CrmObject.ACCOUNT)
    policy = ManualEditPolicy(settings.writeback.manual_edits)
    if manual and policy is ManualEditPolicy.KEEP:
        desired = keep_overrides(desired, current, manual)
    planned = plan(desired, current, writable=writable)
    # a record refused before with the same values is tried again on a backoff schedule
    refused = store.ledger.rejections(CrmObject.ACCOUNT)
    again = {
        record_id: same_attempt(refused[record_id].values, values)
        for (_, record_id), values in (planned.by_record() if refused else {}).items()
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
    overridden = pd.Series(
        scored.frame["overridden"].to_numpy(dtype=bool),
        index=scored.frame["account_id"].astype(str),
    )
    retiered, tiered = _retiers(desired, current, overridden)
    if incremental and writable is not None and "tier" in writable:
        # the accounts not planned hold the tier the last complete write-back gave them
        tiered += scoring["accounts"] - len(desired)
    return WritePlan(
        planned=planned,
        scored=scored,
        skipped_known_rejects=len(skip),
        retried_rejects=len(again) - len(skip),
        retiered=retiered,
        tiered=tiered,
        manual=manual,
        policy=policy,
        scoring=scoring,
    )


def preview_writes(
    settings: Settings,
    store: Store,
    history: History,
    icp: IcpInForce,
    current: Activation | None,
    *,
    now: datetime,
) -> dict[str, Any]:
    """What making ``icp`` live changes: CRM records and fields, tier moves, TAL changes.

    Planned as the sync plans (:func:`plan_writes`), against the CRM values of the last sync.
    A connector that writes to no CRM gets tier moves against the active version's last scores.
    """
    connector = make_connector(settings, connector_state(store, settings))
    try:
        writes = isinstance(connector, WritableConnector)
        writable = (
            set(connector.writable_fields()) if isinstance(connector, WritableConnector) else None
        )
    finally:
        connector.close()
    proposal = plan_writes(settings, store, history, icp, writable=writable, now=now, keep=False)
    summary = proposal.planned.summary()
    if not writes:
        summary = {"records": 0, "field_changes": 0, "by_field": {}, "tier_moves": {}}
        summary["tier_moves"] = _moves_from_scores(store, current, proposal.scored.frame)
    before = set()
    if current is not None and current.tal_id is not None:
        held = store.versions.tal(current.tal_id)
        before = set(held.members["account_id"].astype(str)) if held is not None else set()
    after = set(icp.members["account_id"].astype(str))
    return {
        "tiers": proposal.scored.tiers,
        "plan": summary,
        "crm_writes": writes,
        "tal": {"size": len(after), "added": len(after - before), "removed": len(before - after)},
    }


def _moves_from_scores(store: Store, current: Activation | None, frame: Any) -> dict[str, int]:
    """Tier moves against the active version's last stored scores (no CRM to compare with)."""
    if current is None:
        return {}
    held = store.versions.load_scores(current.version)
    if held.empty:
        return {}
    old = held.set_index("account_id")["tier"]
    new = frame.set_index("account_id")["tier"]
    both = new.to_frame("new").join(old.rename("old"), how="left").fillna("(none)")
    moved = both[both["new"] != both["old"]]
    counts = moved.groupby(["old", "new"]).size()
    return {f"{o} -> {n}": int(c) for (o, n), c in sorted(counts.items())}


def _retiers(
    desired: pd.DataFrame, current: pd.DataFrame, overridden: pd.Series
) -> tuple[int, int]:
    """(accounts whose tier would move under the version they already hold, accounts tiered).

    A move that comes with a version change was previewed and approved at activation; one
    that follows a human tier override is that human's decision.
    """
    if current.empty or "tier" not in current:
        return 0, 0
    held = canonical_values(current.reindex(index=desired.index))
    wanted = canonical_values(desired[["tier", "version"]])
    held_tier = held["tier"]
    tiered = held_tier.ne("")
    same_version = (
        held["version"].eq(wanted["version"])
        if "version" in held
        else pd.Series(True, index=held.index)
    )
    by_hand = overridden.reindex(desired.index, fill_value=False).astype(bool)
    moved = tiered & same_version & ~by_hand & held_tier.ne(wanted["tier"])
    return int(moved.sum()), int(tiered.sum())


def same_attempt(refused: str, values: dict[str, Any]) -> bool:
    """Would this write repeat a refused one? (The scoring time alone does not count.)"""
    before = {k: v for k, v in json.loads(refused).items() if k != "scored_at"}
    now = {k: v for k, v in values.items() if k != "scored_at"}
    return bool(before == json.loads(json.dumps(now, default=str)))
