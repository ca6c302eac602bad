"""HubSpot emulator metadata through hubspot-api-client: properties and groups, v4
associations, deal pipelines and stages, owners.
"""

from __future__ import annotations

import json

import pytest
from hubspot import HubSpot
from hubspot.crm.associations.v4 import (
    BatchInputPublicAssociationMultiArchive,
    BatchInputPublicAssociationMultiPost,
    BatchInputPublicDefaultAssociationMultiPost,
    BatchInputPublicFetchAssociationsBatchRequest,
)
from hubspot.crm.companies import (
    SimplePublicObjectInput,
)
from hubspot.crm.properties import PropertyCreate, PropertyGroupCreate

from icp_sync.sandbox.service import Sandbox
from tests.crm_clients import hubspot_client
from tests.sandbox.hubspot_support import (
    live_ids,
    refused_call,
)


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
    missing = refused_call(lambda: properties.get_by_name("companies", "no_such_property"))
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
    duplicate = refused_call(lambda: client.crm.properties.core_api.create("companies", create))
    assert duplicate.status == 409

    company = client.crm.companies.basic_api.get_page(limit=1).results[0].id
    client.crm.companies.basic_api.update(
        company, SimplePublicObjectInput(properties={"icp_tier": "Green"})
    )
    got = client.crm.companies.basic_api.get_by_id(company, properties=["icp_tier"])
    assert got.properties["icp_tier"] == "Green"
    bad = refused_call(
        lambda: client.crm.companies.basic_api.update(
            company, SimplePublicObjectInput(properties={"icp_tier": "Purple"})
        )
    )
    assert bad.status == 400
    assert bad.body["errors"][0]["code"] == "INVALID_OPTION"


@pytest.mark.parametrize(
    ("name", "value", "code"),
    [
        pytest.param("no_such_property", "x", "PROPERTY_DOESNT_EXIST", id="unknown-property"),
        pytest.param(
            "hs_lastmodifieddate", "2024-01-01T00:00:00Z", "READ_ONLY_VALUE", id="read-only"
        ),
        pytest.param("numberofemployees", "lots", "INVALID_INTEGER", id="not-a-number"),
    ],
)
def test_refused_property_values_answer_400_in_hubspots_words(
    client: HubSpot, name: str, value: str, code: str
) -> None:
    """Unknown, read-only and mistyped values are refused: 400, with the problems as JSON."""
    company = client.crm.companies.basic_api.get_page(limit=1).results[0].id
    refused = refused_call(
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
    company = next(c for c in live_ids(fresh, "companies") if c != current)

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
    companies = live_ids(fresh, "companies")[-2:]
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
    missing = refused_call(lambda: client.crm.pipelines.pipelines_api.get_by_id("deals", "nope"))
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
