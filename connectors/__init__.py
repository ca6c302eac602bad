"""CRM connectors: one protocol (:mod:`connectors.base`), one module per CRM."""

from __future__ import annotations

from connectors.base import ApiUsage, Batch, CheckItem, Connector
from icp_sync.config import Settings
from icp_sync.errors import ConfigError

__all__ = ["ApiUsage", "Batch", "CheckItem", "Connector", "make_connector"]


def make_connector(settings: Settings) -> Connector:
    """The connector ``crm.connector`` names, built from its config section."""
    if settings.crm.connector == "files":
        from connectors.files import FileConnector

        if settings.files is None:
            raise ConfigError(["files: section required when crm.connector = 'files'"])
        return FileConnector(settings.files)
    raise ConfigError([f"crm.connector: unknown connector {settings.crm.connector!r}"])
