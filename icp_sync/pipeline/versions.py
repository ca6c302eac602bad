"""The ICP lifecycle: proposals, the version in force, activation (with its preview), rollback.

``derive`` and ``tal`` only propose: a new ICP version, a new TAL. A sync writes the *active*
version with the TAL fixed when it was activated. :func:`activate` is the one way a version
goes live: it shows what the CRM would change (the same planner the sync uses, against what
the CRM held at the last sync), then records who activated what, when, replacing which
version. Activating an older version is the rollback. The TAL that goes live is ``tal_id``
when given, else the newest TAL proposed for that version, else one built now
(``tal.size``). On a fresh store (no version at all) the first sync derives and activates v1
by itself, and says so.
"""

from __future__ import annotations

import dataclasses
import getpass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from icp_sync import tiering
from icp_sync.config import Settings, read_text
from icp_sync.errors import ConfigError, PipelineError
from icp_sync.icp import IcpDefinition, from_toml, to_toml
from icp_sync.log import get_logger
from icp_sync.pipeline.derive import derive_icp, load_model
from icp_sync.pipeline.history import History
from icp_sync.pipeline.planning import IcpInForce, preview_writes
from icp_sync.pipeline.score import score, unknown_version
from icp_sync.store import Activation, IcpVersion, Store

if TYPE_CHECKING:
    from icp_sync.lookalike import LookalikeModel

__all__ = [
    "FIRST_RUN",
    "activate",
    "active_definition",
    "icp_in_force",
    "operator",
    "version_list",
]

log = get_logger()

FIRST_RUN = "icp-sync (first run)"
"""Who an automatic first activation is recorded as."""


def operator(by: str | None = None) -> str:
    """Who is acting: ``by`` when given, else the OS user."""
    if by:
        return by
    try:
        return getpass.getuser()
    except OSError:
        return "unknown"


def icp_in_force(
    settings: Settings, store: Store, history: History, *, now: datetime
) -> tuple[IcpInForce | None, Activation | None]:
    """The active ICP version with its TAL, and the activation made now if this is a first run.

    On a store without any version, v1 is derived and activated (a first run). With versions
    but none active, there is nothing in force: ``(None, None)``.
    """
    current = store.activations.current()
    first: Activation | None = None
    if current is None:
        if store.versions.history():
            return None, None
        log.info("icp_missing", action="deriving and activating the first ICP version")
        derived = derive_icp(settings, store, history, now=now)
        first = _activate_stored(
            settings, store, history, derived.definition.version, by=FIRST_RUN, now=now
        )
        log.warning(
            "icp_activated_automatically",
            version=first.version,
            reason="first run on an empty store",
            next="later versions go live only with `icp-sync activate`",
        )
        current = first
    stored = _stored(store, current.version)
    _warn_unless_live(settings.icp.definition, stored)
    tal = store.versions.tal(current.tal_id) if current.tal_id is not None else None
    if tal is None:
        raise PipelineError(f"the TAL of active ICP {current.version} is missing from the store")
    icp = IcpInForce(
        definition=_definition(stored),
        model=load_model(stored.model),
        tal_id=tal.tal_id,
        members=tal.members,
    )
    return icp, first


def active_definition(
    settings: Settings, store: Store, history: History, *, now: datetime
) -> tuple[IcpDefinition, LookalikeModel | None]:
    """The definition and model of the active version (on a fresh store: v1, activated)."""
    icp, _ = icp_in_force(settings, store, history, now=now)
    if icp is None:
        raise PipelineError(
            "no ICP version is active: list them with `icp-sync versions`, "
            "then `icp-sync activate VERSION`"
        )
    return icp.definition, icp.model


def activate(
    settings: Settings,
    store: Store,
    history: History,
    target: str,
    *,
    now: datetime,
    by: str | None = None,
    tal_id: int | None = None,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Preview, and unless ``dry_run`` record, the activation of ``target``.

    ``target`` is a stored version name (``v3``; an older one is a rollback) or the path of an
    edited ICP definition (TOML), imported as a new version.
    """
    definition, model, source = _resolve(store, target)
    if tal_id is not None:
        tal = store.versions.tal(tal_id)
        if tal is None or tal.version != definition.version:
            raise PipelineError(f"TAL {tal_id} is not a TAL of ICP {definition.version}")
    else:
        tal = store.versions.latest_tal(definition.version) if source is not None else None
    scored = score(
        settings, store, history, now=now, definition=definition, model=model, keep=False
    )
    if tal is not None:
        members, tal_source = tal.members, f"TAL {tal.tal_id} ({tal.created_at:%Y-%m-%d %H:%M})"
    else:
        members, coverage = tiering.build_tal(scored.frame, definition, settings.tal.size)
        tal_source = f"built at activation, tal.size = {settings.tal.size}"
    icp = IcpInForce(
        definition=definition,
        model=model,
        tal_id=tal.tal_id if tal else None,
        members=members,
        coverage=coverage if tal is None else tal.coverage,
    )
    current = store.activations.current()
    preview = preview_writes(settings, store, history, icp, current, now=now)
    preview["tal"]["source"] = tal_source
    by = operator(by)
    document: dict[str, Any] = {
        "version": definition.version,
        # what to pass to `activate` to make it live: an edited file is imported only then
        "target": definition.version if source is not None else target,
        "previous": current.version if current else None,
        "rollback": current is not None
        and current.version != definition.version
        and any(a.version == definition.version for a in store.activations.history()),
        "dry_run": dry_run,
        "activated": False,
        "by": by,
        **preview,
    }
    if dry_run:
        return document
    if source is None:
        _import(store, definition, target=target, now=now)
    activation = _record(settings, store, icp, by=by, note=f"activated with {tal_source}", now=now)
    document |= {
        "activated": True,
        "activated_at": activation.activated_at.isoformat(),
        "tal": document["tal"] | {"tal_id": activation.tal_id},
    }
    log.info(
        "icp_activated",
        version=activation.version,
        previous=activation.previous_version,
        by=by,
        tal_id=activation.tal_id,
    )
    return document


def version_list(store: Store) -> list[dict[str, Any]]:
    """Every stored version, oldest first: status (active / retired / proposed), who, when."""
    activations = store.activations.history()
    current = activations[0].version if activations else None
    latest: dict[str, Activation] = {}
    for item in reversed(activations):
        latest[item.version] = item
    rows = []
    for version, created_at, as_of in store.versions.history():
        activation = latest.get(version)
        if version == current:
            status = "active"
        elif activation is not None:
            status = "retired"
        else:
            status = "proposed"
        rows.append(
            {
                "version": version,
                "status": status,
                "created_at": created_at.isoformat(),
                "as_of": as_of.isoformat(),
                "activated_at": activation.activated_at.isoformat() if activation else None,
                "activated_by": activation.activated_by if activation else None,
                "tal_id": activation.tal_id if activation else None,
                "replaced": activation.previous_version if activation else None,
            }
        )
    return rows


def _activate_stored(
    settings: Settings, store: Store, history: History, version: str, *, by: str, now: datetime
) -> Activation:
    """Activate a stored version with its newest TAL (built now when it has none)."""
    stored = _stored(store, version)
    definition, model = _definition(stored), load_model(stored.model)
    tal = store.versions.latest_tal(version)
    if tal is not None:
        members, coverage = tal.members, tal.coverage
    else:
        scored = score(settings, store, history, now=now, definition=definition, model=model)
        members, coverage = tiering.build_tal(scored.frame, definition, settings.tal.size)
    icp = IcpInForce(
        definition=definition,
        model=model,
        tal_id=tal.tal_id if tal is not None else None,
        members=members,
        coverage=coverage,
    )
    return _record(settings, store, icp, by=by, note="first run on an empty store", now=now)


def _record(
    settings: Settings, store: Store, icp: IcpInForce, *, by: str, note: str, now: datetime
) -> Activation:
    tal_id = icp.tal_id
    if tal_id is None:
        tal_id = store.versions.save_tal(
            name=settings.tal.name,
            version=icp.definition.version,
            members=icp.members,
            coverage=icp.coverage,
            now=now,
        )
    return store.activations.activate(
        icp.definition.version, tal_id=tal_id, by=by, note=note, now=now
    )


def _resolve(
    store: Store, target: str
) -> tuple[IcpDefinition, LookalikeModel | None, IcpVersion | None]:
    """(definition, model, stored version or ``None`` for a file still to import)."""
    stored = store.versions.get(target)
    if stored is not None:
        return _definition(stored), load_model(stored.model), stored
    path = Path(target)
    if not path.is_file():
        problem = unknown_version(store, "VERSION", target)
        raise ConfigError([f"{problem.problems[0]}; nor is it a definition file"])
    edited = read_definition(path)
    origin = store.versions.get(edited.version)
    if origin is not None and origin.definition == to_toml(edited):
        return edited, load_model(origin.model), origin
    renamed = dataclasses.replace(edited, version=f"v{store.versions.next_seq()}")
    return renamed, load_model(origin.model) if origin else None, None


def read_definition(path: Path) -> IcpDefinition:
    """An ICP definition file, read and validated (clean errors for unreadable files)."""
    return from_toml(read_text(path, "ICP definition file (TOML)"), source=str(path))


def _import(store: Store, definition: IcpDefinition, *, target: str, now: datetime) -> None:
    """Store an edited definition as a new version (evidence and model of its origin)."""
    origin_name = read_definition(Path(target)).version
    origin = store.versions.get(origin_name)
    store.versions.save(
        version=definition.version,
        seq=int(definition.version.removeprefix("v")),
        as_of=definition.as_of,
        definition=to_toml(definition),
        evidence=origin.evidence if origin else [],
        model_summary=(origin.model_summary if origin else {}) | {"imported_from": target},
        model=origin.model if origin else None,
        now=now,
    )
    log.info("icp_imported", version=definition.version, file=target, origin=origin_name)


def _warn_unless_live(path: Path | None, active: IcpVersion) -> None:
    """``icp.definition`` names a file; say so when it is not what is live."""
    if path is None:
        return
    edited = read_definition(path)
    live = _definition(active)
    if to_toml(dataclasses.replace(edited, version=live.version)) == to_toml(live):
        return
    log.warning(
        "icp_definition_not_live",
        file=str(path),
        active=active.version,
        fix=f"icp.definition does not make a file live: review it, then `icp-sync activate {path}`",
    )


def _stored(store: Store, version: str) -> IcpVersion:
    stored = store.versions.get(version)
    if stored is None:
        raise PipelineError(f"ICP version {version} is not in the store")
    return stored


def _definition(stored: IcpVersion) -> IcpDefinition:
    return from_toml(stored.definition, source=f"stored {stored.version}")
