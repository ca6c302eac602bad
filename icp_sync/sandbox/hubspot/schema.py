"""HubSpot metadata routes of the emulator: properties and groups, v4 associations
between deals and companies, deal pipelines and owners.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from icp_sync.sandbox.hubspot.api import (
    COMPANY_TO_DEAL,
    DEAL_TO_COMPANY,
    HubSpotApi,
    batch_inputs,
    batch_response,
    error,
    object_kind,
    standard_error,
)
from icp_sync.sandbox.hubspot.portal import OBJECTS, HubSpotPortal
from icp_sync.sandbox.hubspot.properties import PropertyDef, iso_ms

__all__ = [
    "associate_default",
    "associate_labelled",
    "associations",
    "associations_batch",
    "group",
    "groups",
    "owner",
    "owners",
    "pipeline",
    "pipelines",
    "properties",
    "properties_batch",
    "property_",
    "stage",
    "stages",
]


async def properties(api: HubSpotApi, request: Request) -> Response:
    kind = object_kind(request)
    if request.method == "GET":
        archived = request.query_params.get("archived", "false") == "true"
        results = [
            p.describe() for p in api.portal.properties[kind].values() if p.archived == archived
        ]
        return JSONResponse({"results": results})
    body = await request.json()
    problem = _create_property(api, kind, body)
    if problem is not None:
        return problem
    return JSONResponse(api.portal.properties[kind][body["name"]].describe(), status_code=201)


def _create_property(api: HubSpotApi, kind: str, body: dict[str, Any]) -> JSONResponse | None:
    missing = [k for k in ("name", "label", "type", "fieldType", "groupName") if not body.get(k)]
    if missing:
        return error(400, "VALIDATION_ERROR", f"Missing required properties: {', '.join(missing)}")
    if body["type"] not in (
        "bool",
        "date",
        "datetime",
        "enumeration",
        "number",
        "phone_number",
        "string",
    ):
        return error(400, "VALIDATION_ERROR", f"Unknown property type {body['type']}")
    if body["groupName"] not in api.portal.groups[kind]:
        return error(400, "VALIDATION_ERROR", f"Property group {body['groupName']} does not exist")
    existing = api.portal.properties[kind].get(body["name"])
    if existing is not None and not existing.archived:
        return error(
            409, "OBJECT_ALREADY_EXISTS", f"Property named '{body['name']}' already exists."
        )
    options = [dict(o) for o in body.get("options") or []]
    if body["type"] == "enumeration" and not options:
        return error(400, "VALIDATION_ERROR", "enumeration properties need options")
    stamp = api.portal.now_ms()
    api.portal.properties[kind][body["name"]] = PropertyDef(
        name=body["name"],
        label=body["label"],
        type=body["type"],
        field_type=body["fieldType"],
        group_name=body["groupName"],
        description=body.get("description", ""),
        options=options,
        has_unique_value=bool(body.get("hasUniqueValue", False)),
        hidden=bool(body.get("hidden", False)),
        display_order=int(body.get("displayOrder", -1)),
        created_at=stamp,
        updated_at=stamp,
    )
    for record in api.portal.records[kind].values():
        record.properties.setdefault(body["name"], None)
    return None


async def property_(api: HubSpotApi, request: Request) -> Response:
    kind = object_kind(request)
    name = request.path_params["name"]
    definition = api.portal.properties[kind].get(name)
    if definition is None or definition.archived:
        return error(404, "OBJECT_NOT_FOUND", f"Unable to find property {name} for {kind}")
    if request.method == "DELETE":
        definition.archived = True
        return Response(status_code=204)
    if request.method == "PATCH":
        body = await request.json()
        updated = {k: body[k] for k in ("label", "description", "hidden") if k in body}
        if "options" in body:
            updated["options"] = [dict(o) for o in body["options"]]
        for key, value in updated.items():
            setattr(definition, key, value)
        definition.updated_at = api.portal.now_ms()
    return JSONResponse(definition.describe())


async def properties_batch(api: HubSpotApi, request: Request) -> Response:
    kind = object_kind(request)
    action = request.path_params["action"]
    started = int(time.time() * 1000)
    inputs = batch_inputs(await request.json())
    if action == "archive":
        for item in inputs:
            if item.get("name") in api.portal.properties[kind]:
                api.portal.properties[kind][item["name"]].archived = True
        return Response(status_code=204)
    if action == "read":
        found = [
            api.portal.properties[kind][i["name"]].describe()
            for i in inputs
            if i.get("name") in api.portal.properties[kind]
        ]
        return batch_response(found, [], started)
    if action == "create":
        results, errors = [], []
        for item in inputs:
            problem = _create_property(api, kind, item)
            if problem is None:
                results.append(api.portal.properties[kind][item["name"]].describe())
            else:
                errors.append(
                    standard_error(
                        "VALIDATION_ERROR",
                        f"could not create {item.get('name')}",
                        {"name": [str(item.get("name"))]},
                    )
                )
        return batch_response(results, errors, started, ok=201)
    return error(404, "OBJECT_NOT_FOUND", f"unknown batch action {action}")


def _group_json(name: str, group: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "label": group["label"],
        "displayOrder": group.get("displayOrder", -1),
        "archived": group.get("archived", False),
    }


async def groups(api: HubSpotApi, request: Request) -> Response:
    kind = object_kind(request)
    if request.method == "GET":
        return JSONResponse(
            {
                "results": [
                    _group_json(n, g)
                    for n, g in api.portal.groups[kind].items()
                    if not g.get("archived")
                ]
            }
        )
    body = await request.json()
    if not body.get("name") or not body.get("label"):
        return error(400, "VALIDATION_ERROR", "name and label are required")
    if body["name"] in api.portal.groups[kind] and not api.portal.groups[kind][body["name"]].get(
        "archived"
    ):
        return error(
            409, "OBJECT_ALREADY_EXISTS", f"A property group named '{body['name']}' already exists."
        )
    api.portal.groups[kind][body["name"]] = {
        "label": body["label"],
        "displayOrder": int(body.get("displayOrder", -1)),
    }
    return JSONResponse(
        _group_json(body["name"], api.portal.groups[kind][body["name"]]), status_code=201
    )


async def group(api: HubSpotApi, request: Request) -> Response:
    kind = object_kind(request)
    name = request.path_params["name"]
    group = api.portal.groups[kind].get(name)
    if group is None or group.get("archived"):
        return error(404, "OBJECT_NOT_FOUND", f"Unable to find property group {name}")
    if request.method == "DELETE":
        group["archived"] = True
        return Response(status_code=204)
    if request.method == "PATCH":
        body = await request.json()
        group.update({k: body[k] for k in ("label", "displayOrder") if k in body})
    return JSONResponse(_group_json(name, group))


def _type_id(source: str) -> int:
    return DEAL_TO_COMPANY if source == "deals" else COMPANY_TO_DEAL


def _pair(source: str, source_id: str, target_id: str) -> tuple[str, str]:
    return (source_id, target_id) if source == "deals" else (target_id, source_id)


async def associate_default(api: HubSpotApi, request: Request) -> Response:
    source = HubSpotPortal.kind(request.path_params["from_object"])
    target = HubSpotPortal.kind(request.path_params["to_object"])
    source_id, target_id = request.path_params["from_id"], request.path_params["to_id"]
    if (
        source == target
        or api.portal.record(source, source_id) is None
        or api.portal.record(target, target_id) is None
    ):
        return error(400, "VALIDATION_ERROR", "Both objects must exist and be a deal and a company")
    api.portal.associate(*_pair(source, source_id, target_id))
    started = int(time.time() * 1000)
    request.state.written = 1
    return batch_response([_default_association(source, source_id, target_id)], [], started)


async def associate_labelled(api: HubSpotApi, request: Request) -> Response:
    source = HubSpotPortal.kind(request.path_params["from_object"])
    target = HubSpotPortal.kind(request.path_params["to_object"])
    source_id, target_id = request.path_params["from_id"], request.path_params["to_id"]
    if request.method == "DELETE":
        api.portal.dissociate(*_pair(source, source_id, target_id))
        return Response(status_code=204)
    if (
        source == target
        or api.portal.record(source, source_id) is None
        or api.portal.record(target, target_id) is None
    ):
        return error(400, "VALIDATION_ERROR", "Both objects must exist and be a deal and a company")
    await request.json()
    api.portal.associate(*_pair(source, source_id, target_id))
    request.state.written = 1
    return JSONResponse(_labels_between(source, source_id, target, target_id), status_code=201)


def _labels_between(source: str, source_id: str, target: str, target_id: str) -> dict[str, Any]:
    return {
        "fromObjectTypeId": OBJECTS[source],
        "fromObjectId": int(source_id),
        "toObjectTypeId": OBJECTS[target],
        "toObjectId": int(target_id),
        "labels": [],
    }


def _default_association(source: str, source_id: str, target_id: str) -> dict[str, Any]:
    return {
        "from": {"id": source_id},
        "to": {"id": target_id},
        "associationSpec": {
            "associationCategory": "HUBSPOT_DEFINED",
            "associationTypeId": _type_id(source),
        },
    }


def _association_types(source: str) -> list[dict[str, Any]]:
    return [{"category": "HUBSPOT_DEFINED", "typeId": _type_id(source), "label": None}]


async def associations(api: HubSpotApi, request: Request) -> Response:
    source = HubSpotPortal.kind(request.path_params["object"])
    HubSpotPortal.kind(request.path_params["to_object"])
    ids = api.portal.associated(source, request.path_params["record_id"])
    results = [{"toObjectId": int(i), "associationTypes": _association_types(source)} for i in ids]
    request.state.read = len(results)
    return JSONResponse({"results": results})


_SINGULAR = {"companies": "company", "deals": "deal"}


def _no_associations(source: str, target: str, source_id: str) -> dict[str, Any]:
    body = standard_error(
        "OBJECT_NOT_FOUND",
        f"No {_SINGULAR[target]} is associated with {_SINGULAR[source]} {source_id}.",
        {
            "fromObjectId": [source_id],
            "fromObjectType": [_SINGULAR[source]],
            "toObjectType": [_SINGULAR[target]],
        },
    )
    body["subCategory"] = "crm.associations.NO_ASSOCIATIONS_FOUND"
    return body


def _pair_problem(
    api: HubSpotApi, source: str, target: str, source_id: str, target_id: str
) -> dict[str, Any] | None:
    """The error for an association input naming a missing object, or None."""
    missing = [
        i
        for kind, i in ((source, source_id), (target, target_id))
        if api.portal.record(kind, i) is None
    ]
    if source != target and not missing:
        return None
    return standard_error(
        "OBJECT_NOT_FOUND" if missing else "VALIDATION_ERROR",
        f"Could not find objects with ids {missing}"
        if missing
        else "Only deals and companies can be associated",
        {"fromObjectId": [source_id], "toObjectId": [target_id]},
    )


async def associations_batch(api: HubSpotApi, request: Request) -> Response:
    source = HubSpotPortal.kind(request.path_params["from_object"])
    target = HubSpotPortal.kind(request.path_params["to_object"])
    action = request.path_params["action"]
    started = int(time.time() * 1000)
    body = await request.json()
    inputs = body.get("inputs") if isinstance(body, dict) else None
    if not isinstance(inputs, list) or len(inputs) > 1000:
        raise ValueError("inputs must be an array of at most 1000")
    results: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    if action == "read":
        for item in inputs:
            source_id = str(item.get("id"))
            ids = api.portal.associated(source, source_id) if source != target else []
            if not ids:
                errors.append(_no_associations(source, target, source_id))
                continue
            results.append(
                {
                    "from": {"id": source_id},
                    "to": [
                        {"toObjectId": int(i), "associationTypes": _association_types(source)}
                        for i in ids
                    ],
                }
            )
        request.state.read = len(results)
        return batch_response(results, errors, started)
    if action in ("create", "associate/default"):
        for item in inputs:
            source_id, target_id = str(item["from"]["id"]), str(item["to"]["id"])
            problem = _pair_problem(api, source, target, source_id, target_id)
            if problem is not None:
                errors.append(problem)
                continue
            api.portal.associate(*_pair(source, source_id, target_id))
            if action == "create":
                results.append(_labels_between(source, source_id, target, target_id))
            else:
                results.append(_default_association(source, source_id, target_id))
        request.state.written = len(results)
        return batch_response(results, errors, started, ok=201 if action == "create" else 200)
    if action == "archive":
        for item in inputs:
            for target_item in item.get("to") or []:
                api.portal.dissociate(
                    *_pair(source, str(item["from"]["id"]), str(target_item["id"]))
                )
        return Response(status_code=204)
    return error(404, "OBJECT_NOT_FOUND", f"unknown association action {action}")


def _pipeline_json(api: HubSpotApi) -> dict[str, Any]:
    stamp = iso_ms(int(datetime(2020, 1, 1, tzinfo=UTC).timestamp() * 1000))
    stages = [
        {
            "id": sid,
            "label": label,
            "displayOrder": i,
            "metadata": {"isClosed": str(closed).lower(), "probability": str(probability)},
            "createdAt": stamp,
            "updatedAt": stamp,
            "archived": False,
            "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
        }
        for i, (sid, label, probability, closed) in enumerate(api.portal.stages())
    ]
    return {
        "id": "default",
        "label": "Sales Pipeline",
        "displayOrder": 0,
        "stages": stages,
        "createdAt": stamp,
        "updatedAt": stamp,
        "archived": False,
    }


async def pipelines(api: HubSpotApi, request: Request) -> Response:
    if request.path_params["object"] not in ("deals", "0-3"):
        return JSONResponse({"results": []})
    return JSONResponse({"results": [_pipeline_json(api)]})


def _deal_pipeline(api: HubSpotApi, request: Request) -> dict[str, Any] | None:
    params = request.path_params
    if params["object"] not in ("deals", "0-3") or params["pipeline_id"] != "default":
        return None
    return _pipeline_json(api)


async def pipeline(api: HubSpotApi, request: Request) -> Response:
    found = _deal_pipeline(api, request)
    if found is None:
        return error(404, "OBJECT_NOT_FOUND", "Unable to find pipeline")
    return JSONResponse(found)


async def stages(api: HubSpotApi, request: Request) -> Response:
    found = _deal_pipeline(api, request)
    if found is None:
        return error(404, "OBJECT_NOT_FOUND", "Unable to find pipeline")
    return JSONResponse({"results": found["stages"]})


async def stage(api: HubSpotApi, request: Request) -> Response:
    found = _deal_pipeline(api, request)
    wanted = request.path_params["stage_id"]
    for candidate in (found or {}).get("stages", []):
        if candidate["id"] == wanted:
            return JSONResponse(candidate)
    return error(404, "OBJECT_NOT_FOUND", f"Unable to find pipeline stage {wanted}")


async def owners(api: HubSpotApi, request: Request) -> Response:
    limit = min(int(request.query_params.get("limit") or 100), 500)
    after = int(request.query_params.get("after") or 0)
    owners = api.portal.owners[after : after + limit]
    body: dict[str, Any] = {"results": owners}
    if after + limit < len(api.portal.owners):
        body["paging"] = {"next": {"after": str(after + limit), "link": None}}
    request.state.read = len(owners)
    return JSONResponse(body)


async def owner(api: HubSpotApi, request: Request) -> Response:
    key = request.path_params["owner_id"]
    by = request.query_params.get("idProperty", "id")
    field = "userId" if by == "userId" else "id"
    for candidate in api.portal.owners:
        if str(candidate[field]) == key:
            request.state.read = 1
            return JSONResponse(candidate)
    return error(404, "OBJECT_NOT_FOUND", f"Unable to find owner {key}")
