"""``check``: the config, the state store and the connector, each with what to do about it.

A check writes nothing: the state store is inspected, never created or upgraded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connectors import make_connector
from connectors.base import CheckItem
from icp_sync.config import Settings
from icp_sync.errors import IcpSyncError
from icp_sync.store import SCHEMA_VERSION, Store

__all__ = ["CheckReport", "check"]


@dataclass(frozen=True, slots=True)
class CheckReport:
    """Every finding of ``check``; ``ok`` when nothing required failed."""

    config: Path
    items: list[CheckItem]

    @property
    def ok(self) -> bool:
        """True when every required item passed."""
        return all(item.ok or not item.required for item in self.items)

    def as_dict(self) -> dict[str, Any]:
        """The ``check --json`` document."""
        return {
            "ok": self.ok,
            "config": str(self.config),
            "items": [
                {
                    "name": i.name,
                    "ok": i.ok,
                    "required": i.required,
                    "detail": i.detail,
                    "fix": i.fix,
                }
                for i in self.items
            ],
        }


def check(settings: Settings, path: Path) -> CheckReport:
    """Validate the store and the connector of a loaded configuration."""
    items = [
        CheckItem(name="config", ok=True, detail=f"{path} is valid"),
        CheckItem(name="connector", ok=True, detail=settings.crm.connector),
    ]
    items.append(_store_item(settings))
    connector = make_connector(settings)
    try:
        items += connector.check()
    finally:
        connector.close()
    return CheckReport(config=path, items=items)


def _store_item(settings: Settings) -> CheckItem:
    """The state store's schema version, read without creating or upgrading anything."""
    url = settings.store.display_url
    try:
        found = Store.inspect(settings.store.url)
    except IcpSyncError as exc:
        return CheckItem(
            name="state store", ok=False, detail=str(exc), fix="fix store.url or start the database"
        )
    if found == 0:
        detail = f"{url}: empty database: the first sync creates the schema"
    elif found < SCHEMA_VERSION:
        detail = (
            f"{url}: schema v{found} is older than this release's v{SCHEMA_VERSION}: "
            "the next sync upgrades it"
        )
    elif found > SCHEMA_VERSION:
        return CheckItem(
            name="state store",
            ok=False,
            detail=f"{url}: schema v{found} is newer than this release's v{SCHEMA_VERSION}",
            fix="upgrade icp-sync",
        )
    else:
        detail = f"{url} (schema version {found})"
    return CheckItem(name="state store", ok=True, detail=detail)
