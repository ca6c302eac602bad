"""Alert sinks against local receivers: a signed webhook, Slack Block Kit, SMTP with STARTTLS."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from icp_sync.alerts import (
    AlertMessage,
    EmailConfig,
    EmailSink,
    SlackConfig,
    SlackSink,
    WebhookConfig,
    WebhookSink,
    sign,
    verify,
)
from icp_sync.errors import AlertDeliveryError
from tests.alerts_support import SmtpServer, WebhookReceiver

PAYLOAD = {
    "event": "icp.violation",
    "opportunity_id": "006A",
    "opportunity_name": "Big deal",
    "account_id": "001R",
    "rule": "red_account",
    "reason": "new deal on a Red account (cannot serve)",
    "tier_at_creation": "Red",
    "first_seen_at": "2026-11-01T12:00:00+00:00",
    "record_url": "https://example.my.salesforce.com/lightning/r/Opportunity/006A/view",
    "amount": 12000.0,
}
MESSAGE = AlertMessage(delivery_key="violation:006A:red_account:webhook", kind="violation",
                       payload=PAYLOAD)  # fmt: skip


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    """A webhook receiver on 127.0.0.1."""
    started = WebhookReceiver().start()
    yield started
    started.stop()


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpServer]:
    """An SMTP server requiring STARTTLS and login."""
    server = SmtpServer(tmp_path).start()
    yield server
    server.stop()


def test_webhook_posts_json_signed_over_timestamp_and_body(receiver: WebhookReceiver) -> None:
    """The body is the payload; the signature verifies with the secret and carries its time."""
    sink = WebhookSink(WebhookConfig(url=f"{receiver.url}/hook", secret=SecretStr("k3y")))

    sink.send(MESSAGE)

    [got] = receiver.received
    header = got.headers["X-ICP-Sync-Signature"]
    assert got.json() == PAYLOAD
    assert got.headers["X-ICP-Sync-Delivery"] == MESSAGE.delivery_key
    assert verify("k3y", header, got.body, now=time.time())
    assert not verify("other", header, got.body, now=time.time())
    assert not verify("k3y", header, got.body + b" ", now=time.time())


def test_a_replayed_or_retimed_signature_is_refused() -> None:
    """An old timestamp fails the tolerance; a new timestamp with the old HMAC fails the HMAC."""
    body = json.dumps(PAYLOAD).encode()
    old = sign("k3y", body, 1_700_000_000)
    forged = old.replace("t=1700000000", "t=1800000000")

    assert verify("k3y", old, body, now=1_700_000_100)
    assert not verify("k3y", old, body, now=1_700_001_000)
    assert not verify("k3y", forged, body, now=1_800_000_000)


def test_webhook_non_2xx_and_refused_connection_are_delivery_errors(
    receiver: WebhookReceiver,
) -> None:
    """A 500 answer or nobody listening raises AlertDeliveryError (so it is retried)."""
    receiver.status = 500
    sink = WebhookSink(WebhookConfig(url=receiver.url, secret=SecretStr("k")))
    with pytest.raises(AlertDeliveryError, match="500"):
        sink.send(MESSAGE)
    receiver.stop()
    with pytest.raises(AlertDeliveryError, match="unreachable"):
        sink.send(MESSAGE)


def test_slack_gets_block_kit_with_a_button_to_the_record(receiver: WebhookReceiver) -> None:
    """The Slack message has a header, the reason, and a button linking to the deal."""
    SlackSink(SlackConfig(url=SecretStr(f"{receiver.url}/slack"))).send(MESSAGE)

    message = receiver.on("/slack")[0].json()
    assert "Big deal" in message["text"]
    assert message["blocks"][0]["type"] == "header"
    assert "Red account" in message["blocks"][1]["text"]["text"]
    assert message["blocks"][2]["elements"][0]["url"] == PAYLOAD["record_url"]


def test_email_uses_starttls_and_login(smtp: SmtpServer) -> None:
    """The mail goes over STARTTLS with the configured login, with the deal in it."""
    config = EmailConfig(
        host="127.0.0.1",
        port=smtp.port,
        username=SmtpServer.USER,
        password=SecretStr(SmtpServer.PASSWORD),
        ca_file=smtp.ca_file,
        sender="icp-sync@example.com",
        to=["revops@example.com"],
    )

    EmailSink(config).send(MESSAGE)

    [mail] = smtp.messages
    assert "Big deal" in mail["Subject"]
    assert mail["X-ICP-Sync-Delivery"] == MESSAGE.delivery_key
    assert PAYLOAD["record_url"] in mail.get_payload()
    assert smtp.logins


def test_email_with_a_wrong_password_is_a_delivery_error(smtp: SmtpServer) -> None:
    """A refused login raises AlertDeliveryError and sends nothing."""
    config = EmailConfig(
        host="127.0.0.1",
        port=smtp.port,
        username=SmtpServer.USER,
        password=SecretStr("wrong"),
        ca_file=smtp.ca_file,
        timeout_s=2,
        sender="icp-sync@example.com",
        to=["revops@example.com"],
    )

    with pytest.raises(AlertDeliveryError):
        EmailSink(config).send(MESSAGE)
    assert smtp.messages == []
