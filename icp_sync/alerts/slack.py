"""Slack: a Block Kit message per alert to an incoming webhook, with a link to the record."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from icp_sync.alerts.base import AlertMessage, describe
from icp_sync.alerts.config import SlackConfig
from icp_sync.errors import AlertDeliveryError

if TYPE_CHECKING:
    import requests

__all__ = ["SlackSink", "blocks"]


def blocks(payload: dict[str, Any]) -> dict[str, Any]:
    """The Slack message (``text`` fallback and Block Kit ``blocks``) for an alert."""
    headline, lines = describe(payload)
    body: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": headline[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)[:3000]}},
    ]
    url = payload.get("record_url")
    if url:
        body.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Open the deal"},
                        "url": url,
                    }
                ],
            }
        )
    return {"text": headline, "blocks": body}


class SlackSink:
    """Posts alerts to a Slack incoming webhook."""

    channel = "slack"

    def __init__(self, config: SlackConfig, *, session: requests.Session | None = None) -> None:
        import requests

        self._config = config
        self._session = session or requests.Session()

    def send(self, message: AlertMessage) -> None:
        """POST the Block Kit message; Slack answers 200 ``ok`` when it took it."""
        import requests

        try:
            response = self._session.post(
                self._config.url.get_secret_value(),
                json=blocks(message.payload),
                timeout=self._config.timeout_s,
            )
        except requests.RequestException as exc:
            raise AlertDeliveryError(f"Slack unreachable: {type(exc).__name__}") from None
        if response.status_code != 200:
            raise AlertDeliveryError(f"Slack answered HTTP {response.status_code}")
