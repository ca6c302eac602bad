"""``check``: the config, the state store and the connector, each with what to do about it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connectors import make_connector
from connectors.base import CheckItem
from icp_sync.config import Settings
from icp_sync.errors import IcpSyncError
from icp_sync.store import Store

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
    try:
        with Store.open(settings.store.url) as store:
            detail = f"{settings.store.display_url} (schema version {store.schema_version})"
            items.append(CheckItem(name="state store", ok=True, detail=detail))
    except IcpSyncError as exc:
        items.append(
            CheckItem(
                name="state store",
                ok=False,
                detail=str(exc),
                fix="fix store.url or start the database",
            )
        )
    connector = make_connector(settings)
    try:
        items += connector.check()
    finally:
        connector.close()
    return CheckReport(config=path, items=items)
