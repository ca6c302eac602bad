"""CRM connectors: one protocol (:mod:`connectors.base`), one package per CRM, and the factory."""

from __future__ import annotations

from typing import TYPE_CHECKING

from connectors.base import (
    ApiUsage,
    Batch,
    CheckItem,
    Connector,
    ConnectorState,
    WritableConnector,
)
from icp_sync.errors import ConfigError

if TYPE_CHECKING:
    # icp_sync.config composes the connectors' own config sections, so import it lazily
    from icp_sync.config import Settings

__all__ = ["ApiUsage", "Batch", "CheckItem", "Connector", "WritableConnector", "make_connector"]


def make_connector(settings: Settings, state: ConnectorState | None = None) -> Connector:
    """The connector ``crm.connector`` names, built from its config section.

    Args:
        settings: The configuration.
        state: Where the connector keeps its own state (write windows and the like); the
            pipeline passes one kept in the state store.
    """
    if settings.crm.connector == "files":
        from connectors.files.connector import FileConnector

        if settings.files is None:
            raise ConfigError(["files: section required when crm.connector = 'files'"])
        if settings.files.writeback is not None:
            from connectors.files.writeback import FileWriteConnector

            return FileWriteConnector(settings.files)
        return FileConnector(settings.files)
    if settings.crm.connector == "salesforce":
        from connectors.salesforce.connector import SalesforceConnector

        if settings.salesforce is None:
            raise ConfigError(["salesforce: section required when crm.connector = 'salesforce'"])
        return SalesforceConnector(settings.salesforce, state=state)
    raise ConfigError([f"crm.connector: unknown connector {settings.crm.connector!r}"])
