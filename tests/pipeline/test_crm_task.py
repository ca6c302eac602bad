"""The ``crm_task`` alert channel against a sandbox org: one Task for the deal's owner, on the
deal, per new violation; none the next cycle; none again on a retry after a crash."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hubspot.crm.objects import PublicObjectSearchRequest, SimplePublicObjectInputForCreate
from structlog.testing import capture_logs

from icp_sync.alerts import AlertsConfig, CrmTaskConfig
from icp_sync.config import load_settings
from icp_sync.pipeline import deliver_alerts
from icp_sync.pipeline.alerting import CLAIM
from icp_sync.pipeline.crm_task import task_sinks
from icp_sync.store import Alert, Store
from tests.conftest import SandboxFactory
from tests.connectors.hubspot_portal import make_portal
from tests.connectors.salesforce_org import Org, make_org, override
from tests.crm_clients import hubspot_client, salesforce_client


@pytest.fixture
def org(sandbox_factory: SandboxFactory, tmp_path: Path) -> Iterator[Org]:
    """An org after a first sync with two Red accounts, then the CRM task channel on."""
    org = make_org(sandbox_factory, tmp_path)
    org.setup_fields()
    sf = salesforce_client(org.sandbox)
    ids = [r["Id"] for r in sf.query("SELECT Id FROM Account ORDER BY Id LIMIT 2")["records"]]
    override(org, ids, "Red")
    org.sync(compliance=True)
    config = CrmTaskConfig(enabled=True, subject_prefix="ICP:", due_in_days=2, priority="High")
    org.settings = org.settings.model_copy(update={"alerts": AlertsConfig(crm_task=config)})
    yield org
    org.store.close()


def _red_deal(org: Org) -> tuple[str, str]:
    """A new-business deal on a Red account owned by a seller (not the integration user)."""
    sf = salesforce_client(org.sandbox)
    soql = "SELECT Id FROM Account WHERE ICP_Tier__c = 'Red' ORDER BY Id LIMIT 1"
    red = sf.query(soql)["records"][0]["Id"]
    seller = org.sandbox.org.new_user("Dana Seller", f"dana{time.monotonic_ns()}@sandbox.example")
    created = sf.Opportunity.create(
        {
            "Name": "Red deal",
            "AccountId": red,
            "StageName": "Prospecting",
            "CloseDate": "2027-03-31",
            "Type": "New Business",
            "LeadSource": "Web",
            "OwnerId": seller,
        }
    )
    return str(created["id"]), seller


def _tasks(org: Org, deal: str) -> list[dict[str, Any]]:
    sf = salesforce_client(org.sandbox)
    fields = "Id, OwnerId, WhatId, Subject, Description, Status, Priority, ActivityDate"
    return list(sf.query(f"SELECT {fields} FROM Task WHERE WhatId = '{deal}'")["records"])


def _crash(*_: Any, **__: Any) -> None:
    raise KeyboardInterrupt("killed between the create and the record")


def test_a_red_deal_gets_one_task_for_its_owner_and_the_next_cycle_none(org: Org) -> None:
    """The cycle that sees a Red deal opens one Task owned by the deal's owner on the deal;
    the next cycle opens none."""
    deal, seller = _red_deal(org)

    first = org.sync(compliance=True)
    after_first = _tasks(org, deal)
    second = org.sync(compliance=True)

    assert first.compliance is not None
    assert first.compliance["alerts"]["delivered"] == {"crm_task": 1}
    [task] = after_first
    assert task["OwnerId"] == seller
    assert task["WhatId"] == deal
    assert task["Status"] == "Not Started"
    assert task["Priority"] == "High"
    assert task["Subject"].startswith("ICP: out-of-ICP deal Red deal [violation:")
    assert "Red account" in task["Description"]
    [violation] = [v for v in org.store.violations.all() if v.opportunity_id == deal]
    due = (violation.first_seen_at + timedelta(days=2)).date().isoformat()
    assert task["ActivityDate"] == due
    assert second.compliance is not None
    assert second.compliance["new"] == 0
    assert len(_tasks(org, deal)) == 1


def test_a_retry_after_a_crash_between_create_and_record_creates_no_second_task(
    org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Task is created, the process dies before the outbox records it; the retry after
    the claim expires finds the first Task and records the alert delivered."""
    deal, _ = _red_deal(org)
    store: Store = org.store

    with monkeypatch.context() as patched:
        patched.setattr(store.outbox, "delivered", _crash)
        with pytest.raises(KeyboardInterrupt):
            org.sync(compliance=True)
    assert len(_tasks(org, deal)) == 1
    assert store.outbox.pending() == 1

    later = datetime.now(UTC) + CLAIM + timedelta(seconds=1)
    with task_sinks(org.settings, store, org.connector()) as sinks:
        retried = deliver_alerts(org.settings, store, later, sinks=sinks)

    assert retried.delivered == {"crm_task": 1}
    assert retried.pending == 0
    assert len(_tasks(org, deal)) == 1


def test_a_connector_that_cannot_create_tasks_leaves_the_channel_unavailable(
    example: Path, store: Store
) -> None:
    """With the files connector the channel is logged as unavailable, not fatal; its alerts
    stay pending in the outbox instead of being dropped."""
    settings = load_settings(example / "icp-sync.toml")
    settings = settings.model_copy(
        update={"alerts": AlertsConfig(crm_task=CrmTaskConfig(enabled=True))}
    )
    payload = {"event": "icp.violation", "opportunity_id": "o1", "first_seen_at": "2026-11-02"}
    key = "violation:o1:red_account:crm_task"
    store.outbox.add(
        [Alert(delivery_key=key, channel="crm_task", kind="violation", payload=payload)],
        now=datetime.now(UTC),
    )

    with capture_logs() as logs, task_sinks(settings, store) as sinks:
        result = deliver_alerts(settings, store, datetime.now(UTC), sinks=sinks)

    assert "crm_task" not in sinks
    assert [e["connector"] for e in logs if e["event"] == "crm_task_unavailable"] == ["files"]
    assert result.delivered == {}
    assert result.pending == 1


def test_hubspot_a_red_deal_gets_one_task_for_its_owner_even_after_a_crash(
    sandbox_factory: SandboxFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HubSpot: the cycle that sees a Red deal creates one task owned by the deal's owner and
    associated with the deal, though the process dies before the outbox records it; the retry
    and the next cycle create none."""
    portal = make_portal(sandbox_factory, tmp_path, accounts=300)
    portal.setup_fields()
    red = sorted(portal.icp_values(), key=int)[0]
    portal.touch([red], icp_tier_override="Red")
    portal.sync(compliance=True)
    portal.settings = portal.settings.model_copy(
        update={"alerts": AlertsConfig(crm_task=CrmTaskConfig(enabled=True))}
    )
    client = hubspot_client(portal.sandbox)
    deal = client.crm.deals.basic_api.create(
        SimplePublicObjectInputForCreate(
            properties={
                "dealname": "Red deal",
                "dealstage": "appointmentscheduled",
                "pipeline": "default",
                "dealtype": "newbusiness",
                "closedate": "2027-03-31T00:00:00Z",
                "hubspot_owner_id": "9001",
            },
            associations=[
                {
                    "to": {"id": red},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 5}],
                }
            ],
        )
    ).id

    def tasks() -> list[dict[str, Any]]:
        request = PublicObjectSearchRequest(
            filter_groups=[],
            properties=["hs_task_subject", "hubspot_owner_id", "hs_task_status", "hs_timestamp"],
            limit=100,
        )
        found = client.crm.objects.search_api.do_search("tasks", request).results
        return [{"id": t.id, **t.properties} for t in found]

    with monkeypatch.context() as patched:
        patched.setattr(portal.store.outbox, "delivered", _crash)
        with pytest.raises(KeyboardInterrupt):
            portal.sync(compliance=True)
    after_crash = tasks()
    later = datetime.now(UTC) + CLAIM + timedelta(seconds=1)
    connector = portal.connector()
    with task_sinks(portal.settings, portal.store, connector) as sinks:
        retried = deliver_alerts(portal.settings, portal.store, later, sinks=sinks)
    connector.close()
    portal.sync(compliance=True)

    [task] = after_crash
    assert task["hubspot_owner_id"] == "9001"
    assert task["hs_task_status"] == "NOT_STARTED"
    assert task["hs_task_subject"].startswith("ICP review: out-of-ICP deal Red deal [violation:")
    assert portal.sandbox.portal.task_deals[task["id"]] == {deal}
    assert retried.delivered == {"crm_task": 1}
    assert tasks() == after_crash
    portal.store.close()
