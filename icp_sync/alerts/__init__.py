"""RevOps alerts: Slack, e-mail and a signed JSON webhook behind one protocol.

The sinks only send: they know nothing of the state store or the connectors (the linter
keeps it so). :mod:`icp_sync.pipeline.alerting` puts alerts in the store's outbox and hands
each due one to :func:`make_sinks`' sink for its channel.
"""

from __future__ import annotations

from icp_sync.alerts.base import AlertMessage, Sink
from icp_sync.alerts.config import (
    AlertsConfig,
    CrmTaskConfig,
    EmailConfig,
    SlackConfig,
    WebhookConfig,
)
from icp_sync.alerts.email import EmailSink
from icp_sync.alerts.slack import SlackSink
from icp_sync.alerts.webhook import WebhookSink, sign, verify

__all__ = [
    "AlertMessage",
    "AlertsConfig",
    "CrmTaskConfig",
    "EmailConfig",
    "EmailSink",
    "Sink",
    "SlackConfig",
    "SlackSink",
    "WebhookConfig",
    "WebhookSink",
    "make_sinks",
    "sign",
    "verify",
]


def make_sinks(config: AlertsConfig) -> dict[str, Sink]:
    """The configured sinks by channel name (``webhook``, ``slack``, ``email``)."""
    sinks: dict[str, Sink] = {}
    if config.webhook is not None:
        sinks["webhook"] = WebhookSink(config.webhook)
    if config.slack is not None:
        sinks["slack"] = SlackSink(config.slack)
    if config.email is not None:
        sinks["email"] = EmailSink(config.email)
    return sinks
