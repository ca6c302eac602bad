"""HubSpot CRM v3 object routes of the emulator: list, read, create, update, archive, batch.

Batches take at most 100 inputs (50 when property histories are read). Batch reads answer
200, or 207 with ``errors`` for ids that do not exist. Batch writes follow HubSpot's
multi-status rule: when every input carries an ``objectWriteTraceId`` the valid inputs are
written and the others come back in ``errors`` (207); without trace ids one bad input
refuses the whole batch (400, or 404 for an unknown id) and nothing is written. A batch
that names a record twice, or upserts by a property that is not unique, is refused (400).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from icp_sync.sandbox.hubspot.api import (
    BATCH_LIMIT,
    HISTORY_BATCH_LIMIT,
    HubSpotApi,
    RefusedError,
    batch_inputs,
    batch_response,
    error,
    invalid,
    object_kind,
    problem_error,
    refuse_duplicates,
    standard_error,
    wanted,
    with_associations,
)
from icp_sync.sandbox.hubspot.portal import OBJECTS, TASK_TO_DEAL, record_json
from icp_sync.sandbox.hubspot.properties import PropertyError, iso_ms

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

_NOT_FOUND = "Object not found.  objectId are usually numeric."


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
        types = {int(t.get("associationTypeId", 0)) for t in association.get("types") or []}
        if kind == "tasks" and target and TASK_TO_DEAL in types:
            api.portal.task_deals.setdefault(record_id, set()).add(target)
        elif kind == "deals" and target:
            api.portal.associate(record_id, target)
        elif kind == "companies" and target:
            api.portal.associate(target, record_id)


def lookup(
    api: HubSpotApi, kind: str, key: str, id_property: str | None, *, archived: bool = False
) -> Any:
    if id_property and id_property != "hs_object_id":
        return None if archived else api.portal.find(kind, id_property, key)
    return api.portal.record(kind, key, archived=archived)


def _validation_rule(api: HubSpotApi, record_id: str, values: dict[str, Any]) -> None:
    """The fault profile's validation rule: same record, same answer, on the first property.

    Raises:
        PropertyError: The rule refuses this record.
    """
    if values and api.fails_validation(record_id):
        raise PropertyError(
            "INVALID_OPTION",
            next(iter(values)),
            "the portal's validation rule refused this value on this record",
        )


async def one(api: HubSpotApi, request: Request) -> Response:
    kind = object_kind(request)
    key = request.path_params["record_id"]
    params = request.query_params
    archived = request.method == "GET" and params.get("archived", "false").lower() == "true"
    record = lookup(api, kind, key, params.get("idProperty"), archived=archived)
    if record is None:
        return error(404, "OBJECT_NOT_FOUND", _NOT_FOUND)
    if request.method == "DELETE":
        api.portal.archive(kind, record.id)
        request.state.written = 1
        return Response(status_code=204)
    if request.method == "GET":
        request.state.read = 1
        body = record_json(record, wanted(params.getlist("properties")))
        return JSONResponse(
            with_associations(api, kind, body, record.id, wanted(params.getlist("associations")))
        )
    properties = (await request.json()).get("properties") or {}
    _validation_rule(api, record.id, properties)
    values = api.portal.checked(kind, properties)
    updated = api.portal.write(kind, record.id, values)
    request.state.written = 1
    return JSONResponse(record_json(updated, list(values)))


def _history(record: Any, names: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The current value of each property as its one-entry history."""
    stamp = iso_ms(record.updated)
    return {
        name: [{"value": value, "timestamp": stamp, "sourceType": "API"}]
        for name in names
        if (value := record.properties.get(name)) is not None
    }


async def batch_read(api: HubSpotApi, request: Request) -> Response:
    kind = object_kind(request)
    started = int(time.time() * 1000)
    body = await request.json()
    history = list(body.get("propertiesWithHistory") or [])
    inputs = batch_inputs(body, limit=HISTORY_BATCH_LIMIT if history else BATCH_LIMIT)
    shown = body.get("properties") or None
    results, missing = [], []
    for item in inputs:
        record = lookup(api, kind, str(item.get("id")), body.get("idProperty"))
        if record is None:
            missing.append(str(item.get("id")))
            continue
        result = record_json(record, shown)
        if history:
            result["propertiesWithHistory"] = _history(record, history)
        results.append(result)
    errors = (
        [
            standard_error(
                "OBJECT_NOT_FOUND",
                "Could not get some objects, they may be deleted or not exist. Check that ids "
                "are valid numbers and that the objects are not deleted.",
                {"ids": missing},
            )
        ]
        if missing
        else []
    )
    request.state.read = len(results)
    return batch_response(results, errors, started)


@dataclass(slots=True)
class _Failure:
    """One input of a batch write that HubSpot would not write."""

    item: dict[str, Any]
    key: str
    problem: PropertyError | None  # None: no record with that id

    def as_error(self) -> dict[str, Any]:
        if self.problem is None:
            body = standard_error("OBJECT_NOT_FOUND", _NOT_FOUND, {"ids": [self.key]})
        else:
            body = problem_error(self.key, self.problem)
        trace = self.item.get("objectWriteTraceId")
        if trace is not None:
            body["context"]["objectWriteTraceId"] = [str(trace)]
        return body


def _multi_status(inputs: list[dict[str, Any]]) -> bool:
    """HubSpot answers per input (207) only when every input carries an objectWriteTraceId."""
    return bool(inputs) and all(i.get("objectWriteTraceId") is not None for i in inputs)


def _traced(result: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    if item.get("objectWriteTraceId") is not None:
        result["objectWriteTraceId"] = str(item["objectWriteTraceId"])
    return result


def _whole_batch_refusal(failures: list[_Failure]) -> Response:
    """Without multi-status, bad inputs refuse the whole batch: 400, or 404 for unknown ids."""
    problems = [f.problem for f in failures if f.problem is not None]
    if problems:
        return invalid(problems)
    return error(404, "OBJECT_NOT_FOUND", _NOT_FOUND, context={"ids": [f.key for f in failures]})


async def batch_create(api: HubSpotApi, request: Request) -> Response:
    kind = object_kind(request)
    started = int(time.time() * 1000)
    inputs = batch_inputs(await request.json())
    planned: list[tuple[dict[str, Any], dict[str, str | None]]] = []
    failures: list[_Failure] = []
    for position, item in enumerate(inputs):
        try:
            planned.append(
                (item, api.portal.checked(kind, item.get("properties") or {}, creating=True))
            )
        except PropertyError as problem:
            failures.append(_Failure(item, str(item.get("objectWriteTraceId", position)), problem))
    if failures and not _multi_status(inputs):
        return _whole_batch_refusal(failures)
    results = []
    for item, values in planned:
        record = api.portal.write(kind, None, values)
        _associate_inputs(api, kind, record.id, item.get("associations") or [])
        results.append(_traced(record_json(record, list(values)), item))
    request.state.written = len(results)
    return batch_response(results, [f.as_error() for f in failures], started, ok=201)


async def batch_update(api: HubSpotApi, request: Request) -> Response:
    kind = object_kind(request)
    started = int(time.time() * 1000)
    inputs = batch_inputs(await request.json())
    refuse_duplicates(inputs)
    planned: list[tuple[dict[str, Any], str, dict[str, str | None]]] = []
    failures: list[_Failure] = []
    for item in inputs:
        key = str(item.get("id"))
        record = lookup(api, kind, key, item.get("idProperty"))
        if record is None:
            failures.append(_Failure(item, key, None))
            continue
        properties = item.get("properties") or {}
        try:
            _validation_rule(api, record.id, properties)
            planned.append((item, record.id, api.portal.checked(kind, properties)))
        except PropertyError as problem:
            failures.append(_Failure(item, record.id, problem))
    if failures and not _multi_status(inputs):
        return _whole_batch_refusal(failures)
    results = [
        _traced(record_json(api.portal.write(kind, record_id, values), list(values)), item)
        for item, record_id, values in planned
    ]
    request.state.written = len(results)
    return batch_response(results, [f.as_error() for f in failures], started)


async def batch_upsert(api: HubSpotApi, request: Request) -> Response:
    kind = object_kind(request)
    started = int(time.time() * 1000)
    inputs = batch_inputs(await request.json())
    refuse_duplicates(inputs)
    for item in inputs:
        prop = item.get("idProperty") or "hs_object_id"
        definition = api.portal.properties[kind].get(prop)
        if prop != "hs_object_id" and (definition is None or not definition.has_unique_value):
            raise RefusedError(
                f"Unable to perform update/upsert by non-unique {OBJECTS[kind]} property {prop}"
            )
    planned: list[tuple[dict[str, Any], str | None, dict[str, str | None]]] = []
    failures: list[_Failure] = []
    for item in inputs:
        key, prop = str(item.get("id")), item.get("idProperty") or "hs_object_id"
        record = lookup(api, kind, key, prop)
        if record is None and prop == "hs_object_id":
            failures.append(_Failure(item, key, None))  # a record id cannot be chosen
            continue
        properties = dict(item.get("properties") or {})
        try:
            if record is not None:
                _validation_rule(api, record.id, properties)
            if prop != "hs_object_id":
                properties[prop] = key  # results carry their key (they are not in input order)
            values = api.portal.checked(kind, properties, creating=record is None)
        except PropertyError as problem:
            failures.append(_Failure(item, key, problem))
            continue
        planned.append((item, record.id if record is not None else None, values))
    if failures and not _multi_status(inputs):
        return _whole_batch_refusal(failures)
    results = []
    for item, record_id, values in planned:
        written = api.portal.write(kind, record_id, values)
        result = record_json(written, list(values)) | {"new": record_id is None}
        results.append(_traced(result, item))
    request.state.written = len(results)
    return batch_response(results, [f.as_error() for f in failures], started)


async def batch_archive(api: HubSpotApi, request: Request) -> Response:
    kind = object_kind(request)
    archived = sum(
        api.portal.archive(kind, str(item.get("id"))) for item in batch_inputs(await request.json())
    )
    request.state.written = archived
    return Response(status_code=204)
