"""The HubSpot emulator, driven only through the real hubspot-api-client (strict validation on).

With ``client_side_validation=True`` the SDK rejects answers that miss required fields, so
every call here also checks the emulator's response shapes against HubSpot's own models.
Plain ``requests`` only reaches the sandbox's control endpoints (``/__sandbox/...``).
Read-only tests share one small portal; tests that write, count or change limits and
faults get a fresh one.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from hubspot import HubSpot
from hubspot.crm.associations.v4 import (
    BatchInputPublicAssociationMultiArchive,
    BatchInputPublicAssociationMultiPost,
    BatchInputPublicDefaultAssociationMultiPost,
    BatchInputPublicFetchAssociationsBatchRequest,
)
from hubspot.crm.associations.v4.exceptions import ApiException as AssociationsError
from hubspot.crm.companies import (
    BatchInputSimplePublicObjectBatchInput,
    BatchInputSimplePublicObjectBatchInputForCreate,
    BatchInputSimplePublicObjectBatchInputUpsert,
    BatchInputSimplePublicObjectId,
    BatchReadInputSimplePublicObjectId,
    PublicObjectSearchRequest,
    SimplePublicObjectInput,
    SimplePublicObjectInputForCreate,
)
from hubspot.crm.companies.exceptions import ApiException as CompaniesError
from hubspot.crm.deals import BatchInputSimplePublicObjectBatchInput as DealUpdates
from hubspot.crm.deals.exceptions import ApiException as DealsError
from hubspot.crm.objects.exceptions import ApiException as ObjectsError
from hubspot.crm.owners.exceptions import ApiException as OwnersError
from hubspot.crm.pipelines.exceptions import ApiException as PipelinesError
from hubspot.crm.properties import PropertyCreate, PropertyGroupCreate
from hubspot.crm.properties.exceptions import ApiException as PropertiesError
from hubspot.oauth.exceptions import ApiException as OAuthError

from icp_sync.sandbox.faults import FaultProfile
from icp_sync.sandbox.service import Sandbox, SandboxSettings
from tests.conftest import SandboxFactory
from tests.crm_clients import hubspot_client

API_ERRORS = (
    AssociationsError,
    CompaniesError,
    DealsError,
    ObjectsError,
    OwnersError,
    PipelinesError,
    PropertiesError,
    OAuthError,
)
SMALL = 300


@dataclass(frozen=True, slots=True)
class Refusal:
    """What an SDK call that failed brought back."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str]


def _refusal(call: Callable[[], object]) -> Refusal:
    with pytest.raises(API_ERRORS) as raised:
        call()
    error = raised.value
    headers = {k.lower(): v for k, v in (error.headers or {}).items()}
    try:
        body = json.loads(error.body)
    except (TypeError, ValueError):
        body = {"raw": error.body}
    return Refusal(error.status, body, headers)


def _control(sandbox: Sandbox, method: str, path: str, **kwargs: Any) -> Any:
    response = requests.request(method, f"{sandbox.hubspot.url}{path}", timeout=10, **kwargs)
    response.raise_for_status()
    return response.json()


def _stats(sandbox: Sandbox) -> dict[str, Any]:
    stats: dict[str, Any] = _control(sandbox, "GET", "/__sandbox/stats")
    return stats


def _reset(sandbox: Sandbox) -> None:
    _control(sandbox, "POST", "/__sandbox/reset-stats")


def _limits(sandbox: Sandbox, **limits: int) -> None:
    _control(sandbox, "POST", "/__sandbox/limits", json=limits)


def _live(sandbox: Sandbox, kind: str) -> list[str]:
    """Ids of the portal's live (not archived) records of one kind, in id order."""
    records = sandbox.portal.records[kind].values()
    return sorted((r.id for r in records if not r.archived), key=int)


def _headers(raw: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in dict(raw).items()}


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """One small portal for tests that only read (rate limits lifted: they share it)."""
    sandbox = Sandbox(
        SandboxSettings(directory=tmp_path_factory.mktemp("hubspot-shared"), accounts=SMALL)
    ).start()
    _limits(sandbox, ten_secondly=100_000, search_per_second=100_000)
    yield sandbox
    sandbox.stop()


@pytest.fixture
def fresh(sandbox_factory: SandboxFactory) -> Sandbox:
    """A small portal of this test's own."""
    return sandbox_factory(accounts=SMALL)


@pytest.fixture
def client(shared: Sandbox) -> HubSpot:
    """The SDK on the shared portal."""
    return hubspot_client(shared)


def test_get_page_follows_after_and_caps_the_limit_at_100(client: HubSpot) -> None:
    """A list page holds at most 100 records; paging.next.after leads to the next page."""
    first = client.crm.companies.basic_api.get_page(limit=500, properties=["name"])
    assert len(first.results) == 100
    second = client.crm.companies.basic_api.get_page(limit=100, after=first.paging.next.after)
    assert len(second.results) == 100
    first_ids = [int(r.id) for r in first.results]
    assert max(first_ids) < min(int(r.id) for r in second.results)
    assert first.paging.next.link
    assert all(r.properties["name"] for r in first.results)

    deals = client.crm.deals.basic_api.get_page(limit=3, properties=["dealname", "amount"])
    assert len(deals.results) == 3
    assert {"dealname", "amount", "hs_object_id"} <= set(deals.results[0].properties)


@pytest.mark.parametrize("kind", ["companies", "deals"])
def test_get_all_reads_every_record_in_ceil_n_over_100_calls(fresh: Sandbox, kind: str) -> None:
    """get_all returns each live record once, in ceil(N/100) list calls, the last without paging."""
    client = hubspot_client(fresh)
    api = client.crm.companies if kind == "companies" else client.crm.deals
    live = _live(fresh, kind)
    _reset(fresh)
    records = api.get_all()

    assert sorted((r.id for r in records), key=int) == live
    stats = _stats(fresh)
    assert stats["calls"] == math.ceil(len(live) / 100)
    assert stats["by_endpoint"][f"GET objects/{kind}"]["records_read"] == len(live)
    last = api.basic_api.get_page(limit=100, after=records[-101].id)
    assert last.paging is None


def test_get_by_id_returns_the_asked_properties_and_associations(client: HubSpot) -> None:
    """get_by_id returns the named properties (plus the id and dates) and associated deals."""
    deals = client.crm.deals.basic_api.get_page(limit=1).results
    company = client.crm.associations.v4.basic_api.get_page("deals", deals[0].id, "companies")
    company_id = str(company.results[0].to_object_id)
    got = client.crm.companies.basic_api.get_by_id(
        company_id, properties=["name", "industry"], associations=["deals"]
    )

    assert got.id == company_id
    assert set(got.properties) == {
        "name",
        "industry",
        "hs_object_id",
        "createdate",
        "hs_lastmodifieddate",
    }
    assert got.properties["hs_object_id"] == company_id
    assert got.archived is False
    assert got.created_at <= got.updated_at
    assert deals[0].id in {a.id for a in got.associations["deals"].results}

    missing = _refusal(lambda: client.crm.companies.basic_api.get_by_id("999999999"))
    assert missing.status == 404
    assert missing.body["category"] == "OBJECT_NOT_FOUND"


def test_object_type_ids_reach_companies_and_deals(client: HubSpot) -> None:
    """0-2 and 0-3 in crm.objects paths are the same companies and deals as their names."""
    objects = client.crm.objects
    by_name = objects.basic_api.get_page("companies", limit=5)
    by_id = objects.basic_api.get_page("0-2", limit=5)
    assert [r.id for r in by_id.results] == [r.id for r in by_name.results]

    deal = client.crm.deals.basic_api.get_page(limit=1, properties=["dealstage"]).results[0]
    same = objects.basic_api.get_by_id("0-3", deal.id, properties=["dealstage"])
    assert same.properties["dealstage"] == deal.properties["dealstage"]

    request = PublicObjectSearchRequest(limit=1)
    assert (
        objects.search_api.do_search("0-3", request).total
        == client.crm.deals.search_api.do_search(public_object_search_request=request).total
    )


def test_archived_records_answer_only_when_asked(fresh: Sandbox) -> None:
    """An archived company is gone from reads and lists, but found with archived=true."""
    client = hubspot_client(fresh)
    company = client.crm.companies.basic_api.get_page(limit=1).results[0].id
    client.crm.companies.basic_api.archive(company)

    assert _refusal(lambda: client.crm.companies.basic_api.get_by_id(company)).status == 404
    archived = client.crm.companies.basic_api.get_by_id(company, archived=True)
    assert archived.archived is True
    assert archived.archived_at is not None
    listed = client.crm.companies.get_all(archived=True)
    assert company in {r.id for r in listed}
    assert company not in _live(fresh, "companies")


def test_batch_read_answers_200_or_207_for_missing_ids(client: HubSpot) -> None:
    """Batch read answers 200 COMPLETE, or 207 with an OBJECT_NOT_FOUND error naming the ids."""
    ids = [c.id for c in client.crm.companies.basic_api.get_page(limit=3).results]
    batch = client.crm.companies.batch_api
    read, status, _ = batch.read_with_http_info(
        BatchReadInputSimplePublicObjectId(inputs=[{"id": i} for i in ids], properties=["name"])
    )
    assert status == 200
    assert read.status == "COMPLETE"
    assert {r.id for r in read.results} == set(ids)
    assert read.started_at <= read.completed_at

    partial, status, _ = batch.read_with_http_info(
        BatchReadInputSimplePublicObjectId(
            inputs=[{"id": i} for i in [*ids, "999999999"]], properties=["name"]
        )
    )
    assert status == 207
    assert len(partial.results) == 3
    assert partial.num_errors == 1
    assert partial.errors[0].category == "OBJECT_NOT_FOUND"
    assert partial.errors[0].context["ids"] == ["999999999"]


def test_batch_read_with_property_history_takes_at_most_50_inputs(client: HubSpot) -> None:
    """propertiesWithHistory returns value histories, and more than 50 inputs are refused."""
    ids = [c.id for c in client.crm.companies.basic_api.get_page(limit=60).results]
    batch = client.crm.companies.batch_api
    read = batch.read(
        BatchReadInputSimplePublicObjectId(
            inputs=[{"id": i} for i in ids[:2]],
            properties=["name"],
            properties_with_history=["name"],
        )
    )
    history = read.results[0].properties_with_history["name"]
    assert history[0].value == read.results[0].properties["name"]

    refused = _refusal(
        lambda: batch.read(
            BatchReadInputSimplePublicObjectId(
                inputs=[{"id": i} for i in ids[:51]], properties_with_history=["name"]
            )
        )
    )
    assert refused.status == 400
    assert refused.body["category"] == "VALIDATION_ERROR"
    assert "property histories is 50" in refused.body["message"]


def test_batch_create_answers_201_and_writes_every_input(fresh: Sandbox) -> None:
    """Batch create answers 201 with one record per input, each readable afterwards."""
    client = hubspot_client(fresh)
    before = len(_live(fresh, "companies"))
    created, status, _ = client.crm.companies.batch_api.create_with_http_info(
        BatchInputSimplePublicObjectBatchInputForCreate(
            inputs=[
                {"properties": {"name": f"New {i}", "numberofemployees": "5"}} for i in range(3)
            ]
        )
    )

    assert status == 201
    assert created.status == "COMPLETE"
    assert {r.properties["name"] for r in created.results} == {"New 0", "New 1", "New 2"}
    assert len(_live(fresh, "companies")) == before + 3
    got = client.crm.companies.basic_api.get_by_id(
        created.results[0].id, properties=["numberofemployees"]
    )
    assert got.properties["numberofemployees"] == "5"


def test_one_bad_input_refuses_a_batch_write_without_trace_ids(fresh: Sandbox) -> None:
    """Without objectWriteTraceId one bad input fails the whole batch and nothing is written."""
    client = hubspot_client(fresh)
    batch = client.crm.companies.batch_api
    ids = [c.id for c in client.crm.companies.basic_api.get_page(limit=2).results]
    before = len(_live(fresh, "companies"))
    create = _refusal(
        lambda: batch.create(
            BatchInputSimplePublicObjectBatchInputForCreate(
                inputs=[
                    {"properties": {"name": "Good"}},
                    {"properties": {"name": "x", "nope": "1"}},
                ]
            )
        )
    )
    assert create.status == 400
    assert create.body["category"] == "VALIDATION_ERROR"
    assert len(_live(fresh, "companies")) == before

    update = _refusal(
        lambda: batch.update(
            BatchInputSimplePublicObjectBatchInput(
                inputs=[
                    {"id": ids[0], "properties": {"numberofemployees": "77"}},
                    {"id": ids[1], "properties": {"numberofemployees": "many"}},
                ]
            )
        )
    )
    assert update.status == 400
    assert update.body["errors"][0]["code"] == "INVALID_INTEGER"
    unknown = _refusal(
        lambda: batch.update(
            BatchInputSimplePublicObjectBatchInput(
                inputs=[
                    {"id": ids[0], "properties": {"numberofemployees": "77"}},
                    {"id": "999999999", "properties": {"numberofemployees": "1"}},
                ]
            )
        )
    )
    assert unknown.status == 404
    assert unknown.body["category"] == "OBJECT_NOT_FOUND"
    after = client.crm.companies.basic_api.get_by_id(ids[0], properties=["numberofemployees"])
    assert after.properties["numberofemployees"] != "77"


def test_batch_writes_with_trace_ids_answer_207_per_input(fresh: Sandbox) -> None:
    """With objectWriteTraceId on every input, good inputs are written and bad ones listed (207)."""
    client = hubspot_client(fresh)
    batch = client.crm.companies.batch_api
    created, status, _ = batch.create_with_http_info(
        BatchInputSimplePublicObjectBatchInputForCreate(
            inputs=[
                {"objectWriteTraceId": "a", "properties": {"name": "Kept"}},
                {"objectWriteTraceId": "b", "properties": {"name": "Lost", "nope": "1"}},
            ]
        )
    )
    assert status == 207
    assert [r.properties["name"] for r in created.results] == ["Kept"]
    assert created.errors[0].context["objectWriteTraceId"] == ["b"]

    ids = [c.id for c in client.crm.companies.basic_api.get_page(limit=2).results]
    updated, status, _ = batch.update_with_http_info(
        BatchInputSimplePublicObjectBatchInput(
            inputs=[
                {
                    "id": ids[0],
                    "objectWriteTraceId": "1",
                    "properties": {"numberofemployees": "77"},
                },
                {"id": ids[1], "objectWriteTraceId": "2", "properties": {"numberofemployees": "x"}},
                {"id": "999999999", "objectWriteTraceId": "3", "properties": {"name": "y"}},
            ]
        )
    )
    assert status == 207
    assert [r.id for r in updated.results] == [ids[0]]
    assert updated.num_errors == 2
    assert {e.category for e in updated.errors} == {"VALIDATION_ERROR", "OBJECT_NOT_FOUND"}
    assert {e.context["objectWriteTraceId"][0] for e in updated.errors} == {"2", "3"}
    got = client.crm.companies.batch_api.read(
        BatchReadInputSimplePublicObjectId(
            inputs=[{"id": i} for i in ids], properties=["numberofemployees"]
        )
    )
    employees = {r.id: r.properties["numberofemployees"] for r in got.results}
    assert employees[ids[0]] == "77"
    assert employees[ids[1]] != "x"


def test_batch_update_answers_200_and_writes(fresh: Sandbox) -> None:
    """Batch update answers 200 COMPLETE; the values (and what derives from them) read back."""
    client = hubspot_client(fresh)
    ids = [c.id for c in client.crm.deals.basic_api.get_page(limit=3).results]
    done, status, _ = client.crm.deals.batch_api.update_with_http_info(
        DealUpdates(inputs=[{"id": i, "properties": {"dealstage": "closedwon"}} for i in ids])
    )
    assert status == 200
    assert done.status == "COMPLETE"
    got = client.crm.deals.basic_api.get_by_id(ids[0], properties=["dealstage", "hs_is_closed_won"])
    assert got.properties["dealstage"] == "closedwon"
    assert got.properties["hs_is_closed_won"] == "true"  # derived from the stage


def test_batch_upsert_creates_and_updates_by_a_unique_property(fresh: Sandbox) -> None:
    """Upsert by a unique property creates unknown keys (new=true) and updates known ones."""
    client = hubspot_client(fresh)
    client.crm.properties.core_api.create(
        "companies",
        PropertyCreate(
            name="sf_account_id",
            label="Salesforce Account Id",
            type="string",
            field_type="text",
            group_name="companyinformation",
            has_unique_value=True,
        ),
    )
    batch = client.crm.companies.batch_api

    def upsert(names: dict[str, str]) -> Any:
        return batch.upsert_with_http_info(
            BatchInputSimplePublicObjectBatchInputUpsert(
                inputs=[
                    {"id": key, "idProperty": "sf_account_id", "properties": {"name": name}}
                    for key, name in names.items()
                ]
            )
        )

    first, status, _ = upsert({"001A": "Alpha", "001B": "Beta"})
    assert status == 200
    assert {r.properties["sf_account_id"]: r.new for r in first.results} == {
        "001A": True,
        "001B": True,
    }
    again, _, _ = upsert({"001A": "Alpha 2", "001C": "Gamma"})
    assert {r.properties["sf_account_id"]: r.new for r in again.results} == {
        "001A": False,
        "001C": True,
    }
    alpha = next(r.id for r in first.results if r.properties["sf_account_id"] == "001A")
    assert client.crm.companies.basic_api.get_by_id(alpha).properties["name"] == "Alpha 2"

    non_unique = _refusal(
        lambda: batch.upsert(
            BatchInputSimplePublicObjectBatchInputUpsert(
                inputs=[{"id": "Alpha 2", "idProperty": "name", "properties": {"domain": "a.io"}}]
            )
        )
    )
    assert non_unique.status == 400
    assert "non-unique" in non_unique.body["message"]


def test_a_batch_naming_a_record_twice_is_refused(client: HubSpot) -> None:
    """Duplicate ids in a batch update are refused with 400 as HubSpot does."""
    company = client.crm.companies.basic_api.get_page(limit=1).results[0].id
    refused = _refusal(
        lambda: client.crm.companies.batch_api.update(
            BatchInputSimplePublicObjectBatchInput(
                inputs=[{"id": company, "properties": {"name": n}} for n in ("a", "b")]
            )
        )
    )
    assert refused.status == 400
    assert refused.body["message"].startswith("Duplicate IDs found in batch input")
    assert refused.body["context"]["ids"] == [company]


@pytest.mark.parametrize("operation", ["read", "create", "update", "upsert", "archive"])
def test_batches_over_100_inputs_are_refused(client: HubSpot, operation: str) -> None:
    """Every batch endpoint answers 101 inputs with 400 VALIDATION_ERROR and writes nothing."""
    batch = client.crm.companies.batch_api
    ids = [{"id": str(i)} for i in range(101)]
    with_props = [{"id": str(i), "properties": {"name": "x"}} for i in range(101)]
    calls: dict[str, Callable[[], object]] = {
        "read": lambda: batch.read(BatchReadInputSimplePublicObjectId(inputs=ids)),
        "create": lambda: batch.create(
            BatchInputSimplePublicObjectBatchInputForCreate(
                inputs=[{"properties": {"name": "x"}}] * 101
            )
        ),
        "update": lambda: batch.update(BatchInputSimplePublicObjectBatchInput(inputs=with_props)),
        "upsert": lambda: batch.upsert(
            BatchInputSimplePublicObjectBatchInputUpsert(inputs=with_props)
        ),
        "archive": lambda: batch.archive(BatchInputSimplePublicObjectId(inputs=ids)),
    }
    refused = _refusal(calls[operation])
    assert refused.status == 400
    assert refused.body["category"] == "VALIDATION_ERROR"
    assert "is 100" in refused.body["message"]


def test_search_applies_filters_and_sorts(shared: Sandbox, client: HubSpot) -> None:
    """Filters AND within a group, groups OR, and sorts order the results."""
    records = [shared.portal.records["companies"][i] for i in _live(shared, "companies")]
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
    refused = _refusal(
        lambda: client.crm.companies.search_api.do_search(public_object_search_request=request)
    )
    assert refused.status == 400
    assert refused.body["category"] == "VALIDATION_ERROR"


def test_search_pages_by_200_to_the_last_result(fresh: Sandbox) -> None:
    """Search pages of 200 follow paging.next.after until it is absent: ceil(total/200) calls."""
    _limits(fresh, search_per_second=100)
    client = hubspot_client(fresh)
    _reset(fresh)
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

    assert seen == _live(fresh, "deals")
    assert total == len(seen) > 400
    assert _stats(fresh)["by_endpoint"]["POST objects/deals/search"]["calls"] == math.ceil(
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
    refused = _refusal(lambda: page("10000", limit=10))
    assert refused.status == 400
    assert refused.body["category"] == "VALIDATION_ERROR"


def test_properties_and_groups_describe_the_portal(client: HubSpot) -> None:
    """Properties carry their types and options; each object has its default group."""
    properties = client.crm.properties.core_api
    companies = {p.name: p for p in properties.get_all("companies").results}
    assert {"name", "domain", "industry", "numberofemployees", "hs_lastmodifieddate"} <= set(
        companies
    )
    assert (companies["numberofemployees"].type, companies["numberofemployees"].field_type) == (
        "number",
        "number",
    )
    assert companies["hs_object_id"].modification_metadata.read_only_value is True
    stage = properties.get_by_name("deals", "dealstage")
    assert stage.type == "enumeration"
    assert {"closedwon", "closedlost"} <= {o.value for o in stage.options}

    groups = client.crm.properties.groups_api
    assert "companyinformation" in {g.name for g in groups.get_all("companies").results}
    assert groups.get_by_name("deals", "dealinformation").label
    missing = _refusal(lambda: properties.get_by_name("companies", "no_such_property"))
    assert missing.status == 404


def test_a_created_group_and_property_can_be_written(fresh: Sandbox) -> None:
    """A new group and enumeration property are created (201, then 409) and take values."""
    client = hubspot_client(fresh)
    group = client.crm.properties.groups_api.create(
        "companies", PropertyGroupCreate(name="icp_sync", label="ICP sync", display_order=5)
    )
    assert (group.name, group.archived) == ("icp_sync", False)
    create = PropertyCreate(
        name="icp_tier",
        label="ICP Tier",
        type="enumeration",
        field_type="select",
        group_name="icp_sync",
        options=[
            {"label": t, "value": t, "displayOrder": i, "hidden": False}
            for i, t in enumerate(("Green", "Yellow", "Red"))
        ],
    )
    made = client.crm.properties.core_api.create("companies", create)
    assert [o.value for o in made.options] == ["Green", "Yellow", "Red"]
    assert made.group_name == "icp_sync"
    duplicate = _refusal(lambda: client.crm.properties.core_api.create("companies", create))
    assert duplicate.status == 409

    company = client.crm.companies.basic_api.get_page(limit=1).results[0].id
    client.crm.companies.basic_api.update(
        company, SimplePublicObjectInput(properties={"icp_tier": "Green"})
    )
    got = client.crm.companies.basic_api.get_by_id(company, properties=["icp_tier"])
    assert got.properties["icp_tier"] == "Green"
    bad = _refusal(
        lambda: client.crm.companies.basic_api.update(
            company, SimplePublicObjectInput(properties={"icp_tier": "Purple"})
        )
    )
    assert bad.status == 400
    assert bad.body["errors"][0]["code"] == "INVALID_OPTION"


@pytest.mark.parametrize(
    ("name", "value", "code"),
    [
        ("no_such_property", "x", "PROPERTY_DOESNT_EXIST"),
        ("hs_lastmodifieddate", "2024-01-01T00:00:00Z", "READ_ONLY_VALUE"),
        ("numberofemployees", "lots", "INVALID_INTEGER"),
    ],
)
def test_refused_property_values_answer_400_in_hubspots_words(
    client: HubSpot, name: str, value: str, code: str
) -> None:
    """Unknown, read-only and mistyped values are refused: 400, with the problems as JSON."""
    company = client.crm.companies.basic_api.get_page(limit=1).results[0].id
    refused = _refusal(
        lambda: client.crm.companies.basic_api.update(
            company, SimplePublicObjectInput(properties={name: value})
        )
    )
    assert refused.status == 400
    assert refused.body["category"] == "VALIDATION_ERROR"
    prefix = "Property values were not valid: "
    assert refused.body["message"].startswith(prefix)
    details = json.loads(refused.body["message"].removeprefix(prefix))
    assert details[0] | {"name": name, "error": code, "isValid": False} == details[0]
    assert refused.body["errors"][0]["context"]["propertyName"] == [name]


def test_default_deal_company_association_lists_both_ways(fresh: Sandbox) -> None:
    """PUT default associates a deal to a company (341); both sides then list it."""
    client = hubspot_client(fresh)
    v4 = client.crm.associations.v4.basic_api
    deal = client.crm.deals.basic_api.get_page(limit=1).results[0].id
    current = v4.get_page("deals", deal, "companies").results[0].to_object_id
    company = next(c for c in _live(fresh, "companies") if c != current)

    made = v4.create_default("deals", deal, "companies", company)
    assert made.status == "COMPLETE"
    spec = made.results[0].association_spec
    assert (spec.association_category, spec.association_type_id) == ("HUBSPOT_DEFINED", 341)

    to_company = v4.get_page("0-3", deal, "0-2").results
    assert [r.to_object_id for r in to_company] == [company]
    assert to_company[0].association_types[0].type_id == 341
    to_deals = v4.get_page("companies", company, "deals").results
    assert deal in {r.to_object_id for r in to_deals}
    assert {t.type_id for r in to_deals for t in r.association_types} == {342}


def test_batch_associations_create_read_and_archive(fresh: Sandbox) -> None:
    """Batch create answers 201 (207 for unknown ids); batch read 207 NO_ASSOCIATIONS_FOUND."""
    client = hubspot_client(fresh)
    batch = client.crm.associations.v4.batch_api
    deals = client.crm.deals.basic_api.get_page(limit=2).results
    companies = _live(fresh, "companies")[-2:]
    spec = [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 341}]

    made, status, _ = batch.create_with_http_info(
        "deals",
        "companies",
        BatchInputPublicAssociationMultiPost(
            inputs=[
                {"from": {"id": d.id}, "to": {"id": c}, "types": spec}
                for d, c in zip(deals, companies, strict=True)
            ]
        ),
    )
    assert status == 201
    assert {(r.from_object_id, r.to_object_id) for r in made.results} == {
        (d.id, c) for d, c in zip(deals, companies, strict=True)
    }
    assert {r.from_object_type_id for r in made.results} == {"0-3"}

    partial, status, _ = batch.create_with_http_info(
        "deals",
        "companies",
        BatchInputPublicAssociationMultiPost(
            inputs=[{"from": {"id": deals[0].id}, "to": {"id": "999999999"}, "types": spec}]
        ),
    )
    assert (status, partial.num_errors, partial.results) == (207, 1, [])

    client.crm.associations.v4.batch_api.archive(
        "deals",
        "companies",
        BatchInputPublicAssociationMultiArchive(
            inputs=[{"from": {"id": deals[1].id}, "to": [{"id": companies[1]}]}]
        ),
    )
    read, status, _ = batch.get_page_with_http_info(
        "deals",
        "companies",
        BatchInputPublicFetchAssociationsBatchRequest(inputs=[{"id": d.id} for d in deals]),
    )
    assert status == 207
    assert [(r._from.id, [t.to_object_id for t in r.to]) for r in read.results] == [
        (deals[0].id, [companies[0]])
    ]
    assert read.errors[0].sub_category == "crm.associations.NO_ASSOCIATIONS_FOUND"
    assert read.errors[0].context["fromObjectId"] == [deals[1].id]

    default = batch.create_default(
        "deals",
        "companies",
        BatchInputPublicDefaultAssociationMultiPost(
            inputs=[{"from": {"id": deals[1].id}, "to": {"id": companies[0]}}]
        ),
    )
    assert default.results[0].association_spec.association_type_id == 341


def test_deal_pipelines_and_stages(client: HubSpot) -> None:
    """The deal pipeline lists the dealstage options as stages, with closed and probability."""
    pipelines = client.crm.pipelines.pipelines_api.get_all("deals").results
    assert [p.id for p in pipelines] == ["default"]
    stage_options = client.crm.properties.core_api.get_by_name("deals", "dealstage").options
    stages = {s.id: s for s in pipelines[0].stages}
    assert set(stages) == {o.value for o in stage_options}
    assert stages["closedwon"].metadata == {"isClosed": "true", "probability": "1.0"}
    assert stages["appointmentscheduled"].metadata["isClosed"] == "false"

    api = client.crm.pipelines.pipeline_stages_api
    assert [s.id for s in api.get_all("deals", "default").results] == [
        s.id for s in pipelines[0].stages
    ]
    assert api.get_by_id("deals", "default", "closedlost").label == "Closed Lost"
    missing = _refusal(lambda: client.crm.pipelines.pipelines_api.get_by_id("deals", "nope"))
    assert missing.status == 404


def test_owners_are_paged_and_read_by_id(shared: Sandbox, client: HubSpot) -> None:
    """Owners page with after, read by id, and are the owners deals point at."""
    owners = client.crm.owners.owners_api
    first = owners.get_page(limit=10)
    assert len(first.results) == 10
    rest = owners.get_page(limit=500, after=first.paging.next.after)
    everyone = [*first.results, *rest.results]
    assert len({o.id for o in everyone}) == len(shared.portal.owners)
    assert all("@" in o.email for o in everyone)
    assert owners.get_by_id(int(everyone[3].id)).email == everyone[3].email

    deals = client.crm.deals.basic_api.get_page(limit=50, properties=["hubspot_owner_id"]).results
    assigned = {d.properties["hubspot_owner_id"] for d in deals} - {None}
    assert assigned
    assert assigned <= {o.id for o in everyone}


def test_oauth_refresh_issues_tokens_that_expire(sandbox_factory: SandboxFactory) -> None:
    """The refresh grant issues tokens; after the set number of calls they answer 401 expired."""
    sandbox = sandbox_factory(accounts=100, faults=FaultProfile(session_expiry_after=2))
    creds = json.loads((sandbox.directory / "credentials.json").read_text("utf-8"))["hubspot"]
    tokens = hubspot_client(sandbox).oauth.tokens_api

    def refresh(refresh_token: str = creds["refresh_token"]) -> str:
        token = tokens.create(
            grant_type="refresh_token",
            client_id=creds["client_id"],
            client_secret=creds["client_secret"],
            refresh_token=refresh_token,
        )
        assert token.expires_in > 0
        assert token.token_type == "bearer"
        return str(token.access_token)

    client = hubspot_client(sandbox, access_token=refresh())
    for _ in range(2):
        client.crm.companies.basic_api.get_page(limit=1)
    for _ in range(2):  # and it stays expired
        expired = _refusal(lambda: client.crm.companies.basic_api.get_page(limit=1))
        assert expired.status == 401
        assert expired.body["category"] == "EXPIRED_AUTHENTICATION"
    fresh_client = hubspot_client(sandbox, access_token=refresh())
    assert fresh_client.crm.companies.basic_api.get_page(limit=1).results
    for _ in range(3):  # the private-app token never expires
        hubspot_client(sandbox).crm.companies.basic_api.get_page(limit=1)

    bad = _refusal(lambda: refresh("not-the-refresh-token"))
    assert bad.status == 400
    assert bad.body["status"] == "BAD_REFRESH_TOKEN"


def test_an_unknown_token_is_answered_401(shared: Sandbox) -> None:
    """A token the portal never issued is answered 401 INVALID_AUTHENTICATION."""
    client = hubspot_client(shared, access_token="pat-na1-not-a-token")
    refused = _refusal(lambda: client.crm.companies.basic_api.get_page(limit=1))
    assert refused.status == 401
    assert refused.body["category"] == "INVALID_AUTHENTICATION"


def test_every_answer_carries_the_rate_limit_headers(fresh: Sandbox) -> None:
    """X-HubSpot-RateLimit-* headers count down the burst window and the daily budget."""
    client = hubspot_client(fresh)
    answers = [
        _headers(client.crm.companies.basic_api.get_page_with_http_info(limit=1)[2])
        for _ in range(2)
    ]
    assert answers[0]["x-hubspot-ratelimit-max"] == "190"
    assert answers[0]["x-hubspot-ratelimit-interval-milliseconds"] == "10000"
    assert answers[0]["x-hubspot-ratelimit-daily"] == "1000000"
    for name in ("x-hubspot-ratelimit-remaining", "x-hubspot-ratelimit-daily-remaining"):
        assert int(answers[0][name]) - int(answers[1][name]) == 1


def test_the_ten_secondly_limit_answers_429(fresh: Sandbox) -> None:
    """Past the burst limit calls answer 429 TEN_SECONDLY_ROLLING with the remaining at 0."""
    _limits(fresh, ten_secondly=3, window_ms=60_000)
    client = hubspot_client(fresh)
    for _ in range(3):
        client.crm.companies.basic_api.get_page(limit=1)
    refused = _refusal(lambda: client.crm.companies.basic_api.get_page(limit=1))

    assert refused.status == 429
    assert refused.body["errorType"] == "RATE_LIMIT"
    assert refused.body["policyName"] == "TEN_SECONDLY_ROLLING"
    assert refused.body["message"] == "You have reached your ten_secondly_rolling limit."
    assert refused.headers["x-hubspot-ratelimit-max"] == "3"
    assert refused.headers["x-hubspot-ratelimit-remaining"] == "0"


def test_the_daily_limit_answers_429_for_every_call(fresh: Sandbox) -> None:
    """Once the daily budget is spent every call, search included, answers 429 DAILY."""
    _limits(fresh, daily=2)
    client = hubspot_client(fresh)
    client.crm.companies.basic_api.get_page(limit=1)
    client.crm.deals.basic_api.get_page(limit=1)
    calls: list[Callable[[], object]] = [
        lambda: client.crm.companies.basic_api.get_page(limit=1),
        lambda: client.crm.companies.search_api.do_search(
            public_object_search_request=PublicObjectSearchRequest(limit=1)
        ),
    ]
    for call in calls:
        refused = _refusal(call)
        assert refused.status == 429
        assert refused.body["policyName"] == "DAILY"
        assert refused.body["message"] == "You have reached your daily limit."
        assert refused.headers["x-hubspot-ratelimit-daily-remaining"] == "0"


def test_search_has_its_own_per_second_limit(fresh: Sandbox) -> None:
    """Search is exempt from the burst window but limited per second (429 SECONDLY)."""
    _limits(fresh, ten_secondly=1, window_ms=60_000, search_per_second=2)
    client = hubspot_client(fresh)
    client.crm.companies.basic_api.get_page(limit=1)
    assert _refusal(lambda: client.crm.companies.basic_api.get_page(limit=1)).status == 429

    def search() -> object:
        return client.crm.companies.search_api.do_search(
            public_object_search_request=PublicObjectSearchRequest(limit=1)
        )

    search()
    search()
    refused = _refusal(search)
    assert refused.status == 429
    assert refused.body["policyName"] == "SECONDLY"
    assert refused.body["errorType"] == "RATE_LIMIT"


@pytest.mark.parametrize(
    ("profile", "status", "policy"),
    [
        pytest.param({"server_error": 1.0}, 502, None, id="server_error"),
        pytest.param({"rate_limit": 1.0}, 429, "TEN_SECONDLY_ROLLING", id="rate_limit"),
    ],
)
def test_request_faults_answer_as_documented(
    fresh: Sandbox, profile: dict[str, float], status: int, policy: str | None
) -> None:
    """Injected faults answer 502 (HTML, like HubSpot's gateway) or a documented 429 body."""
    _control(fresh, "POST", "/__sandbox/faults", json=profile)
    client = hubspot_client(fresh)
    refused = _refusal(lambda: client.crm.companies.basic_api.get_page(limit=1))
    assert refused.status == status
    assert "x-hubspot-ratelimit-max" in refused.headers
    if policy is None:
        assert "Bad Gateway" in refused.body["raw"]
        return
    assert refused.body["policyName"] == policy
    searched = _refusal(
        lambda: client.crm.companies.search_api.do_search(
            public_object_search_request=PublicObjectSearchRequest(limit=1)
        )
    )
    assert searched.body["policyName"] == "SECONDLY"


@pytest.mark.parametrize("fault", ["server_error", "rate_limit"])
def test_faults_are_deterministic_for_a_seed(fresh: Sandbox, fault: str) -> None:
    """The same seed fails the same calls; another seed fails others."""
    client = hubspot_client(fresh)

    def failures(seed: int) -> list[bool]:
        _control(fresh, "POST", "/__sandbox/faults", json={"seed": seed, fault: 0.3})
        outcome = []
        for _ in range(30):
            try:
                client.crm.companies.basic_api.get_page(limit=1)
                outcome.append(False)
            except CompaniesError:
                outcome.append(True)
        return outcome

    first, again, other = failures(5), failures(5), failures(6)
    assert first == again
    assert first != other
    assert 3 <= sum(first) <= 20


def test_latency_is_added_to_every_call(fresh: Sandbox) -> None:
    """latency_ms slows every answer by at least that much."""
    _control(fresh, "POST", "/__sandbox/faults", json={"latency_ms": 150})
    client = hubspot_client(fresh)
    started = time.perf_counter()
    client.crm.companies.basic_api.get_page(limit=1)
    assert time.perf_counter() - started >= 0.15


def test_the_validation_fault_refuses_the_same_records_every_time(fresh: Sandbox) -> None:
    """validation fails a seeded, stable set of records on the property being written."""
    _control(fresh, "POST", "/__sandbox/faults", json={"validation": 0.5, "seed": 3})
    client = hubspot_client(fresh)
    ids = [c.id for c in client.crm.companies.basic_api.get_page(limit=20).results]

    def refused_ids() -> set[str]:
        answer = client.crm.companies.batch_api.update(
            BatchInputSimplePublicObjectBatchInput(
                inputs=[
                    {"id": i, "objectWriteTraceId": i, "properties": {"numberofemployees": "9"}}
                    for i in ids
                ]
            )
        )
        assert {e.context["propertyName"][0] for e in answer.errors or []} <= {"numberofemployees"}
        return {e.context["ids"][0] for e in answer.errors or []}

    first = refused_ids()
    assert 0 < len(first) < len(ids)
    assert refused_ids() == first
    _control(fresh, "POST", "/__sandbox/faults", json={"validation": 0.5, "seed": 4})
    assert refused_ids() != first
    _control(fresh, "POST", "/__sandbox/faults", json={"validation": 0.5, "seed": 3})
    single = _refusal(
        lambda: client.crm.companies.basic_api.update(
            sorted(first)[0], SimplePublicObjectInput(properties={"name": "x"})
        )
    )
    assert single.status == 400
    assert single.body["errors"][0]["context"]["propertyName"] == ["name"]


def test_lock_row_is_a_salesforce_fault_only(fresh: Sandbox) -> None:
    """HubSpot has no row locks: lock_row=1 leaves HubSpot writes alone."""
    _control(fresh, "POST", "/__sandbox/faults", json={"lock_row": 1.0})
    client = hubspot_client(fresh)
    company = client.crm.companies.basic_api.get_page(limit=1).results[0].id
    client.crm.companies.basic_api.update(
        company, SimplePublicObjectInput(properties={"numberofemployees": "8"})
    )
    got = client.crm.companies.basic_api.get_by_id(company, properties=["numberofemployees"])
    assert got.properties["numberofemployees"] == "8"


def test_stats_count_calls_and_records_by_endpoint(fresh: Sandbox) -> None:
    """/__sandbox/stats counts calls, records read and written per endpoint; reset zeroes it."""
    client = hubspot_client(fresh)
    _reset(fresh)
    ids = [c.id for c in client.crm.companies.basic_api.get_page(limit=7).results]
    client.crm.objects.basic_api.get_page("0-2", limit=3)
    client.crm.companies.batch_api.update(
        BatchInputSimplePublicObjectBatchInput(
            inputs=[{"id": i, "properties": {"numberofemployees": "3"}} for i in ids[:4]]
        )
    )
    client.crm.companies.basic_api.create(
        SimplePublicObjectInputForCreate(properties={"name": "A"})
    )
    client.crm.companies.search_api.do_search(
        public_object_search_request=PublicObjectSearchRequest(limit=5)
    )
    stats = _stats(fresh)

    assert stats["calls"] == 5
    assert stats["records_read"] == 7 + 3 + 5
    assert stats["records_written"] == 4 + 1
    assert stats["by_endpoint"] == {
        "GET objects/companies": {"calls": 2, "records_read": 10, "records_written": 0},
        "POST objects/companies": {"calls": 1, "records_read": 0, "records_written": 1},
        "POST objects/companies/batch/update": {
            "calls": 1,
            "records_read": 0,
            "records_written": 4,
        },
        "POST objects/companies/search": {"calls": 1, "records_read": 5, "records_written": 0},
    }
    assert _stats(fresh)["calls"] == 5  # control calls are not counted
    _reset(fresh)
    assert _stats(fresh) == {
        "calls": 0,
        "by_endpoint": {},
        "records_read": 0,
        "records_written": 0,
    }


def test_a_persisted_portal_keeps_its_writes(
    sandbox_factory: SandboxFactory, tmp_path: Any
) -> None:
    """With persist, values, new properties and associations written before a stop survive."""
    first = sandbox_factory(accounts=100, persist=True, directory=tmp_path / "portal")
    client = hubspot_client(first)
    client.crm.properties.core_api.create(
        "companies",
        PropertyCreate(
            name="icp_score",
            label="ICP Score",
            type="number",
            field_type="number",
            group_name="companyinformation",
        ),
    )
    company = client.crm.companies.basic_api.get_page(limit=1).results[0].id
    client.crm.companies.basic_api.update(
        company,
        SimplePublicObjectInput(properties={"numberofemployees": "4321", "icp_score": "87"}),
    )
    deal = client.crm.deals.basic_api.get_page(limit=1).results[0].id
    client.crm.associations.v4.basic_api.create_default("deals", deal, "companies", company)
    first.stop()

    second = sandbox_factory(accounts=100, persist=True, directory=tmp_path / "portal")
    again = hubspot_client(second)
    got = again.crm.companies.basic_api.get_by_id(
        company, properties=["numberofemployees", "icp_score"]
    )
    assert got.properties["numberofemployees"] == "4321"
    assert got.properties["icp_score"] == "87"
    assert again.crm.properties.core_api.get_by_name("companies", "icp_score").type == "number"
    linked = again.crm.associations.v4.basic_api.get_page("deals", deal, "companies").results
    assert [r.to_object_id for r in linked] == [company]
