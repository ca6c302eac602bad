"""The generic JSON webhook: one POST per alert, signed with HMAC-SHA256, replay-safe.

Headers:

- ``X-ICP-Sync-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``;
- ``X-ICP-Sync-Delivery: <delivery key>``: the same on every retry of one alert, so a
  receiver drops a repeat it already processed (at-least-once delivery made exactly-once).

A receiver verifies with :func:`verify`: it recomputes the HMAC over the timestamp and the
raw body, compares in constant time, and refuses a timestamp older than its tolerance (a
replayed request carries an old timestamp, and the timestamp cannot be changed without the
secret).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import TYPE_CHECKING

from icp_sync.alerts.base import AlertMessage
from icp_sync.alerts.config import WebhookConfig
from icp_sync.errors import AlertDeliveryError

if TYPE_CHECKING:
    import requests

__all__ = ["DELIVERY_HEADER", "SIGNATURE_HEADER", "WebhookSink", "sign", "verify"]

SIGNATURE_HEADER = "X-ICP-Sync-Signature"
DELIVERY_HEADER = "X-ICP-Sync-Delivery"


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The signature header value for ``body`` sent at ``timestamp`` (unix seconds)."""
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, header: str, body: bytes, *, now: float, tolerance_s: float = 300) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` and is at most ``tolerance_s`` old."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance_s:
        return False
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


class WebhookSink:
    """POSTs each alert as JSON to ``[alerts.webhook] url``."""

    channel = "webhook"

    def __init__(self, config: WebhookConfig, *, session: requests.Session | None = None) -> None:
        import requests

        self._config = config
        self._session = session or requests.Session()

    def send(self, message: AlertMessage) -> None:
        """POST the payload; a 2xx answer is delivery, anything else a retriable failure."""
        import requests

        body = json.dumps(message.payload, sort_keys=True, default=str).encode()
        secret = self._config.secret.get_secret_value()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(secret, body, int(time.time())),
            DELIVERY_HEADER: message.delivery_key,
        }
        try:
            response = self._session.post(
                self._config.url, data=body, headers=headers, timeout=self._config.timeout_s
            )
        except requests.RequestException as exc:
            raise AlertDeliveryError(f"webhook unreachable: {type(exc).__name__}") from None
        if not 200 <= response.status_code < 300:
            raise AlertDeliveryError(f"webhook answered HTTP {response.status_code}")
