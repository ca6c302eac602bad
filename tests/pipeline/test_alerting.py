"""Alerts through the outbox: never lost, never sent twice, retried with backoff, across restarts.

The receiver is a local HTTP server on 127.0.0.1; "down" means nothing listens on its port.
The restart test runs the real ``icp-sync monitor`` in separate processes on one state store.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from icp_sync.alerts import AlertsConfig, WebhookConfig
from icp_sync.config import Settings, load_settings
from icp_sync.pipeline import deliver_alerts
from icp_sync.pipeline.alerting import digest_alerts
from icp_sync.store import Alert, Store
from tests.alerts_support import WebhookReceiver
from tests.clirun import icp_sync

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    """A webhook receiver, not started (down) until the test starts it."""
    made = WebhookReceiver()
    yield made
    made.stop()


def _settings(receiver: WebhookReceiver) -> Settings:
    alerts = AlertsConfig(
        webhook=WebhookConfig(url=f"{receiver.url}/hook", secret=SecretStr("k")),
        retry_initial_s=30,
        retry_max_s=600,
    )
    return Settings.model_construct(alerts=alerts)


def _alerts(n: int) -> list[Alert]:
    return [
        Alert(delivery_key=f"violation:o{i}:red_account:webhook", channel="webhook",
              kind="violation", payload={"event": "icp.violation", "opportunity_id": f"o{i}"})
        for i in range(n)
    ]  # fmt: skip


def test_a_failed_delivery_waits_its_backoff_then_arrives_once(
    store_url: str, receiver: WebhookReceiver
) -> None:
    """Down at t0: retried no sooner than 30 s later, then 60 s; once up, delivered once."""
    settings = _settings(receiver)
    with Store.open(store_url) as store:
        store.outbox.add(_alerts(3), now=T0)
        down = deliver_alerts(settings, store, T0)
        down_again = deliver_alerts(settings, store, T0 + timedelta(seconds=31))
        receiver.start()
        too_soon = deliver_alerts(settings, store, T0 + timedelta(seconds=60))
        due = deliver_alerts(settings, store, T0 + timedelta(seconds=92))
        after = deliver_alerts(settings, store, T0 + timedelta(hours=1))
        items = store.outbox.items()

    assert down.failed == {"webhook": 3}
    assert down_again.failed == {"webhook": 3}
    assert too_soon.delivered == {}
    assert due.delivered == {"webhook": 3}
    assert after.delivered == {}
    assert due.pending == 0
    assert [i.attempts for i in items] == [3, 3, 3]
    keys = [r.headers["X-ICP-Sync-Delivery"] for r in receiver.received]
    assert sorted(keys) == sorted(a.delivery_key for a in _alerts(3))


def test_an_alert_claimed_by_one_sender_is_not_sent_by_another(store: Store) -> None:
    """Of two processes reading the same due alert, only the first claim wins."""
    store.outbox.add(_alerts(1), now=T0)
    [item] = store.outbox.due(T0)

    assert store.outbox.claim(item, until=T0 + timedelta(minutes=5))
    assert not store.outbox.claim(item, until=T0 + timedelta(minutes=5))
    assert store.outbox.due(T0 + timedelta(minutes=1)) == []


def test_enqueueing_the_same_alert_twice_stores_it_once(store: Store) -> None:
    """The delivery key is unique: a second enqueue of it is a no-op."""
    store.outbox.add(_alerts(2), now=T0)
    store.outbox.add(_alerts(2), now=T0 + timedelta(minutes=1))

    assert store.outbox.pending() == 2


@pytest.mark.slow
def test_alerts_survive_a_receiver_outage_and_restarts_and_arrive_exactly_once(
    example: Path, receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Monitor runs (separate processes) while the receiver is down enqueue each alert once;
    the run after it is back delivers every one exactly once; later runs send nothing."""
    config = example / "icp-sync.toml"
    with config.open("a", encoding="utf-8") as handle:
        handle.write(
            f'\n[alerts]\nretry_initial_s = 0.001\n\n[alerts.webhook]\nurl = "{receiver.url}/hook"'
            '\nsecret = "env:ICP_TEST_WEBHOOK_SECRET"\n'
        )
    env = {"ICP_TEST_WEBHOOK_SECRET": "k"}
    monkeypatch.setenv("ICP_TEST_WEBHOOK_SECRET", "k")
    assert icp_sync("sync", "--config", str(config), env=env).code == 0
    assert icp_sync("derive", "--config", str(config), env=env).code == 0
    assert icp_sync("activate", "v1", "--config", str(config), env=env).code == 0

    first = icp_sync("monitor", "--json", "--config", str(config), env=env)
    again = icp_sync("monitor", "--json", "--config", str(config), env=env)
    settings = load_settings(config)
    with Store.open(settings.store.url) as store:
        pending = store.outbox.pending()
    receiver.start()
    back = icp_sync("monitor", "--json", "--config", str(config), env=env)
    later = icp_sync("monitor", "--json", "--config", str(config), env=env)

    assert first.code == again.code == back.code == later.code == 0, first.stderr
    document = json.loads(first.stdout)
    assert set(document) == {"commitment", "violations"}
    open_ids = {v["opportunity_id"] for v in document["violations"] if v["status"] == "out_of_icp"}
    assert open_ids
    assert json.loads(again.stdout)["violations"] == document["violations"]
    assert pending == len(open_ids)
    delivered = [r.json()["opportunity_id"] for r in receiver.on("/hook")]
    assert sorted(delivered) == sorted(open_ids)
    keys = {r.headers["X-ICP-Sync-Delivery"] for r in receiver.received}
    assert len(keys) == len(delivered)


def test_the_daily_digest_is_one_alert_per_channel_and_day(
    store: Store, receiver: WebhookReceiver
) -> None:
    """Digests enqueued by every cycle of a day are one alert; the next day brings another."""
    settings = _settings(receiver)
    receiver.start()
    for hours in (0, 1, 5, 25):
        at = T0 + timedelta(hours=hours)
        store.outbox.add(digest_alerts(settings, [], ["webhook"], now=at), now=at)
        deliver_alerts(settings, store, at)

    dates = [r.json()["date"] for r in receiver.on("/hook")]
    assert dates == ["2026-11-02", "2026-11-03"]
