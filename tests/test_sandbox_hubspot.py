"""The HubSpot emulator, driven only through the real hubspot-api-client (strict validation on).

With ``client_side_validation=True`` the SDK rejects responses that miss required fields, so
every call here also checks the emulator's response shapes against HubSpot's own models.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import requests
from hubspot.crm.associations.v4 import BatchInputPublicFetchAssociationsBatchRequest
from hubspot.crm.companies import (
    BatchInputSimplePublicObjectBatchInput,
    BatchReadInputSimplePublicObjectId,
    PublicObjectSearchRequest,
    SimplePublicObjectInputForCreate,
)
from hubspot.crm.companies.exceptions import ApiException
from hubspot.crm.deals.exceptions import ApiException as DealsApiException
from hubspot.crm.properties import PropertyCreate

from icp_sync.sandbox.faults import FaultProfile
from icp_sync.sandbox.service import Sandbox
from tests.conftest import SandboxFactory
from tests.crm_clients import hubspot_client


def _stats(sandbox: Sandbox) -> dict[str, Any]:
    response = requests.get(f"{sandbox.hubspot.url}/__sandbox/stats", timeout=10)
    response.raise_for_status()
    stats: dict[str, Any] = response.json()
    return stats


def _reset(sandbox: Sandbox) -> None:
    requests.post(f"{sandbox.hubspot.url}/__sandbox/reset-stats", timeout=10).raise_for_status()


def test_get_all_pages_by_100_with_after(sandbox: Sandbox) -> None:
    """get_all reads every company in pages of 100 following paging.next.after."""
    client = hubspot_client(sandbox)
    total = client.crm.companies.search_api.do_search(
        public_object_search_request=PublicObjectSearchRequest(limit=1)
    ).total
    _reset(sandbox)
    companies = client.crm.companies.get_all(properties=["name", "industry"])

    assert len(companies) == total
    assert len({c.id for c in companies}) == total
    assert all(c.properties["name"] for c in companies)
    assert _stats(sandbox)["calls"] == math.ceil(total / 100)


def test_object_type_ids_are_aliases(sandbox: Sandbox) -> None:
    """0-2 and 0-3 reach the same companies and deals as their names."""
    client = hubspot_client(sandbox)
    by_name = client.crm.objects.basic_api.get_page("companies", limit=5)
    by_id = client.crm.objects.basic_api.get_page("0-2", limit=5)
    deals = client.crm.objects.basic_api.get_page("0-3", limit=5, properties=["dealstage"])

    assert [r.id for r in by_name.results] == [r.id for r in by_id.results]
    assert all(d.properties["dealstage"] for d in deals.results)


def test_batch_read_update_and_partial_failure(sandbox: Sandbox) -> None:
    """Batch update answers 200 when all succeed and 207 with errors when some fail."""
    client = hubspot_client(sandbox)
    ids = [c.id for c in client.crm.companies.basic_api.get_page(limit=3).results]
    read = client.crm.companies.batch_api.read(
        BatchReadInputSimplePublicObjectId(
            inputs=[{"id": i} for i in ids], properties=["name", "numberofemployees"]
        )
    )
    assert {r.id for r in read.results} == set(ids)

    done = client.crm.companies.batch_api.update(
        BatchInputSimplePublicObjectBatchInput(
            inputs=[{"id": i, "properties": {"numberofemployees": "12"}} for i in ids]
        )
    )
    assert done.status == "COMPLETE"
    assert (
        client.crm.companies.basic_api.get_by_id(
            ids[0], properties=["numberofemployees"]
        ).properties["numberofemployees"]
        == "12"
    )

    partial = client.crm.companies.batch_api.update(
        BatchInputSimplePublicObjectBatchInput(
            inputs=[
                {"id": ids[0], "properties": {"numberofemployees": "13"}},
                {"id": "999999999999", "properties": {"numberofemployees": "1"}},
            ]
        )
    )
    assert len(partial.results) == 1
    assert partial.num_errors == 1


def test_batches_over_100_inputs_are_refused(sandbox: Sandbox) -> None:
    """A batch of 101 inputs is answered 400 VALIDATION_ERROR."""
    client = hubspot_client(sandbox)
    inputs = [{"id": str(i), "properties": {"name": "x"}} for i in range(101)]
    with pytest.raises(ApiException) as refused:
        client.crm.companies.batch_api.update(BatchInputSimplePublicObjectBatchInput(inputs=inputs))
    assert refused.value.status == 400
    assert "VALIDATION_ERROR" in str(refused.value.body)


def test_search_filters_sorts_and_pages(sandbox: Sandbox) -> None:
    """Search applies filters and sorts and pages by 200 with paging.next.after."""
    client = hubspot_client(sandbox)
    request = PublicObjectSearchRequest(
        filter_groups=[
            {"filters": [{"propertyName": "industry", "operator": "EQ", "value": "Healthcare"}]}
        ],
        sorts=[{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
        properties=["industry"],
        limit=200,
    )
    first = client.crm.companies.search_api.do_search(public_object_search_request=request)
    assert first.total > 0
    assert {r.properties["industry"] for r in first.results} == {"Healthcare"}
    ids = [int(r.id) for r in first.results]
    assert ids == sorted(ids)

    with pytest.raises(ApiException) as too_big:
        client.crm.companies.search_api.do_search(
            public_object_search_request=PublicObjectSearchRequest(limit=201)
        )
    assert too_big.value.status == 400


def test_search_stops_at_the_10000_result_cap(sandbox: Sandbox) -> None:
    """Paging search beyond 10,000 results is answered 400, as HubSpot does."""
    client = hubspot_client(sandbox)
    with pytest.raises(DealsApiException) as capped:
        client.crm.deals.search_api.do_search(
            public_object_search_request=PublicObjectSearchRequest(limit=200, after="10000")
        )
    assert capped.value.status == 400


def test_properties_groups_and_a_new_property(sandbox: Sandbox) -> None:
    """A created property can be written and read; an unknown one is refused."""
    client = hubspot_client(sandbox)
    names = {p.name for p in client.crm.properties.core_api.get_all("companies").results}
    assert {"name", "industry", "numberofemployees", "hs_lastmodifieddate"} <= names
    groups = {g.name for g in client.crm.properties.groups_api.get_all("companies").results}
    assert "companyinformation" in groups

    client.crm.properties.core_api.create(
        "companies",
        PropertyCreate(
            name="icp_tier",
            label="ICP Tier",
            type="enumeration",
            field_type="select",
            group_name="companyinformation",
            options=[
                {"label": t, "value": t, "displayOrder": i, "hidden": False}
                for i, t in enumerate(("Green", "Yellow", "Red"))
            ],
        ),
    )
    company = client.crm.companies.basic_api.create(
        SimplePublicObjectInputForCreate(properties={"name": "New Co", "icp_tier": "Green"})
    )
    got = client.crm.companies.basic_api.get_by_id(company.id, properties=["icp_tier"])
    assert got.properties["icp_tier"] == "Green"
    with pytest.raises(ApiException) as unknown:
        client.crm.companies.basic_api.create(
            SimplePublicObjectInputForCreate(properties={"no_such_property": "x"})
        )
    assert unknown.value.status == 400


def test_deal_company_associations(sandbox: Sandbox) -> None:
    """v4 associations list a deal's company, singly and in batch."""
    client = hubspot_client(sandbox)
    deals = client.crm.deals.basic_api.get_page(limit=3).results
    single = client.crm.associations.v4.basic_api.get_page("deals", deals[0].id, "companies")
    assert len(single.results) == 1
    batch = client.crm.associations.v4.batch_api.get_page(
        "deals",
        "companies",
        BatchInputPublicFetchAssociationsBatchRequest(inputs=[{"id": d.id} for d in deals]),
    )
    assert {r._from.id for r in batch.results} == {d.id for d in deals}


def test_pipelines_and_owners(sandbox: Sandbox) -> None:
    """Deal pipelines carry stages with won/closed metadata; owners are listed."""
    client = hubspot_client(sandbox)
    pipelines = client.crm.pipelines.pipelines_api.get_all("deals").results
    stages = {s.id: s.metadata for p in pipelines for s in p.stages}
    assert "closedwon" in stages
    assert stages["closedwon"]["isClosed"] in ("true", True)
    owners = client.crm.owners.owners_api.get_page(limit=100).results
    assert owners
    assert all(o.email for o in owners)


def test_rate_limit_headers_and_429_bodies(sandbox: Sandbox) -> None:
    """Answers carry X-HubSpot-RateLimit-* headers; going over answers 429 TEN_SECONDLY_ROLLING."""
    requests.post(
        f"{sandbox.hubspot.url}/__sandbox/limits",
        json={"ten_secondly": 3, "window_ms": 60_000},
        timeout=10,
    ).raise_for_status()
    token = sandbox.info()["hubspot"]["access_token"]
    url = f"{sandbox.hubspot.url}/crm/v3/objects/companies?limit=1"
    headers = {"Authorization": f"Bearer {token}"}
    answers = [requests.get(url, headers=headers, timeout=10) for _ in range(4)]

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[0].headers["X-HubSpot-RateLimit-Max"] == "3"
    assert answers[0].headers["X-HubSpot-RateLimit-Remaining"] == "2"
    body = answers[3].json()
    assert body["errorType"] == "RATE_LIMIT"
    assert body["policyName"] == "TEN_SECONDLY_ROLLING"


def test_faults_answer_as_documented(sandbox_factory: SandboxFactory) -> None:
    """Injected server errors answer 5xx; a rate-limit fault answers 429; faults are seeded."""
    sandbox = sandbox_factory(accounts=100, faults=FaultProfile(server_error=1.0))
    client = hubspot_client(sandbox)
    with pytest.raises(ApiException) as failed:
        client.crm.companies.basic_api.get_page(limit=1)
    assert failed.value.status in (502, 503)

    sandbox.hubspot_faults.set_profile(FaultProfile(rate_limit=1.0))
    with pytest.raises(ApiException) as limited:
        client.crm.companies.basic_api.get_page(limit=1)
    assert limited.value.status == 429


def test_oauth_tokens_expire_and_the_refresh_grant_renews_them(
    sandbox_factory: SandboxFactory,
) -> None:
    """An OAuth access token answers 401 once expired; the refresh grant issues a new one."""
    import json

    sandbox = sandbox_factory(accounts=100, faults=FaultProfile(session_expiry_after=2))
    creds = json.loads((sandbox.directory / "credentials.json").read_text("utf-8"))["hubspot"]

    def refresh() -> str:
        token = hubspot_client(sandbox).oauth.tokens_api.create(
            grant_type="refresh_token",
            client_id=creds["client_id"],
            client_secret=creds["client_secret"],
            refresh_token=creds["refresh_token"],
        )
        assert token.expires_in > 0
        return str(token.access_token)

    client = hubspot_client(sandbox, access_token=refresh())
    client.crm.companies.basic_api.get_page(limit=1)
    client.crm.companies.basic_api.get_page(limit=1)
    with pytest.raises(ApiException) as expired:
        client.crm.companies.basic_api.get_page(limit=1)
    assert expired.value.status == 401
    assert "EXPIRED_AUTHENTICATION" in str(expired.value.body)
    fresh = hubspot_client(sandbox, access_token=refresh())
    assert fresh.crm.companies.basic_api.get_page(limit=1).results


def test_stats_count_calls_and_records(sandbox: Sandbox) -> None:
    """/__sandbox/stats counts calls and records read per endpoint; reset zeroes them."""
    client = hubspot_client(sandbox)
    _reset(sandbox)
    client.crm.companies.basic_api.get_page(limit=7)
    stats = _stats(sandbox)
    assert stats["calls"] == 1
    assert stats["records_read"] == 7
    _reset(sandbox)
    assert _stats(sandbox)["calls"] == 0


def test_a_persisted_portal_keeps_its_writes(
    sandbox_factory: SandboxFactory, tmp_path: Any
) -> None:
    """With persist, a value written before a stop is there after the restart."""
    first = sandbox_factory(accounts=100, persist=True, directory=tmp_path / "portal")
    client = hubspot_client(first)
    company = client.crm.companies.basic_api.get_page(limit=1).results[0].id
    client.crm.companies.basic_api.update(company, {"properties": {"numberofemployees": "4321"}})
    first.stop()

    second = sandbox_factory(accounts=100, persist=True, directory=tmp_path / "portal")
    got = hubspot_client(second).crm.companies.basic_api.get_by_id(
        company, properties=["numberofemployees"]
    )
    assert got.properties["numberofemployees"] == "4321"
