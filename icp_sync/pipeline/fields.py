"""``setup-fields``: create the ICP fields in the CRM (idempotent)."""

from __future__ import annotations

from typing import Any

from connectors import WritableConnector, make_connector
from icp_sync.config import Settings
from icp_sync.errors import ConfigError
from icp_sync.pipeline.history import connector_state
from icp_sync.store import Store

__all__ = ["setup_fields"]


def setup_fields(settings: Settings, store: Store, *, dry_run: bool) -> dict[str, Any]:
    """Create the owned fields that are missing; the ``setup-fields --json`` document."""
    connector = make_connector(settings, connector_state(store, settings))
    try:
        if not isinstance(connector, WritableConnector):
            raise ConfigError(
                [f"crm.connector: {connector.name} has no fields to set up (it is read-only)"]
            )
        result = connector.ensure_fields(dry_run=dry_run)
    finally:
        connector.close()
    return {
        "dry_run": result.dry_run,
        "existing": result.existing,
        "created" if not dry_run else "would_create": result.created,
        "failed": result.failed,
        "api_calls": connector.usage().calls,
    }
