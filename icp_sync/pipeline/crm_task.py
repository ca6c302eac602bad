"""The ``crm_task`` alert channel: a task in the CRM for the deal's owner, linked to the deal.

The alert sinks of :mod:`icp_sync.alerts` may not use a connector, so this one lives here:
:func:`task_sinks` adds a :class:`CrmTaskSink` around the live connector when
``[alerts.crm_task] enabled`` and the connector can create tasks
(:class:`connectors.base.TaskCreator`); otherwise the channel is logged as unavailable and
its alerts wait in the outbox. Delivery is exactly once: the connector stores the alert's
delivery key in the task and looks for it before creating one, so a retry after a crash
between the create and the outbox's record finds the first task.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from connectors import make_connector
from connectors.base import Connector, CrmTask, TaskCreator
from icp_sync.alerts import AlertMessage, CrmTaskConfig, Sink, make_sinks
from icp_sync.alerts.base import describe
from icp_sync.config import Settings
from icp_sync.errors import AlertDeliveryError, ConnectorError
from icp_sync.log import get_logger
from icp_sync.pipeline.history import connector_state
from icp_sync.store import Store

__all__ = ["CHANNEL", "CrmTaskSink", "task_channels", "task_sinks"]

log = get_logger()

CHANNEL = "crm_task"


def task_channels(settings: Settings) -> list[str]:
    """``["crm_task"]`` when the channel is enabled (new violations get a task), else none."""
    config = settings.alerts.crm_task
    return [CHANNEL] if config is not None and config.enabled else []


class CrmTaskSink:
    """Opens a task for the deal's owner per violation alert, through the connector."""

    channel = CHANNEL

    def __init__(self, creator: TaskCreator, config: CrmTaskConfig) -> None:
        self._creator = creator
        self._config = config

    def task(self, message: AlertMessage) -> CrmTask:
        """The task for a violation alert (due ``due_in_days`` after it was first seen)."""
        payload = message.payload
        deal = str(payload["opportunity_id"])
        first_seen = datetime.fromisoformat(str(payload["first_seen_at"]))
        headline, lines = describe(payload)
        name = payload.get("opportunity_name") or deal
        owner = payload.get("owner_id")
        return CrmTask(
            key=message.delivery_key,
            deal_id=deal,
            owner_id=str(owner) if owner else None,
            subject=f"{self._config.subject_prefix} out-of-ICP deal {name}",
            body="\n".join([headline, *lines]),
            due=(first_seen + timedelta(days=self._config.due_in_days)).date(),
            priority=self._config.priority,
        )

    def send(self, message: AlertMessage) -> None:
        """Create the task (or find the one an earlier try created); CRM faults are retried."""
        if message.payload.get("event") != "icp.violation":
            return  # only violations are tasks; nothing else is queued for this channel
        try:
            task_id = self._creator.create_task(self.task(message))
        except ConnectorError as exc:
            raise AlertDeliveryError(f"CRM task not created: {exc}") from None
        log.info("crm_task_created", task_id=task_id, delivery_key=message.delivery_key)


@contextmanager
def task_sinks(
    settings: Settings, store: Store, connector: Connector | None = None
) -> Iterator[dict[str, Sink]]:
    """The configured sinks plus the CRM task sink when enabled and the connector can.

    Args:
        settings: The config (``[alerts]``, ``[crm]``).
        store: The state store (the connector's own state).
        connector: The live connector (default: one built here, closed on exit).
    """
    sinks = make_sinks(settings.alerts)
    config = settings.alerts.crm_task
    if config is None or not config.enabled:
        yield sinks
        return
    owned = connector is None
    active = connector or make_connector(settings, connector_state(store, settings))
    try:
        if isinstance(active, TaskCreator):
            sinks[CHANNEL] = CrmTaskSink(active, config)
        else:
            log.warning(
                "crm_task_unavailable",
                connector=active.name,
                detail="this connector cannot create tasks; the alerts wait in the outbox",
            )
        yield sinks
    finally:
        if owned:
            active.close()
