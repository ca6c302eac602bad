"""HubSpot metadata routes of the emulator: properties and groups, deal pipelines, owners."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from icp_sync.sandbox.hubspot.api import (
    HubSpotApi,
    batch_inputs,
    batch_response,
    error,
    object_kind,
    standard_error,
)
from icp_sync.sandbox.hubspot.properties import PropertyDef, iso_ms

__all__ = [
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
