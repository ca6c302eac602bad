"""``icp-sync commit``: freeze an ICP version, its TAL, targets and signatories for a period.

The version committed to is the active one unless told (``version``) or given as a
definition file; the TAL is the one that went live with the active version, else the newest
TAL proposed for the version. Recording the same terms again for a period changes nothing;
different terms are a new commitment that supersedes the one in force (history kept).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from icp_sync.compliance import (
    Commitment,
    make_commitment,
    parse_signatory,
    period_bounds,
    same_terms,
)
from icp_sync.config import Settings
from icp_sync.errors import ConfigError, PipelineError
from icp_sync.icp import to_toml
from icp_sync.log import get_logger
from icp_sync.pipeline.score import unknown_version
from icp_sync.pipeline.versions import operator, read_definition
from icp_sync.store import Store

__all__ = ["commit", "commitment_document"]

log = get_logger()


def commit(
    settings: Settings,
    store: Store,
    *,
    period: str,
    now: datetime,
    definition_file: Path | None = None,
    version: str | None = None,
    tal_id: int | None = None,
    target_green_share: float | None = None,
    targets: Mapping[str, float] | None = None,
    signatories: Sequence[str] = (),
    by: str | None = None,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Record (unless ``dry_run``) the commitment for ``period``; returns a JSON-ready report.

    Raises:
        ConfigError: On a bad period, signatory, target or definition file.
        PipelineError: When there is no ICP version or TAL to commit to.
    """
    try:
        period_bounds(period)
        for person in signatories:
            parse_signatory(person)
    except ValueError as exc:
        raise ConfigError([str(exc)]) from None
    icp_version, definition, tal_name, tal_ids = _frozen_icp(
        settings, store, definition_file=definition_file, version=version, tal_id=tal_id
    )
    current = store.commitments.active(period.strip())
    try:
        proposed = make_commitment(
            period=period,
            icp_version=icp_version,
            definition=definition,
            tal_name=tal_name,
            tal_account_ids=tal_ids,
            target_green_share=target_green_share,
            targets=targets,
            signatories=signatories,
            created_at=now,
            created_by=operator(by),
            supersedes=current.content_hash if current else None,
        )
    except ValueError as exc:
        raise ConfigError([str(exc)]) from None
    if current is not None and same_terms(current, proposed):
        return {"recorded": False, "unchanged": True, "dry_run": dry_run} | commitment_document(
            current
        )
    if not dry_run:
        store.commitments.add(proposed)
        log.info(
            "commitment_recorded",
            period=proposed.period,
            icp_version=proposed.icp_version,
            content_hash=proposed.content_hash,
            supersedes=proposed.supersedes,
            tal_size=len(proposed.tal_account_ids),
        )
    return {"recorded": not dry_run, "unchanged": False, "dry_run": dry_run} | commitment_document(
        proposed
    )


def commitment_document(commitment: Commitment | None) -> dict[str, Any]:
    """``{"commitment": {...} | None}`` for output."""
    return {"commitment": commitment.as_dict() if commitment is not None else None}


def commitments_shown(
    store: Store, period: str | None, *, now: datetime, history: bool
) -> dict[str, Any]:
    """``commit --show``: the commitment in force; ``--history``: every one, superseded too,
    with the content hash of the one in force."""
    active = store.commitments.active(period, now=now)
    if not history:
        return commitment_document(active)
    return {
        "commitments": [c.as_dict() for c in store.commitments.history(period)],
        "active": active.content_hash if active else None,
    }


def _frozen_icp(
    settings: Settings,
    store: Store,
    *,
    definition_file: Path | None,
    version: str | None,
    tal_id: int | None,
) -> tuple[str, str, str, list[str]]:
    """(version name, definition TOML, TAL name, TAL account ids in rank order)."""
    active = store.activations.current()
    if definition_file is not None:
        path = (
            settings.resolve(definition_file)
            if not definition_file.is_absolute()
            else (definition_file)
        )
        if not path.is_file():
            raise ConfigError([f"--definition: file not found: {definition_file}"])
        parsed = read_definition(path)
        name, text = parsed.version, to_toml(parsed)
    else:
        name = version or (active.version if active else "")
        if not name:
            raise PipelineError(
                "no ICP version is active: activate one (`icp-sync activate VERSION`) or pass "
                "--version / --definition"
            )
        stored = store.versions.get(name)
        if stored is None:
            raise unknown_version(store, "--version", name)
        text = stored.definition
    if tal_id is not None:
        tal = store.versions.tal(tal_id)
    elif active is not None and active.version == name and active.tal_id is not None:
        tal = store.versions.tal(active.tal_id)
    else:
        tal = store.versions.latest_tal(name) or (
            store.versions.tal(active.tal_id) if active and active.tal_id is not None else None
        )
    if tal is None:
        raise PipelineError(f"no TAL to commit to for ICP {name}: build one with `icp-sync tal`")
    ordered = tal.members.sort_values("rank") if len(tal.members) else tal.members
    ids = [str(a) for a in ordered["account_id"]] if len(ordered) else []
    return name, text, tal.name or settings.tal.name, ids
