"""What every alert sink implements, and the message it is handed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["AlertMessage", "Sink", "describe"]


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertMessage:
    """One alert to send.

    Attributes:
        delivery_key: Unique per alert and channel; the same on every retry (idempotency).
        kind: ``violation`` or ``digest``.
        payload: Channel-neutral content (see :mod:`icp_sync.pipeline.alerting`).
    """

    delivery_key: str
    kind: str
    payload: dict[str, Any]


class Sink(Protocol):
    """**Protocol**: a channel alerts are delivered to."""

    channel: str

    def send(self, message: AlertMessage) -> None:
        """Deliver ``message``; return only once it was accepted.

        Raises:
            AlertDeliveryError: It was not (it is tried again later).
        """
        ...


def describe(payload: dict[str, Any]) -> tuple[str, list[str]]:
    """(headline, detail lines) of an alert, shared by the human-readable channels."""
    if payload.get("event") == "icp.sync_failing":
        skip = {"event", "title"}
        return str(payload.get("title")), [f"{k}: {v}" for k, v in payload.items() if k not in skip]
    if payload.get("event") == "icp.leadership_digest":
        link = payload.get("link")
        lines = [str(line) for line in payload.get("lines", [])]
        return str(payload.get("subject")), lines + ([f"Dashboard: {link}"] if link else [])
    if payload.get("event") == "icp.digest":
        open_ = payload.get("open", [])
        headline = f"ICP compliance digest {payload.get('date')}: {len(open_)} open violation(s)"
        lines = [
            f"{v.get('opportunity_name') or v['opportunity_id']} ({v.get('tier_at_creation')}): "
            f"{v.get('reason')}" + (f" {v['record_url']}" if v.get("record_url") else "")
            for v in open_
        ]
        return headline, lines or ["No open violations."]
    name = payload.get("opportunity_name") or payload.get("opportunity_id")
    headline = f"Out-of-ICP deal: {name}"
    amount = payload.get("amount")
    lines = [
        f"Reason: {payload.get('reason')}",
        f"Rule: {payload.get('rule')}; tier at creation: {payload.get('tier_at_creation')}",
        f"Account: {payload.get('account_name') or payload.get('account_id')}",
        f"Owner: {payload.get('owner_id') or '-'}"
        + (f"; amount: {amount:,.0f}" if isinstance(amount, int | float) else ""),
        f"First seen: {payload.get('first_seen_at')}",
    ]
    if payload.get("record_url"):
        lines.append(f"Record: {payload['record_url']}")
    lines.append("A waiver (reason and approver on the deal) or closing it resolves this alert.")
    return headline, lines
