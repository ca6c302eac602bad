"""HubSpot emulator search through hubspot-api-client: filters, sorts, pages, the 10k cap."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hubspot import HubSpot
from hubspot.crm.companies import (
    PublicObjectSearchRequest,
)

from icp_sync.sandbox.service import Sandbox
from tests.conftest import SandboxFactory
from tests.crm_clients import hubspot_client
from tests.sandbox.hubspot_support import (
    live_ids,
    read_stats,
    refused_call,
    reset_stats,
    set_limits,
)


def test_search_applies_filters_and_sorts(shared: Sandbox, client: HubSpot) -> None:
    """Filters AND within a group, groups OR, and sorts order the results."""
    records = [shared.portal.records["companies"][i] for i in live_ids(shared, "companies")]
    industry = str(records[0].properties["industry"])
    request = PublicObjectSearchRequest(
        filter_groups=[
            {
                "filters": [
                    {"propertyName": "industry", "operator": "EQ", "value": industry},
                    {"propertyName": "numberofemployees", "operator": "GTE", "value": "50"},
                ]
            }
        ],
        sorts=[{"propertyName": "numberofemployees", "direction": "DESCENDING"}],
        properties=["industry", "numberofemployees"],
        limit=200,
    )
    found = client.crm.companies.search_api.do_search(public_object_search_request=request)
    expected = [
        r
        for r in records
        if r.properties["industry"] == industry
        and float(r.properties["numberofemployees"] or 0) >= 50
    ]
    assert found.total == len(expected) > 0
    assert {r.properties["industry"] for r in found.results} == {industry}
    sizes = [float(r.properties["numberofemployees"]) for r in found.results]
    assert sizes == sorted(sizes, reverse=True)
    assert min(sizes) >= 50

    either = client.crm.companies.search_api.do_search(
        public_object_search_request=PublicObjectSearchRequest(
            filter_groups=[
                {"filters": [{"propertyName": "industry", "operator": "EQ", "value": industry}]},
                {
                    "filters": [
                        {"propertyName": "lifecyclestage", "operator": "EQ", "value": "customer"}
                    ]
                },
            ],
            limit=1,
        )
    )
    assert either.total == sum(
        1
        for r in records
        if r.properties["industry"] == industry or r.properties["lifecyclestage"] == "customer"
    )


@pytest.mark.parametrize(
    "request_body",
    [
        pytest.param(
            {
                "filterGroups": [
                    {"filters": [{"propertyName": "name", "operator": "HAS_PROPERTY"}]}
                ]
                * 6
            },
            id="six-filter-groups",
        ),
        pytest.param({"limit": 201}, id="limit-201"),
    ],
)
def test_search_refuses_too_many_filters_and_pages_over_200(
    client: HubSpot, request_body: dict[str, Any]
) -> None:
    """Six filter groups, or a page limit over 200, are answered 400 VALIDATION_ERROR."""
    request = PublicObjectSearchRequest(
        filter_groups=request_body.get("filterGroups"), limit=request_body.get("limit")
    )
    refused = refused_call(
        lambda: client.crm.companies.search_api.do_search(public_object_search_request=request)
    )
    assert refused.status == 400
    assert refused.body["category"] == "VALIDATION_ERROR"


def test_search_pages_by_200_to_the_last_result(fresh: Sandbox) -> None:
    """Search pages of 200 follow paging.next.after until it is absent: ceil(total/200) calls."""
    set_limits(fresh, search_per_second=100)
    client = hubspot_client(fresh)
    reset_stats(fresh)
    seen: list[str] = []
    after: str | None = None
    total = 0
    while True:
        page = client.crm.deals.search_api.do_search(
            public_object_search_request=PublicObjectSearchRequest(
                sorts=[{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
                limit=200,
                after=after,
            )
        )
        total = page.total
        seen.extend(r.id for r in page.results)
        if page.paging is None:
            break
        after = page.paging.next.after

    assert seen == live_ids(fresh, "deals")
    assert total == len(seen) > 400
    assert read_stats(fresh)["by_endpoint"]["POST objects/deals/search"]["calls"] == math.ceil(
        total / 200
    )


def test_search_stops_at_the_10000_result_cap(sandbox_factory: SandboxFactory) -> None:
    """No search result past the 10,000th is returned; the cursor at 10,000 is answered 400."""
    # 3,300 generated accounts carry just over 10,000 deals: the cheapest way past the cap.
    sandbox = sandbox_factory(accounts=3300)
    client = hubspot_client(sandbox)
    search = client.crm.deals.search_api

    def page(after: str, limit: int = 200) -> Any:
        return search.do_search(
            public_object_search_request=PublicObjectSearchRequest(limit=limit, after=after)
        )

    near = page("9800")
    assert near.total > 10_000
    assert len(near.results) == 200
    assert near.paging.next.after == "10000"
    assert len(page("9900").results) == 100  # a page straddling the cap stops at it
    refused = refused_call(lambda: page("10000", limit=10))
    assert refused.status == 400
    assert refused.body["category"] == "VALIDATION_ERROR"


def test_a_lowered_search_cap_is_enforced_like_the_real_one(fresh: Sandbox) -> None:
    """With the cap set to 200, a query reaches 200 results and a cursor past it is refused."""
    set_limits(fresh, search_cap=200)
    client = hubspot_client(fresh)
    search = client.crm.companies.search_api
    request = {"limit": 200, "properties": ["name"], "filter_groups": [], "sorts": []}

    first = search.do_search(public_object_search_request=PublicObjectSearchRequest(**request))
    assert len(first.results) == 200
    assert first.total > 200
    refused = refused_call(
        lambda: search.do_search(
            public_object_search_request=PublicObjectSearchRequest(**request, after="200")
        )
    )
    assert refused.status == 400
