"""HubSpot emulator CRM v3 objects through hubspot-api-client: pages, reads, batch writes.

With ``client_side_validation=True`` the SDK rejects answers that miss required fields, so
every call here also checks the emulator's response shapes against HubSpot's own models.
Read-only tests share one small portal; tests that write get a fresh one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
from hubspot import HubSpot
from hubspot.crm.companies import (
    BatchInputSimplePublicObjectBatchInput,
    BatchInputSimplePublicObjectBatchInputForCreate,
    BatchInputSimplePublicObjectBatchInputUpsert,
    BatchInputSimplePublicObjectId,
    BatchReadInputSimplePublicObjectId,
    PublicObjectSearchRequest,
)
from hubspot.crm.deals import BatchInputSimplePublicObjectBatchInput as DealUpdates
from hubspot.crm.objects import PublicObjectSearchRequest as ObjectSearch
from hubspot.crm.objects import SimplePublicObjectInputForCreate as TaskCreate
from hubspot.crm.properties import PropertyCreate

from icp_sync.sandbox.service import Sandbox
from tests.crm_clients import hubspot_client
from tests.sandbox.hubspot_support import (
    live_ids,
    read_stats,
    refused_call,
    reset_stats,
)


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
    live = live_ids(fresh, kind)
    reset_stats(fresh)
    records = api.get_all()

    assert sorted((r.id for r in records), key=int) == live
    stats = read_stats(fresh)
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

    missing = refused_call(lambda: client.crm.companies.basic_api.get_by_id("999999999"))
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

    assert refused_call(lambda: client.crm.companies.basic_api.get_by_id(company)).status == 404
    archived = client.crm.companies.basic_api.get_by_id(company, archived=True)
    assert archived.archived is True
    assert archived.archived_at is not None
    listed = client.crm.companies.get_all(archived=True)
    assert company in {r.id for r in listed}
    assert company not in live_ids(fresh, "companies")


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

    refused = refused_call(
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
    before = len(live_ids(fresh, "companies"))
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
    assert len(live_ids(fresh, "companies")) == before + 3
    got = client.crm.companies.basic_api.get_by_id(
        created.results[0].id, properties=["numberofemployees"]
    )
    assert got.properties["numberofemployees"] == "5"


def test_one_bad_input_refuses_a_batch_write_without_trace_ids(fresh: Sandbox) -> None:
    """Without objectWriteTraceId one bad input fails the whole batch and nothing is written."""
    client = hubspot_client(fresh)
    batch = client.crm.companies.batch_api
    ids = [c.id for c in client.crm.companies.basic_api.get_page(limit=2).results]
    before = len(live_ids(fresh, "companies"))
    create = refused_call(
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
    assert len(live_ids(fresh, "companies")) == before

    update = refused_call(
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
    unknown = refused_call(
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

    non_unique = refused_call(
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
    refused = refused_call(
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
    refused = refused_call(calls[operation])
    assert refused.status == 400
    assert refused.body["category"] == "VALIDATION_ERROR"
    assert "is 100" in refused.body["message"]


def test_a_task_is_created_with_its_deal_and_validated(fresh: Sandbox) -> None:
    """A task (object 0-27) created with a type-216 association is tied to that deal, keeps
    its properties, is found by an EQ search on its subject and refuses an unknown status."""
    client = hubspot_client(fresh)
    deal = live_ids(fresh, "deals")[0]
    link = [
        {
            "to": {"id": deal},
            "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 216}],
        }
    ]
    created = client.crm.objects.basic_api.create(
        "tasks",
        TaskCreate(
            properties={"hs_task_subject": "Call [k:1]", "hs_task_status": "NOT_STARTED"},
            associations=link,
        ),
    )
    search = ObjectSearch(
        filter_groups=[
            {
                "filters": [
                    {"propertyName": "hs_task_subject", "operator": "EQ", "value": "Call [k:1]"}
                ]
            }
        ],
        properties=["hs_task_subject"],
    )
    found = client.crm.objects.search_api.do_search("0-27", search)
    refusal = refused_call(
        lambda: client.crm.objects.basic_api.create(
            "tasks", TaskCreate(properties={"hs_task_status": "STARTED"}, associations=link)
        )
    )

    assert created.properties["hs_task_subject"] == "Call [k:1]"
    assert fresh.portal.task_deals[created.id] == {deal}
    assert [r.id for r in found.results] == [created.id]
    assert refusal.status == 400
