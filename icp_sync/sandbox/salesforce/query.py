"""SOQL query routes of the Salesforce emulator: query, queryAll and queryMore pages.

Results are served in batches of 200 to 2,000 rows (``Sforce-Query-Options``); further
pages are read through a query locator (``nextRecordsUrl``), the newest 200 kept.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from icp_sync.sandbox.salesforce.api import SalesforceApi, errors
from icp_sync.sandbox.salesforce.org import make_id

__all__ = ["query", "query_all", "query_more"]


_CURSORS = 200


def _batch_size(request: Request) -> int:
    options = request.headers.get("sforce-query-options", "")
    match = re.search(r"batchSize\s*=\s*(\d+)", options)
    size = int(match.group(1)) if match else 2000
    return max(200, min(2000, size))


def _page(
    api: SalesforceApi,
    request: Request,
    *,
    rows: list[dict[str, Any]],
    sobject: str,
    include_deleted: bool,
    offset: int,
    locator: str | None,
) -> JSONResponse:
    size = _batch_size(request)
    chunk = rows[offset : offset + size]
    version = request.path_params["version"]
    resource = "queryAll" if include_deleted else "query"
    body: dict[str, Any] = {
        "totalSize": len(rows),
        "done": offset + size >= len(rows),
        "records": [
            {
                "attributes": {
                    "type": sobject,
                    "url": f"/services/data/{version}/sobjects/{sobject}/{r['Id']}",
                },
                **r,
            }
            if "Id" in r
            else {"attributes": {"type": sobject}, **r}
            for r in chunk
        ],
    }
    if not body["done"]:
        if locator is None:
            locator = make_id("01g", int.from_bytes(secrets.token_bytes(5), "big"))
            with api.lock:
                api.cursors[locator] = (rows, sobject, include_deleted)
                while len(api.cursors) > _CURSORS:
                    api.cursors.popitem(last=False)
        body["nextRecordsUrl"] = f"/services/data/{version}/{resource}/{locator}-{offset + size}"
    request.state.read = len(chunk)
    return JSONResponse(body)


async def _run_query(api: SalesforceApi, request: Request, *, include_deleted: bool) -> Response:
    soql = request.query_params.get("q")
    if not soql:
        return errors(400, "MALFORMED_QUERY", "A query string has to be specified")
    # on a worker thread, as a real org serves other requests while one query runs
    parsed, rows = await run_in_threadpool(api.org.query, soql, include_deleted=include_deleted)
    if parsed.count:
        request.state.read = 0
        return JSONResponse({"totalSize": len(rows), "done": True, "records": []})
    return _page(
        api,
        request,
        rows=rows,
        sobject=parsed.sobject,
        include_deleted=include_deleted,
        offset=0,
        locator=None,
    )


async def query(api: SalesforceApi, request: Request) -> Response:
    """``GET query?q=``: live records, first page."""
    return await _run_query(api, request, include_deleted=False)


async def query_all(api: SalesforceApi, request: Request) -> Response:
    """``GET queryAll?q=``: live and deleted records, first page."""
    return await _run_query(api, request, include_deleted=True)


async def query_more(api: SalesforceApi, request: Request) -> Response:
    """``GET query/{locator}-{offset}``: a further page of a query."""
    locator, _, offset = request.path_params["cursor"].rpartition("-")
    with api.lock:
        cursor = api.cursors.get(locator)
    if cursor is None or not offset.isdigit():
        return errors(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
    rows, sobject, include_deleted = cursor
    return _page(
        api,
        request,
        rows=rows,
        sobject=sobject,
        include_deleted=include_deleted,
        offset=int(offset),
        locator=locator,
    )
