"""HubSpot CRM v3 object routes of the emulator: list, read, create, update, archive, batch.

Batches take at most 100 inputs and answer 200 (201 for create), or 207 with ``errors``
and ``numErrors`` when some inputs fail, as the SDK expects.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from icp_sync.sandbox.hubspot_api import (
    HubSpotApi,
    batch_inputs,
    batch_response,
    error,
    object_kind,
    problem_error,
    standard_error,
    wanted,
    with_associations,
)
from icp_sync.sandbox.hubspot_portal import PropertyError, record_json

__all__ = [
    "batch_archive",
    "batch_create",
    "batch_read",
    "batch_update",
    "batch_upsert",
    "create",
    "list_records",
    "lookup",
    "one",
]


async def list_records(api: HubSpotApi, request: Request) -> Response:
    kind = object_kind(request)
    params = request.query_params
    limit = min(int(params.get("limit") or 10), 100)
    after = params.get("after")
    archived = params.get("archived", "false").lower() == "true"
    shown = wanted(params.getlist("properties"))
    associations = wanted(params.getlist("associations"))
    with api.portal.lock:
        ids = sorted(
            (r.id for r in api.portal.records[kind].values() if r.archived == archived), key=int
        )
        start = 0
        if after:
            start = next((i for i, v in enumerate(ids) if int(v) > int(after)), len(ids))
        page = ids[start : start + limit]
        results = [
            with_associations(
                api, kind, record_json(api.portal.records[kind][i], shown), i, associations
            )
            for i in page
        ]
    body: dict[str, Any] = {"results": results}
    if start + limit < len(ids):
        body["paging"] = {"next": {"after": page[-1], "link": f"?after={page[-1]}"}}
    request.state.read = len(results)
    return JSONResponse(body)


async def create(api: HubSpotApi, request: Request) -> Response:
    kind = object_kind(request)
    body = await request.json()
    values = api.portal.checked(kind, body.get("properties") or {}, creating=True)
    record = api.portal.write(kind, None, values)
    _associate_inputs(api, kind, record.id, body.get("associations") or [])
    request.state.written = 1
    return JSONResponse(record_json(record, list(values)), status_code=201)


def _associate_inputs(
    api: HubSpotApi, kind: str, record_id: str, associations: list[dict[str, Any]]
) -> None:
    for association in associations:
        target = str((association.get("to") or {}).get("id", ""))
        if kind == "deals" and target:
            api.portal.associate(record_id, target)
        elif kind == "companies" and target:
            api.portal.associate(target, record_id)


def lookup(api: HubSpotApi, kind: str, key: str, id_property: str | None) -> Any:
    if id_property and id_property != "hs_object_id":
        return api.portal.find(kind, id_property, key)
    return api.portal.record(kind, key)


async def one(api: HubSpotApi, request: Request) -> Response:
    kind = object_kind(request)
    key = request.path_params["record_id"]
    params = request.query_params
    record = lookup(api, kind, key, params.get("idProperty"))
    if record is None:
        return error(404, "OBJECT_NOT_FOUND", "Object not found.  objectId are usually numeric.")
    if request.method == "DELETE":
        api.portal.archive(kind, record.id)
        return Response(status_code=204)
    if request.method == "GET":
        request.state.read = 1
        body = record_json(record, wanted(params.getlist("properties")))
        return JSONResponse(
            with_associations(api, kind, body, record.id, wanted(params.getlist("associations")))
        )
    if api.fails_validation(record.id):
        raise PropertyError(
            "INVALID_OPTION", "icp_tier", "the portal's validation rule refused this record"
        )
    values = api.portal.checked(kind, (await request.json()).get("properties") or {})
    updated = api.portal.write(kind, record.id, values)
    request.state.written = 1
    return JSONResponse(record_json(updated, list(values)))


async def batch_read(api: HubSpotApi, request: Request) -> Response:
    kind = object_kind(request)
    started = int(time.time() * 1000)
    body = await request.json()
    inputs = batch_inputs(body)
    wanted = body.get("properties") or None
    results, missing = [], []
    for item in inputs:
        record = lookup(api, kind, str(item.get("id")), body.get("idProperty"))
        if record is None:
            missing.append(str(item.get("id")))
        else:
            results.append(record_json(record, wanted))
    errors = (
        [
            standard_error(
                "OBJECT_NOT_FOUND",
                "Could not get some objects, they may be deleted or not exist.",
                {"ids": missing},
            )
        ]
        if missing
        else []
    )
    request.state.read = len(results)
    return batch_response(results, errors, started)


async def batch_create(api: HubSpotApi, request: Request) -> Response:
    kind = object_kind(request)
    started = int(time.time() * 1000)
    inputs = batch_inputs(await request.json())
    checked = [
        api.portal.checked(kind, item.get("properties") or {}, creating=True) for item in inputs
    ]
    results = []
    for item, values in zip(inputs, checked, strict=True):
        record = api.portal.write(kind, None, values)
        _associate_inputs(api, kind, record.id, item.get("associations") or [])
        results.append(record_json(record, list(values)))
    request.state.written = len(results)
    return batch_response(results, [], started, ok=201)


async def batch_update(api: HubSpotApi, request: Request) -> Response:
    kind = object_kind(request)
    started = int(time.time() * 1000)
    body = await request.json()
    inputs = batch_inputs(body)
    results, errors = [], []
    for item in inputs:
        key = str(item.get("id"))
        record = lookup(api, kind, key, item.get("idProperty"))
        if record is None:
            errors.append(
                standard_error("OBJECT_NOT_FOUND", f"Object {key} not found", {"ids": [key]})
            )
            continue
        try:
            if api.fails_validation(record.id):
                raise PropertyError(
                    "INVALID_OPTION", "icp_tier", "the portal's validation rule refused this record"
                )
            values = api.portal.checked(kind, item.get("properties") or {})
        except PropertyError as problem:
            errors.append(problem_error(record.id, problem))
            continue
        results.append(record_json(api.portal.write(kind, record.id, values), list(values)))
    request.state.written = len(results)
    return batch_response(results, errors, started)


async def batch_upsert(api: HubSpotApi, request: Request) -> Response:
    kind = object_kind(request)
    started = int(time.time() * 1000)
    inputs = batch_inputs(await request.json())
    results, errors = [], []
    for item in inputs:
        key, prop = str(item.get("id")), item.get("idProperty") or "hs_object_id"
        definition = api.portal.properties[kind].get(prop)
        if prop != "hs_object_id" and (definition is None or not definition.has_unique_value):
            errors.append(
                standard_error(
                    "VALIDATION_ERROR", f"{prop} is not a unique property", {"ids": [key]}
                )
            )
            continue
        record = lookup(api, kind, key, prop)
        try:
            if record is not None and api.fails_validation(record.id):
                raise PropertyError(
                    "INVALID_OPTION", "icp_tier", "the portal's validation rule refused this record"
                )
            values = api.portal.checked(
                kind,
                (item.get("properties") or {})
                | ({prop: key} if record is None and prop != "hs_object_id" else {}),
                creating=record is None,
            )
        except PropertyError as problem:
            errors.append(problem_error(key, problem))
            continue
        written = api.portal.write(kind, record.id if record else None, values)
        results.append(record_json(written, list(values)) | {"new": record is None})
    request.state.written = len(results)
    return batch_response(results, errors, started)


async def batch_archive(api: HubSpotApi, request: Request) -> Response:
    kind = object_kind(request)
    for item in batch_inputs(await request.json()):
        api.portal.archive(kind, str(item.get("id")))
    return Response(status_code=204)
