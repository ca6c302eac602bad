"""sObject routes of the Salesforce emulator: describe, records, Collections, getDeleted/Updated.

Row locks and validation rules (injected faults) hit record writes here.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from icp_sync.sandbox.salesforce.api import SalesforceApi, errors
from icp_sync.sandbox.salesforce.org import RecordError, format_datetime
from icp_sync.sandbox.salesforce.soql import SoqlError, parse_datetime_ms

__all__ = [
    "collections",
    "create",
    "deleted",
    "describe",
    "global_describe",
    "metadata",
    "record",
    "updated",
]


_COLLECTION_LIMIT = 200


_ROLLED_BACK = (
    "Record rolled back because not all records were valid and the request was using "
    "AllOrNone header"
)


async def global_describe(api: SalesforceApi, request: Request) -> Response:
    """``GET sobjects``: the objects of the org."""
    objects = [
        {"name": n, "label": n, "keyPrefix": api.org.prefix(n), "queryable": True, "custom": False}
        for n in api.org.sobjects()
    ]
    return JSONResponse({"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": objects})


async def metadata(api: SalesforceApi, request: Request) -> Response:
    """``GET sobjects/{sobject}``: an object's basic information."""
    described = api.org.describe(request.path_params["sobject"])
    summary = {k: described[k] for k in ("name", "label", "keyPrefix", "custom", "queryable")}
    return JSONResponse({"objectDescribe": summary, "recentItems": []})


async def describe(api: SalesforceApi, request: Request) -> Response:
    """``GET sobjects/{sobject}/describe``: fields and their metadata."""
    return JSONResponse(api.org.describe(request.path_params["sobject"]))


def _window(request: Request) -> tuple[int, int]:
    try:
        start = parse_datetime_ms(request.query_params["start"])
        end = parse_datetime_ms(request.query_params["end"])
    except (KeyError, ValueError) as exc:
        raise RecordError(
            "INVALID_REPLICATION_DATE", f"start and end are required ISO datetimes: {exc}"
        ) from None
    return start, end


_MINUTE_MS = 60_000


async def deleted(api: SalesforceApi, request: Request) -> Response:
    """``GET sobjects/{sobject}/deleted``: ids deleted in a window of the retention period.

    Like Salesforce, the seconds of start and end are ignored; a window shorter than a
    minute, or one starting before ``earliestDateAvailable``, is refused with
    ``INVALID_REPLICATION_DATE``.
    """
    start, end = _window(request)
    start, end = start - start % _MINUTE_MS, end - end % _MINUTE_MS
    earliest = api.org.earliest_deleted_ms()
    if end - start < _MINUTE_MS:
        raise RecordError(
            "INVALID_REPLICATION_DATE",
            "startDate must chronologically precede endDate by more than one minute",
        )
    if start < earliest - earliest % _MINUTE_MS:
        raise RecordError(
            "INVALID_REPLICATION_DATE",
            f"startDate is before the earliest date available, {format_datetime(earliest)}",
        )
    covered = max(start, api.org.covered_ms(end))
    rows = api.org.deleted_between(request.path_params["sobject"], start, covered)
    return JSONResponse(
        {
            "deletedRecords": [{"id": i, "deletedDate": format_datetime(t)} for i, t in rows],
            "earliestDateAvailable": format_datetime(earliest),
            "latestDateCovered": format_datetime(covered),
        }
    )


async def updated(api: SalesforceApi, request: Request) -> Response:
    """``GET sobjects/{sobject}/updated``: ids changed in a window."""
    start, end = _window(request)
    ids = api.org.updated_between(request.path_params["sobject"], start, end)
    return JSONResponse(
        {"ids": ids, "latestDateCovered": format_datetime(min(end, api.org.now_ms()))}
    )


def _record_faults(api: SalesforceApi, record_id: str) -> RecordError | None:
    if api.fails_validation(record_id):
        return RecordError(
            "FIELD_CUSTOM_VALIDATION_EXCEPTION",
            "ICP fields cannot change on this record (validation rule)",
        )
    if api.faults.lock_row():
        return RecordError(
            "UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record or 1 records"
        )
    return None


async def create(api: SalesforceApi, request: Request) -> Response:
    """``POST sobjects/{sobject}``: create one record."""
    values = await request.json()
    record_id = api.org.insert(
        request.path_params["sobject"], values, user=api.org.integration_user
    )
    request.state.written = 1
    return JSONResponse({"id": record_id, "success": True, "errors": []}, status_code=201)


async def record(api: SalesforceApi, request: Request) -> Response:
    """``GET / PATCH / DELETE sobjects/{sobject}/{id}``: one record."""
    sobject, record_id = request.path_params["sobject"], request.path_params["record_id"]
    if request.method == "GET":
        fields = request.query_params.get("fields")
        record = api.org.get(sobject, record_id, fields.split(",") if fields else None)
        request.state.read = 1
        name = api.org.canonical_name(sobject)
        return JSONResponse(
            {
                "attributes": {
                    "type": name,
                    "url": f"/services/data/v{api.org.api_version}/sobjects/{name}/{record_id}",
                },
                **record,
            }
        )
    if request.method == "DELETE":
        api.org.delete(sobject, record_id, user=api.org.integration_user)
        return Response(status_code=204)
    fault = _record_faults(api, record_id)
    if fault is not None:
        raise fault
    api.org.update(sobject, record_id, await request.json(), user=api.org.integration_user)
    request.state.written = 1
    return Response(status_code=204)


async def collections(api: SalesforceApi, request: Request) -> Response:
    """``POST / PATCH / DELETE composite/sobjects``: up to 200 records, allOrNone or not."""
    if request.method == "DELETE":
        ids = [i for i in request.query_params.get("ids", "").split(",") if i]
        return _collection_delete(api, request, ids)
    body = await request.json()
    records = body.get("records") if isinstance(body, dict) else None
    if not isinstance(records, list):
        return errors(400, "JSON_PARSER_ERROR", "records is required")
    if len(records) > _COLLECTION_LIMIT:
        return errors(
            400,
            "EXCEEDED_ID_LIMIT",
            "record limit reached. cannot submit more than 200 records into this call",
        )
    all_or_none = bool(body.get("allOrNone", False))
    results: list[dict[str, Any]] = []
    undo: list[tuple[str, str, dict[str, Any] | None]] = []
    with api.org.lock:
        results.extend(_collection_write(api, request.method, item, undo) for item in records)
        if all_or_none and not all(r["success"] for r in results):
            api.org.restore(undo)
            results = [
                r
                if not r["success"]
                else {
                    "id": r.get("id"),
                    "success": False,
                    "errors": [
                        {
                            "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                            "message": _ROLLED_BACK,
                            "fields": [],
                        }
                    ],
                }
                for r in results
            ]
    request.state.written = sum(1 for r in results if r["success"])
    return JSONResponse(results)


def _collection_write(
    api: SalesforceApi, method: str, item: Any, undo: list[tuple[str, str, dict[str, Any] | None]]
) -> dict[str, Any]:
    if not isinstance(item, dict) or "type" not in (item.get("attributes") or {}):
        return {
            "success": False,
            "errors": [
                {
                    "statusCode": "INVALID_TYPE",
                    "message": "Must send a concrete entity type.",
                    "fields": [],
                }
            ],
        }
    sobject = str(item["attributes"]["type"])
    # field names are case-insensitive: the documented examples send "id"
    values = {k: v for k, v in item.items() if k != "attributes" and k.casefold() != "id"}
    record_id = next((v for k, v in item.items() if k.casefold() == "id"), None)
    try:
        if method == "POST":
            if record_id:
                raise RecordError("INVALID_FIELD", "cannot specify Id in an insert call", ["Id"])
            new_id = api.org.insert(sobject, values, user=api.org.integration_user)
            undo.append((sobject, new_id, None))
            return {"id": new_id, "success": True, "errors": []}
        if not record_id:
            raise RecordError("MISSING_ARGUMENT", "Id not specified in an update call", ["Id"])
        fault = _record_faults(api, str(record_id))
        if fault is not None:
            raise fault
        undo.append((sobject, str(record_id), api.org.snapshot(sobject, str(record_id))))
        api.org.update(sobject, str(record_id), values, user=api.org.integration_user)
        return {"id": record_id, "success": True, "errors": []}
    except (RecordError, SoqlError) as exc:
        error = (
            exc.as_error()
            if isinstance(exc, RecordError)
            else {"statusCode": exc.code, "message": str(exc), "fields": []}
        )
        result: dict[str, Any] = {"success": False, "errors": [error]}
        if record_id:
            result["id"] = record_id
        return result


def _collection_delete(api: SalesforceApi, request: Request, ids: list[str]) -> Response:
    results = []
    for record_id in ids:
        sobject = api.org.object_of_id(record_id)
        try:
            if sobject is None:
                raise RecordError("INVALID_ID_FIELD", f"invalid id: {record_id}")
            api.org.delete(sobject, record_id, user=api.org.integration_user)
            results.append({"id": record_id, "success": True, "errors": []})
        except RecordError as exc:
            results.append({"id": record_id, "success": False, "errors": [exc.as_error()]})
    request.state.written = sum(1 for r in results if r["success"])
    return JSONResponse(results)
