"""HubSpot v4 association routes of the emulator: deal <-> company links, listed and batched."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from icp_sync.sandbox.hubspot.api import (
    COMPANY_TO_DEAL,
    DEAL_TO_COMPANY,
    HubSpotApi,
    batch_response,
    error,
    standard_error,
)
from icp_sync.sandbox.hubspot.portal import OBJECTS, HubSpotPortal

__all__ = ["associate_default", "associate_labelled", "associations", "associations_batch"]


def _type_id(source: str) -> int:
    return DEAL_TO_COMPANY if source == "deals" else COMPANY_TO_DEAL


def _kind(object_type: str) -> str:
    """``companies`` / ``deals``: the association endpoints model the deal-company pair only
    (a task's deal is set when the task is created).

    Raises:
        KeyError: Any other object type (answered 404 like an unknown one).
    """
    kind = HubSpotPortal.kind(object_type)
    if kind not in ("companies", "deals"):
        raise KeyError(object_type)
    return kind


def _pair(source: str, source_id: str, target_id: str) -> tuple[str, str]:
    return (source_id, target_id) if source == "deals" else (target_id, source_id)


async def associate_default(api: HubSpotApi, request: Request) -> Response:
    source = _kind(request.path_params["from_object"])
    target = _kind(request.path_params["to_object"])
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
    source = _kind(request.path_params["from_object"])
    target = _kind(request.path_params["to_object"])
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
    source = _kind(request.path_params["object"])
    _kind(request.path_params["to_object"])
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
    source = _kind(request.path_params["from_object"])
    target = _kind(request.path_params["to_object"])
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
