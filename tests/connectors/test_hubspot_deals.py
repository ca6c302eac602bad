"""HubSpot deals and the compliance monitor against the sandbox portal: setup-fields creates
the deal properties, the monitor writes them 100 deals a call, waivers are read back.

CRM state is read through hubspot-api-client; calls are counted by the sandbox.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import pytest
from hubspot.crm.objects import SimplePublicObjectInput, SimplePublicObjectInputForCreate

from icp_sync.errors import FatalConnectorError
from icp_sync.model import OWNED_FIELDS, CrmObject
from icp_sync.writeback import FieldChange, Plan
from tests.conftest import SandboxFactory
from tests.connectors.hubspot_portal import Portal, calls, make_portal
from tests.crm_clients import hubspot_client

DEAL_UPDATE = "POST objects/deals/batch/update"
DEAL_PROPERTIES = ("icp_tier_at_creation", "icp_compliance", "icp_compliance_reason")
WAIVER_PROPERTIES = ("icp_waiver_reason", "icp_waiver_approved_by")
DEAL_TO_COMPANY = 5


@pytest.fixture
def portal(sandbox_factory: SandboxFactory, tmp_path: Path) -> Portal:
    """A 1,000-company portal with the ICP properties, two companies Red by a human override."""
    portal = make_portal(sandbox_factory, tmp_path, accounts=1000)
    portal.setup_fields()
    companies = sorted(portal.icp_values(), key=int)[:2]
    portal.touch(companies, icp_tier_override="Red")
    return portal


def _red_company(portal: Portal) -> str:
    return sorted(r for r, v in portal.icp_values().items() if v["icp_tier"] == "Red")[0]


def _create_deal(portal: Portal, company_id: str) -> str:
    """An open new-business deal on ``company_id``, created as a HubSpot user would."""
    client = hubspot_client(portal.sandbox)
    created = client.crm.deals.basic_api.create(
        SimplePublicObjectInputForCreate(
            properties={
                "dealname": f"Deal {time.monotonic_ns()}",
                "dealstage": "appointmentscheduled",
                "pipeline": "default",
                "dealtype": "newbusiness",
                "deal_source": "Outbound",
                "amount": "25000",
                "closedate": "2027-03-31T00:00:00Z",
            },
            associations=[
                {
                    "to": {"id": company_id},
                    "types": [
                        {
                            "associationCategory": "HUBSPOT_DEFINED",
                            "associationTypeId": DEAL_TO_COMPANY,
                        }
                    ],
                }
            ],
        )
    )
    return str(created.id)


def _deal(portal: Portal, deal_id: str) -> dict[str, Any]:
    """The deal's ICP properties as the portal holds them."""
    client = hubspot_client(portal.sandbox)
    found = client.crm.deals.basic_api.get_by_id(
        deal_id, properties=[*DEAL_PROPERTIES, *WAIVER_PROPERTIES]
    )
    return dict(found.properties)


def test_setup_fields_creates_the_deal_properties_once(portal: Portal) -> None:
    """The compliance and waiver properties exist on deals in the icp_sync group; a second
    setup-fields creates nothing and the monitor's fields are writable."""
    client = hubspot_client(portal.sandbox)
    held = {p.name: p.group_name for p in client.crm.properties.core_api.get_all("deals").results}
    wanted = [f.hubspot for f in OWNED_FIELDS if f.crm_object is CrmObject.OPPORTUNITY]
    groups = {g.name for g in client.crm.properties.groups_api.get_all("deals").results}

    connector = portal.connector()
    again = connector.ensure_fields(dry_run=False)
    writable = connector.writable_fields()
    connector.close()

    assert {name: held.get(name) for name in wanted} == dict.fromkeys(wanted, "icp_sync")
    assert "icp_sync" in groups
    assert again.created == []
    assert {f"deals.{n}" for n in wanted} <= set(again.existing)
    assert {k: writable[k] for k in ("tier_at_creation", "compliance", "compliance_reason")} == {
        "tier_at_creation": "icp_tier_at_creation",
        "compliance": "icp_compliance",
        "compliance_reason": "icp_compliance_reason",
    }
    assert not set(WAIVER_PROPERTIES) & set(writable.values())


def test_a_red_deal_is_flagged_in_one_cycle_then_left_alone_and_a_waiver_waives_it(
    portal: Portal,
) -> None:
    """k open deals cost ceil(k/100) deal updates; a new-business deal on a Red company gets
    Out of ICP with its reason and tier in the cycle that sees it, the next cycle writes no
    deal, and the waiver properties make it Waived."""
    portal.reset_stats()
    first = portal.sync(compliance=True)
    assert first.compliance is not None
    k = first.compliance["writes"]["records_written"]
    assert k > 100
    assert calls(portal.stats(), DEAL_UPDATE) == math.ceil(k / 100)
    assert portal.stats()["by_endpoint"][DEAL_UPDATE]["records_written"] == k

    deal = _create_deal(portal, _red_company(portal))
    portal.reset_stats()
    flagged = portal.sync(compliance=True)
    held = _deal(portal, deal)
    flagged_calls = calls(portal.stats(), DEAL_UPDATE)
    portal.reset_stats()
    quiet = portal.sync(compliance=True)

    assert flagged.compliance is not None
    assert flagged.compliance["new"] == 1
    assert flagged.compliance["writes"]["records_written"] == 1
    assert flagged_calls == 1
    assert held["icp_tier_at_creation"] == "Red"
    assert held["icp_compliance"] == "Out of ICP"
    assert "Red account" in held["icp_compliance_reason"]
    assert quiet.compliance is not None
    assert quiet.compliance["writes"]["records_written"] == 0
    assert calls(portal.stats(), DEAL_UPDATE) == 0

    client = hubspot_client(portal.sandbox)
    client.crm.deals.basic_api.update(
        deal,
        SimplePublicObjectInput(
            properties={"icp_waiver_reason": "Strategic logo", "icp_waiver_approved_by": "CRO"}
        ),
    )
    waived = portal.sync(compliance=True)

    assert waived.compliance is not None
    assert waived.compliance["waived"] == 1
    assert _deal(portal, deal)["icp_compliance"] == "Waived"
    [violation] = [v for v in portal.store.violations.all() if v.opportunity_id == deal]
    assert violation.status == "waived"


def test_a_deal_write_outside_the_allow_list_is_refused(portal: Portal) -> None:
    """A plan setting a deal property icp-sync does not write (the waiver) is refused before
    any call, and so is one mixing companies and deals."""
    connector = portal.connector()
    deal_id = str(
        hubspot_client(portal.sandbox).crm.deals.basic_api.get_page(limit=1).results[0].id
    )
    company = sorted(portal.icp_values(), key=int)[0]
    waiver = FieldChange(
        crm_object=CrmObject.OPPORTUNITY,
        record_id=deal_id,
        field="waiver_reason",
        old=None,
        new="self-approved",
    )
    compliance = FieldChange(
        crm_object=CrmObject.OPPORTUNITY,
        record_id=deal_id,
        field="compliance",
        old=None,
        new="Compliant",
    )
    tier = FieldChange(
        crm_object=CrmObject.ACCOUNT, record_id=company, field="tier", old=None, new="Red"
    )
    portal.reset_stats()

    with pytest.raises(FatalConnectorError, match="waiver_reason"):
        list(connector.apply(Plan(changes=(waiver,))))
    with pytest.raises(FatalConnectorError, match="companies or deals"):
        list(connector.apply(Plan(changes=(tier, compliance))))
    connector.close()

    assert calls(portal.stats(), DEAL_UPDATE) == 0
    assert _deal(portal, deal_id)["icp_waiver_reason"] is None
