"""The compliance monitor against a sandbox org, with a local webhook receiver and SMTP server.

Alerts are counted where they arrive (the receiver, the SMTP inbox); CRM state is read from
the sandbox through simple-salesforce.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from icp_sync.alerts import AlertsConfig, EmailConfig, SlackConfig, WebhookConfig, verify
from tests.alerts_support import SmtpServer, WebhookReceiver
from tests.conftest import SandboxFactory
from tests.connectors.salesforce_org import Org, make_org, override
from tests.crm_clients import salesforce_client

SECRET = "whsec-test"


@dataclass
class Watched:
    """An org after its first sync, with every alert channel pointed at local receivers."""

    org: Org
    receiver: WebhookReceiver
    smtp: SmtpServer

    def arrivals(self) -> tuple[int, int, int]:
        """(webhook, slack, e-mail) alerts received so far."""
        return (
            len(self.receiver.on("/hook")),
            len(self.receiver.on("/slack")),
            len(self.smtp.messages),
        )

    def deal(self, account_id: str, **values: Any) -> str:
        """Create an open new-business deal on ``account_id``; returns its id."""
        sf = salesforce_client(self.org.sandbox)
        created = sf.Opportunity.create(
            {
                "Name": f"Deal {time.monotonic_ns()}",
                "AccountId": account_id,
                "StageName": "Prospecting",
                "CloseDate": "2027-03-31",
                "Type": "New Business",
                "LeadSource": "Inbound",
                "Amount": 25000,
            }
            | values
        )
        return str(created["id"])

    def opportunity(self, opportunity_id: str) -> dict[str, Any]:
        """The deal's ICP fields as the org holds them."""
        sf = salesforce_client(self.org.sandbox)
        fields = "ICP_Tier_At_Creation__c, ICP_Compliance__c, ICP_Compliance_Reason__c, OwnerId"
        soql = f"SELECT {fields} FROM Opportunity WHERE Id = '{opportunity_id}'"
        return dict(sf.query(soql)["records"][0])

    def violation(self, opportunity_id: str) -> dict[str, Any]:
        """The stored violation of a deal."""
        [found] = [
            v.as_dict()
            for v in self.org.store.violations.all()
            if v.opportunity_id == opportunity_id
        ]
        return found


@pytest.fixture
def watched(sandbox_factory: SandboxFactory, tmp_path: Path) -> Iterator[Watched]:
    """A 1,000-account org after a first sync (its old violations recorded), then alerts on.

    Two accounts are Red by a human tier override (the ICP the org derives has no Red rule).
    """
    org = make_org(sandbox_factory, tmp_path)
    org.setup_fields()
    sf = salesforce_client(org.sandbox)
    ids = [r["Id"] for r in sf.query("SELECT Id FROM Account ORDER BY Id LIMIT 2")["records"]]
    override(org, ids, "Red")
    org.sync(compliance=True)
    receiver = WebhookReceiver().start()
    smtp = SmtpServer(tmp_path).start()
    alerts = AlertsConfig(
        webhook=WebhookConfig(url=f"{receiver.url}/hook", secret=SecretStr(SECRET)),
        slack=SlackConfig(url=SecretStr(f"{receiver.url}/slack")),
        email=EmailConfig(
            host="127.0.0.1",
            port=smtp.port,
            username=SmtpServer.USER,
            password=SecretStr(SmtpServer.PASSWORD),
            ca_file=smtp.ca_file,
            sender="icp-sync@example.com",
            to=["revops@example.com"],
        ),
    )
    org.settings = org.settings.model_copy(update={"alerts": alerts})
    yield Watched(org=org, receiver=receiver, smtp=smtp)
    receiver.stop()
    smtp.stop()
    org.store.close()


def _account_in_tier(org: Org, tier: str) -> str:
    sf = salesforce_client(org.sandbox)
    soql = f"SELECT Id FROM Account WHERE ICP_Tier__c = '{tier}' ORDER BY Id LIMIT 1"
    return str(sf.query(soql)["records"][0]["Id"])


def test_a_red_deal_alerts_once_per_channel_and_a_waiver_resolves_it(watched: Watched) -> None:
    """One alert per channel and the deal's compliance fields in the cycle that sees the deal,
    no alert the next; a waiver records it as waived, in the store and on the deal."""
    red = _account_in_tier(watched.org, "Red")
    deal = watched.deal(red)

    first = watched.org.sync(compliance=True)
    after_first = watched.arrivals()
    held = watched.opportunity(deal)
    second = watched.org.sync(compliance=True)
    after_second = watched.arrivals()

    assert first.compliance is not None
    assert first.compliance["new"] == 1
    assert after_first == (1, 1, 1)
    assert after_second == (1, 1, 1)
    assert second.compliance is not None
    assert second.compliance["new"] == 0
    [hook] = watched.receiver.on("/hook")
    assert hook.json()["opportunity_id"] == deal
    assert hook.json()["rule"] == "red_account"
    assert verify(SECRET, hook.headers["X-ICP-Sync-Signature"], hook.body, now=time.time())
    assert deal in watched.smtp.messages[0].get_payload()
    assert held["ICP_Tier_At_Creation__c"] == "Red"
    assert held["ICP_Compliance__c"] == "Out of ICP"
    assert "Red account" in held["ICP_Compliance_Reason__c"]
    assert watched.violation(deal)["status"] == "out_of_icp"

    watched.org.sandbox.org.update(
        "Opportunity",
        deal,
        {"ICP_Waiver_Reason__c": "Strategic logo", "ICP_Waiver_Approved_By__c": "CRO"},
        user=held["OwnerId"],
    )
    watched.org.sync(compliance=True)

    waived = watched.violation(deal)
    assert waived["status"] == "waived"
    assert waived["resolved_at"] is not None
    assert watched.opportunity(deal)["ICP_Compliance__c"] == "Waived"
    assert watched.arrivals() == (1, 1, 1)


def test_closing_a_deal_resolves_it_and_the_frozen_tier_survives_rescoring(
    watched: Watched,
) -> None:
    """A closed deal's violation is resolved; overriding its account to Green later leaves the
    tier at creation Red."""
    red = _account_in_tier(watched.org, "Red")
    deal = watched.deal(red)
    watched.org.sync(compliance=True)
    sf = salesforce_client(watched.org.sandbox)
    owner = watched.opportunity(deal)["OwnerId"]
    watched.org.sandbox.org.update("Opportunity", deal, {"StageName": "Closed Lost"}, user=owner)
    override(watched.org, [red], "Green")

    watched.org.sync(compliance=True)

    resolved = watched.violation(deal)
    assert (resolved["status"], resolved["resolution"]) == ("resolved", "closed_lost")
    assert resolved["tier_at_creation"] == "Red"
    account = sf.query(f"SELECT ICP_Tier__c FROM Account WHERE Id = '{red}'")["records"][0]
    assert account["ICP_Tier__c"] == "Green"
    assert watched.opportunity(deal)["ICP_Tier_At_Creation__c"] == "Red"
    assert watched.arrivals() == (1, 1, 1)
