"""``tal``, ``review`` and the scoring step of a sync, over the state store.

Loads the ICP in force and its model, runs the pure tiering and review core on the history,
and stores what must be kept (scores, TALs).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from icp_sync import tiering
from icp_sync.config import Settings
from icp_sync.errors import ConfigError, PipelineError
from icp_sync.icp import IcpDefinition, from_toml
from icp_sync.log import get_logger
from icp_sync.pipeline.derive import derive_icp, load_model
from icp_sync.pipeline.history import History
from icp_sync.pipeline.incremental import remember_inputs
from icp_sync.review import backtest
from icp_sync.store import Store
from icp_sync.tiering import ScoreResult, TalResult

if TYPE_CHECKING:
    from icp_sync.lookalike import LookalikeModel

__all__ = ["review", "score", "tal"]

log = get_logger()


def score(
    settings: Settings,
    store: Store,
    history: History,
    *,
    now: datetime,
    definition: IcpDefinition,
    model: LookalikeModel | None,
    as_of: datetime | None = None,
    keep: bool = True,
) -> ScoreResult:
    """Tier and score every account with ``definition`` (stored unless ``keep`` is false)."""
    base = history.base(settings, as_of=as_of, now=now)
    result = tiering.score(
        base.accounts,
        base.outcomes,
        definition,
        model,
        green_min_score=settings.tiers.green_min_score,
    )
    if keep:
        store.versions.save_scores(definition.version, result.frame, now=now)
        if as_of is None:
            remember_inputs(settings, store, base, definition, now=now)
    return result


def tal(
    settings: Settings,
    store: Store,
    history: History,
    *,
    now: datetime,
    size: int | None = None,
    version: str | None = None,
) -> TalResult:
    """Build and store a TAL proposal for ``version`` (default: the newest version).

    A proposal: the TAL in force changes only when a version is activated
    (``icp-sync activate VERSION`` takes the newest TAL proposed for it).
    """
    stored = store.versions.get(version)
    if stored is None:
        if version is not None:
            raise unknown_version(store, "--version", version)
        raise PipelineError("no ICP version yet: run `icp-sync derive`")
    definition = from_toml(stored.definition, source=f"stored {stored.version}")
    model = load_model(stored.model)
    scored = score(settings, store, history, now=now, definition=definition, model=model)
    members, coverage = tiering.build_tal(scored.frame, definition, size or settings.tal.size)
    tal_id = store.versions.save_tal(
        name=settings.tal.name,
        version=definition.version,
        members=members,
        coverage=coverage,
        now=now,
    )
    log.info(
        "tal_proposed",
        name=settings.tal.name,
        version=definition.version,
        size=len(members),
        tal_id=tal_id,
        next=f"goes live with `icp-sync activate {definition.version}`",
    )
    return TalResult(
        name=settings.tal.name,
        version=definition.version,
        accounts=members,
        coverage=coverage,
        tal_id=tal_id,
        as_of=stored.as_of,
        window=history.window(now),
    )


def unknown_version(store: Store, where: str, name: str) -> ConfigError:
    """The usage error for a version name that is not stored, listing those that are."""
    known = ", ".join(v for v, *_ in store.versions.history()) or "none yet (`icp-sync derive`)"
    return ConfigError([f"{where}: no ICP version {name!r}; the versions that exist: {known}"])


def review(
    settings: Settings, store: Store, history: History, *, now: datetime, version: str | None = None
) -> dict[str, Any]:
    """What happened after an ICP version's as-of date: did its predictions come true?"""
    stored = store.versions.get(version)
    if stored is None:
        if version is not None:
            raise unknown_version(store, "--version", version)
        raise PipelineError("no ICP version to review: run `icp-sync derive` first")
    definition = from_toml(stored.definition, source=f"stored {stored.version}")
    then = score(
        settings,
        store,
        history,
        now=now,
        definition=definition,
        model=load_model(stored.model),
        as_of=stored.as_of,
        keep=False,
    )
    # what happened after the as-of date is read up to the end of the history, not today
    end = history.window(now).end
    return backtest(
        then.frame,
        definition,
        history.accounts,
        history.opportunities,
        as_of=pd.Timestamp(stored.as_of),
        now=end,
        tal_size=settings.tal.size,
    )


BACKTEST_AFTER_DAYS = 30
"""An ``--as-of`` at least this long before the end of the history is a backtest: what
happened after it is reviewed at once."""


def derive_report(
    settings: Settings,
    store: Store,
    history: History,
    *,
    now: datetime,
    as_of: datetime | None = None,
) -> dict[str, Any]:
    """``derive``: a proposed ICP version, and its backtest when ``as_of`` leaves time after it."""
    document = derive_icp(settings, store, history, now=now, as_of=as_of).as_dict()
    end = datetime.fromisoformat(document["observation_window"]["end"]).replace(tzinfo=UTC)
    if as_of is not None and (end - as_of).days >= BACKTEST_AFTER_DAYS:
        document["backtest"] = review(
            settings, store, history, now=now, version=document["version"]
        )
    return document
