"""Incremental scoring: a cycle scores only the accounts whose scoring inputs changed.

An account's tier, score, segment and reasons depend only on its own row of the scoring
base (its attributes with their segment dimensions, and whether it is a customer as of the
cut: ``tiering.OUTCOME_INPUTS``) plus the ICP version, its model and the settings. Every
scoring that stores its scores also stores a digest of each account's base row (kept in
connector_state under "<connector>:scoring-inputs", no migration). The next cycle hashes
the base again (vectorised), scores the accounts whose digest differs or is new, drops the
scores of accounts gone from the mirror, and keeps the stored scores of the rest. Whatever
moves an account's inputs is caught by its digest: an edited field, an opportunity won,
moved or deleted, a later cut that makes it a customer. A new ICP version, model or setting
(a different fingerprint) scores every account again. The record's last-modified stamp is
no input (scoring never reads it, and icp-sync's own write-back moves it on every account it
writes), so reading back its own writes scores nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from icp_sync import tiering
from icp_sync.config import Settings
from icp_sync.icp import IcpDefinition, override_counts
from icp_sync.log import get_logger
from icp_sync.model import Tier
from icp_sync.pipeline.history import Base, History
from icp_sync.store import Store, StoredConnectorState
from icp_sync.tiering import ScoreResult

if TYPE_CHECKING:
    from icp_sync.lookalike import LookalikeModel

__all__ = ["Scored", "remember_inputs", "score_incrementally"]

_NOT_INPUTS = ("modified_at",)
"""Account columns scoring never reads, left out of the digest."""

_SCORE_COLUMNS = ["account_id", "tier", "rule_tier", "score", "segment", "reasons", "overridden"]

log = get_logger()


@dataclass(frozen=True, slots=True, kw_only=True)
class Scored:
    """Scores of a sync: ``result.frame`` holds the accounts to plan (all, or only some)."""

    result: ScoreResult
    incremental: bool
    accounts: int
    """Live accounts in the base."""
    rescored: frozenset[str]
    """Accounts scored in this cycle (every account unless incremental)."""


def score_incrementally(
    settings: Settings,
    store: Store,
    history: History,
    *,
    now: datetime,
    definition: IcpDefinition,
    model: LookalikeModel | None,
    plan_also: set[str] | None,
) -> Scored:
    """Score the accounts whose inputs changed and store them; the others keep their scores.

    Args:
        plan_also: Accounts to plan even when their scores did not change (their CRM values
            were read in this cycle). ``None``: plan every account, and score every account
            unless this very cycle stored their scores already (a first run's activation).
    """
    base = history.base(settings, as_of=None, now=now)
    digests = _digests(base)
    state = _state(settings, store)
    held = state.load()
    ids = base.accounts["account_id"].astype(str)
    reuse = plan_also is not None or held.get("at") == now.isoformat()
    if (
        not reuse
        or held.get("fingerprint") != _fingerprint(settings, definition)
        or not isinstance(held.get("digests"), dict)
    ):
        full = tiering.score(
            base.accounts,
            base.outcomes,
            definition,
            model,
            green_min_score=settings.tiers.green_min_score,
        )
        store.versions.save_scores(definition.version, full.frame, now=now)
        _save(state, settings, definition, digests, now=now)
        return Scored(
            result=full, incremental=False, accounts=len(ids), rescored=frozenset(ids.tolist())
        )
    previous: dict[str, int] = held["digests"]
    mask = np.fromiter(
        (previous.get(i) != digests[i] for i in ids.tolist()), dtype=bool, count=len(ids)
    )
    removed = set(previous) - set(digests)
    rescored: frozenset[str] = frozenset()
    if mask.any():
        part = tiering.score(
            base.accounts[mask].reset_index(drop=True),
            base.outcomes[mask].reset_index(drop=True),
            definition,
            model,
            green_min_score=settings.tiers.green_min_score,
        )
        store.versions.update_scores(definition.version, part.frame, removed=removed, now=now)
        rescored = frozenset(part.frame["account_id"].astype(str).tolist())
    elif removed:
        store.versions.update_scores(
            definition.version, pd.DataFrame(columns=_SCORE_COLUMNS), removed=removed, now=now
        )
    _save(state, settings, definition, digests, now=now)
    wanted = None if plan_also is None else set(rescored) | (plan_also & set(digests))
    frame = store.versions.load_scores(definition.version, wanted)
    frame["account_id"] = frame["account_id"].astype(str)
    # the columns scoring returns but does not store
    extra = pd.DataFrame(
        {
            "account_id": ids.to_numpy(),
            "name": base.accounts["name"].astype("string").to_numpy(),
            "is_customer": base.outcomes["is_customer"].to_numpy(dtype=bool),
        }
    )
    frame = frame.drop(columns=["version", "scored_at"]).merge(extra, on="account_id", how="left")
    frame = frame.sort_values("account_id", kind="stable").reset_index(drop=True)
    tiers = store.versions.score_tiers(definition.version)
    overrides, invalid = override_counts(base.accounts)
    result = ScoreResult(
        version=definition.version,
        frame=frame,
        tiers={str(t): tiers.get(str(t), 0) for t in Tier},
        overrides=overrides,
        invalid_overrides=invalid,
        model=tiering.fitted_model(definition, model).summary(),
    )
    log.info(
        "scored_incrementally",
        accounts=len(ids),
        rescored=len(rescored),
        removed=len(removed),
        planned=len(frame),
    )
    return Scored(
        result=result, incremental=plan_also is not None, accounts=len(ids), rescored=rescored
    )


def remember_inputs(
    settings: Settings, store: Store, base: Base, definition: IcpDefinition, *, now: datetime
) -> None:
    """Keep the digests of ``base``, whose every account was just scored and stored."""
    _save(_state(settings, store), settings, definition, _digests(base), now=now)


def _state(settings: Settings, store: Store) -> StoredConnectorState:
    return StoredConnectorState(store.ledger, f"{settings.crm.connector}:scoring-inputs")


def _save(
    state: StoredConnectorState,
    settings: Settings,
    definition: IcpDefinition,
    digests: dict[str, int],
    *,
    now: datetime,
) -> None:
    fingerprint = _fingerprint(settings, definition)
    state.save({"fingerprint": fingerprint, "at": now.isoformat(), "digests": digests})


def _digests(base: Base) -> dict[str, int]:
    """A digest of every account's scoring inputs (its base row and outcomes), by id."""
    accounts = base.accounts.drop(columns=list(_NOT_INPUTS), errors="ignore")
    accounts = accounts.reset_index(drop=True)
    # only what scoring reads: outcomes such as tenure move with the cut for every account
    outcomes = base.outcomes[list(tiering.OUTCOME_INPUTS)].reset_index(drop=True)
    outcomes = outcomes.add_prefix("outcome:")
    rows = pd.concat([accounts, outcomes], axis=1)
    # per cell, in one representation per kind of value (a column loaded as object one cycle
    # and as bool the next holds the same inputs); an empty cell adds nothing, so a column
    # that appears when one account first fills it changes only that account's digest
    hashed = np.zeros(len(rows), dtype="uint64")
    for name in rows.columns:
        column = rows[name]
        cells = pd.util.hash_pandas_object(_canonical(column), index=False).to_numpy()
        salt = np.uint64(int(hashlib.sha256(str(name).encode()).hexdigest()[:16], 16) | 1)
        hashed += np.where(column.notna().to_numpy(), cells * salt, np.uint64(0))
    # JSON keeps integers exactly; 63 bits keep them signed-safe in every store
    values = (hashed >> 1).astype("int64").tolist()
    return dict(zip(accounts["account_id"].astype(str).tolist(), values, strict=True))


def _canonical(column: pd.Series) -> pd.Series:
    """``column`` in a dtype that does not depend on how it was loaded."""
    if isinstance(column.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(column):
        stamps = pd.to_datetime(column, utc=True)
        return stamps.dt.as_unit("ns").astype("int64").where(stamps.notna(), -1)
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        return column.astype("float64")
    return column.astype("string")


def _fingerprint(settings: Settings, definition: IcpDefinition) -> str:
    """What every account's scores depend on besides its own row: version and settings."""
    config = settings.model_dump_json(exclude={"logging", "daemon"})
    return hashlib.sha256(f"{definition.version}\x1f{config}".encode()).hexdigest()
