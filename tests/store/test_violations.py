"""Frozen deal tiers and violations in the store; a violation and its alerts commit together."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from icp_sync.errors import StateStoreError
from icp_sync.store import Alert, FrozenTier, Store, Violation


def _violation(now: datetime, **changes: object) -> Violation:
    made = Violation(
        violation_key="O1:red_account",
        opportunity_id="O1",
        account_id="A1",
        rule="red_account",
        reason="new deal on a Red account",
        tier_at_creation="Red",
        status="out_of_icp",
        first_seen_at=now,
        details={"amount": 1000.0},
    )
    return replace(made, **changes)  # type: ignore[arg-type]


def _alert(key: str = "violation:O1:red_account:webhook") -> Alert:
    return Alert(delivery_key=key, channel="webhook", kind="violation", payload={"a": 1})


def test_a_frozen_tier_never_changes(store: Store, now: datetime) -> None:
    """Freezing a deal's tier again (after re-scoring) keeps the first one."""
    first = FrozenTier(opportunity_id="O1", account_id="A1", tier="Red", icp_version="v1",
                       frozen_at=now)  # fmt: skip
    later = replace(first, tier="Green", icp_version="v2", frozen_at=now + timedelta(days=30))

    assert store.violations.freeze([first]) == 1
    assert store.violations.freeze([later]) == 0
    assert store.violations.frozen_tiers()["O1"] == first


def test_a_violation_is_updated_in_place_and_its_alerts_enqueued_once(
    store: Store, now: datetime
) -> None:
    """Saving under the same key updates the row; the alert's delivery key is stored once."""
    store.violations.save([_violation(now)], alerts=[_alert()], now=now)
    resolved = _violation(now, status="resolved", resolved_at=now + timedelta(hours=1),
                          resolution="closed_lost")  # fmt: skip
    store.violations.save([resolved], alerts=[_alert()], now=now + timedelta(hours=1))

    assert store.violations.all() == [resolved]
    assert store.violations.all("out_of_icp") == []
    assert store.outbox.pending() == 1


def test_a_failed_save_stores_neither_violation_nor_alert(store: Store, now: datetime) -> None:
    """The violation and its alerts are one transaction: a failure leaves neither behind."""
    broken = _alert()
    bad = Alert(delivery_key=None, channel="webhook", kind="violation", payload={})  # type: ignore[arg-type]

    with pytest.raises(StateStoreError):
        store.violations.save([_violation(now)], alerts=[broken, bad], now=now)

    assert store.violations.all() == []
    assert store.outbox.pending() == 0
