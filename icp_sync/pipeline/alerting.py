"""Alerts through the outbox: what a violation alert says, and the delivery step.

The monitor enqueues one alert per configured channel for each *new* violation, in the
transaction that records it (:meth:`~icp_sync.store.violations.ViolationRepository.save`).
:func:`deliver_alerts` sends what is due: each alert is claimed (so two processes never send
the same one), sent, and marked delivered; a failure is retried with exponential backoff
(``alerts.retry_initial_s`` doubling up to ``alerts.retry_max_s``) until it goes through. A
restart loses nothing: the outbox is in the state store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from icp_sync.alerts import AlertMessage, Sink, make_sinks
from icp_sync.compliance import Commitment
from icp_sync.config import Settings
from icp_sync.errors import AlertDeliveryError
from icp_sync.log import get_logger
from icp_sync.store import Alert, OutboxItem, Store, Violation

__all__ = [
    "CLAIM",
    "DeliveryResult",
    "deliver_alerts",
    "digest_alerts",
    "failure_alerts",
    "record_url",
    "retry_delay",
    "violation_alerts",
]

log = get_logger()

CLAIM = timedelta(minutes=5)
"""How long a sender holds an alert it is sending (then another may retry it)."""


@dataclass(slots=True)
class DeliveryResult:
    """What one delivery step did, per channel."""

    delivered: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)
    pending: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready counts."""
        return {"delivered": self.delivered, "failed": self.failed, "pending": self.pending}


def record_url(settings: Settings, opportunity_id: str) -> str | None:
    """A link to the deal in the CRM (``alerts.record_url``, else the Salesforce default)."""
    template = settings.alerts.record_url
    if template is None and settings.salesforce is not None and settings.salesforce.instance_url:
        base = settings.salesforce.instance_url.rstrip("/")
        template = f"{base}/lightning/r/Opportunity/{{id}}/view"
    return template.replace("{id}", opportunity_id) if template else None


def violation_alerts(
    settings: Settings,
    violation: Violation,
    commitment: Commitment | None,
    channels: list[str],
) -> list[Alert]:
    """One alert per channel for a new violation; the delivery key is stable across cycles."""
    payload: dict[str, Any] = {
        "event": "icp.violation",
        "opportunity_id": violation.opportunity_id,
        "account_id": violation.account_id,
        "rule": violation.rule,
        "reason": violation.reason,
        "tier_at_creation": violation.tier_at_creation,
        "status": violation.status,
        "first_seen_at": violation.first_seen_at.isoformat(),
        "record_url": record_url(settings, violation.opportunity_id),
        "commitment": (
            {"period": commitment.period, "content_hash": commitment.content_hash}
            if commitment is not None
            else None
        ),
        **{k: violation.details.get(k) for k in _DETAILS},
    }
    return [
        Alert(
            delivery_key=f"violation:{violation.violation_key}:{channel}",
            channel=channel,
            kind="violation",
            payload=payload | {"delivery_id": f"violation:{violation.violation_key}:{channel}"},
        )
        for channel in channels
    ]


_DETAILS = ("opportunity_name", "account_name", "amount", "owner_id", "deal_type", "motion")


def digest_alerts(
    settings: Settings, open_violations: list[Violation], channels: list[str], *, now: datetime
) -> list[Alert]:
    """The day's digest of open violations, one per channel (its key is the UTC date)."""
    day = now.date().isoformat()
    items = [
        {
            "opportunity_id": v.opportunity_id,
            "opportunity_name": v.details.get("opportunity_name"),
            "account_id": v.account_id,
            "rule": v.rule,
            "reason": v.reason,
            "tier_at_creation": v.tier_at_creation,
            "first_seen_at": v.first_seen_at.isoformat(),
            "record_url": record_url(settings, v.opportunity_id),
        }
        for v in open_violations
    ]
    return [
        Alert(
            delivery_key=f"digest:{day}:{channel}",
            channel=channel,
            kind="digest",
            payload={"event": "icp.digest", "date": day, "open": items},
        )
        for channel in channels
    ]


def failure_alerts(
    settings: Settings, store: Store, title: str, details: dict[str, Any], *, now: datetime
) -> DeliveryResult:
    """Tell RevOps on every channel that sync cycles keep failing (the daemon calls this once
    per run of failures); through the outbox, so a channel that is down gets it later."""
    since = str(details.get("failing_since") or now.isoformat())
    payload = {"event": "icp.sync_failing", "title": title, **details}
    store.outbox.add(
        [
            Alert(
                delivery_key=f"sync-failing:{since}:{channel}",
                channel=channel,
                kind="failure",
                payload=payload,
            )
            for channel in sorted(make_sinks(settings.alerts))
        ],
        now=now,
    )
    return deliver_alerts(settings, store, now)


def retry_delay(settings: Settings, attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed try (1-based): doubling, capped."""
    seconds = settings.alerts.retry_initial_s * 2 ** max(attempts - 1, 0)
    return timedelta(seconds=min(seconds, settings.alerts.retry_max_s))


def deliver_alerts(
    settings: Settings,
    store: Store,
    now: datetime,
    *,
    sinks: Mapping[str, Sink] | None = None,
) -> DeliveryResult:
    """Send every due alert of the outbox once; failures are rescheduled with backoff.

    Args:
        settings: The config (``[alerts]``).
        store: The open state store.
        now: The time of this step (due alerts are those scheduled at or before it).
        sinks: Channel -> sink (default: built from ``settings.alerts``).
    """
    sinks = dict(sinks) if sinks is not None else make_sinks(settings.alerts)
    result = DeliveryResult()
    tried: set[int] = set()
    while True:
        # page by page until nothing due is left that was not tried in this step
        # a channel removed from the config keeps its alerts until it returns
        page = store.outbox.due(now, limit=settings.alerts.batch, channels=list(sinks))
        due = [i for i in page if i.item_id not in tried]
        if not due:
            break
        for item in due:
            tried.add(item.item_id)
            if store.outbox.claim(item, until=now + CLAIM):
                _send(settings, store, sinks[item.channel], item, now=now, result=result)
    result.pending = store.outbox.pending()
    if result.delivered or result.failed:
        log.info("alerts_delivered", **result.as_dict())
    return result


def _send(
    settings: Settings,
    store: Store,
    sink: Sink,
    item: OutboxItem,
    *,
    now: datetime,
    result: DeliveryResult,
) -> None:
    message = AlertMessage(delivery_key=item.delivery_key, kind=item.kind, payload=item.payload)
    try:
        sink.send(message)
    except AlertDeliveryError as exc:
        retry_at = now + retry_delay(settings, item.attempts + 1)
        store.outbox.failed(item, error=str(exc), retry_at=retry_at)
        result.failed[item.channel] = result.failed.get(item.channel, 0) + 1
        log.warning(
            "alert_delivery_failed",
            channel=item.channel,
            delivery_key=item.delivery_key,
            attempts=item.attempts + 1,
            error=str(exc),
            retry_at=retry_at.isoformat(),
        )
        return
    store.outbox.delivered(item, now=now)
    result.delivered[item.channel] = result.delivered.get(item.channel, 0) + 1
