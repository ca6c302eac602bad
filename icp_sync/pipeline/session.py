"""A sync session: the connector kept alive across the daemon's cycles.

A one-shot ``icp-sync sync`` builds a connector, logs in, describes the CRM and throws it all
away. The daemon runs a cycle every few minutes: rebuilding each time would cost a token and
a describe per object every cycle. A session keeps the connector (its token, its described
fields) and refreshes the descriptions on a schedule; a connector fault that may have left
the connection unusable (anything but a spent budget) makes the next cycle build a new one.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from connectors import Connector, make_connector
from connectors.base import LongLived
from icp_sync.config import Settings
from icp_sync.errors import BudgetExhaustedError, ConnectorError
from icp_sync.log import get_logger
from icp_sync.pipeline.history import connector_state
from icp_sync.pipeline.sync import SyncResult, sync
from icp_sync.store import HeldLease, Store

__all__ = ["SyncSession"]

log = get_logger()


class SyncSession:
    """Runs sync cycles through one long-lived connector.

    Args:
        settings: The validated configuration.
        store: The open state store.
        connector_factory: Builds the connector (default: the configured one, with its state
            in the store).
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        connector_factory: Callable[[], Connector] | None = None,
    ) -> None:
        self._settings = settings
        self._store = store
        self._factory = connector_factory or (
            lambda: make_connector(settings, connector_state(store, settings))
        )
        self._connector: Connector | None = None
        self._described_at: datetime | None = None
        self._refresh = timedelta(hours=settings.daemon.describe_refresh_h)

    def cycle(
        self,
        *,
        run_id: str,
        now: datetime,
        lease: HeldLease,
        full: bool = False,
        stop: Callable[[], bool] | None = None,
    ) -> SyncResult:
        """One sync cycle under ``lease``; a no-change cycle skips scoring (see ``unchanged``).

        Raises:
            CycleInterruptedError: ``stop`` said yes between two committed steps.
            IcpSyncError: The cycle failed (the daemon counts it and backs off).
        """
        connector = self._connector_for(now)
        try:
            return sync(
                self._settings,
                self._store,
                run_id=run_id,
                now=now,
                full=full,
                connector=connector,
                lease=lease,
                stop=stop,
                skip_unchanged=True,
            )
        except BudgetExhaustedError:
            raise
        except ConnectorError:
            self.close()  # a broken session or connection: start afresh next cycle
            raise

    def _connector_for(self, now: datetime) -> Connector:
        if self._connector is None:
            self._connector = self._factory()
            self._described_at = now
        elif self._described_at is not None and now - self._described_at >= self._refresh:
            if isinstance(self._connector, LongLived):
                log.info("describe_refresh", every_h=self._settings.daemon.describe_refresh_h)
                self._connector.refresh_metadata()
            self._described_at = now
        return self._connector

    def close(self) -> None:
        """Release the connector (the next cycle builds a new one)."""
        if self._connector is not None:
            self._connector.close()
        self._connector = None
