"""Tooling API routes of the Salesforce emulator: create and query ``CustomField``."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from icp_sync.sandbox.salesforce.api import SalesforceApi, errors

__all__ = ["create_field", "query_fields"]


async def create_field(api: SalesforceApi, request: Request) -> Response:
    """``POST tooling/sobjects/CustomField``: create a custom field."""
    body = await request.json()
    full_name = str(body.get("FullName", ""))
    metadata = body.get("Metadata") or {}
    field_id = api.org.add_field(full_name, metadata)
    request.state.written = 1
    return JSONResponse(
        {"id": field_id, "success": True, "errors": [], "warnings": [], "infos": []},
        status_code=201,
    )


async def query_fields(api: SalesforceApi, request: Request) -> Response:
    """``GET tooling/query?q=``: ``CustomField`` rows (the only queryable type)."""
    soql = request.query_params.get("q", "")
    match = re.match(r"\s*SELECT\s+(.+?)\s+FROM\s+CustomField\b(.*)$", soql, re.I | re.S)
    if not match:
        return errors(400, "INVALID_TYPE", "only CustomField can be queried in this sandbox")
    wanted = [f.strip() for f in match.group(1).split(",")]
    table = re.search(r"TableEnumOrId\s*=\s*'([^']*)'", match.group(2), re.I)
    rows = api.org.custom_fields(table.group(1) if table else None)
    name = re.search(r"DeveloperName\s*=\s*'([^']*)'", match.group(2), re.I)
    if name:
        rows = [r for r in rows if str(r["DeveloperName"]).casefold() == name.group(1).casefold()]
    unknown = [f for f in wanted if f not in ("Id", "DeveloperName", "TableEnumOrId", "FullName")]
    if unknown:
        return errors(
            400, "INVALID_FIELD", f"No such column '{unknown[0]}' on entity 'CustomField'."
        )
    records = [{"attributes": {"type": "CustomField"}, **{f: r[f] for f in wanted}} for r in rows]
    request.state.read = len(records)
    return JSONResponse(
        {
            "size": len(records),
            "totalSize": len(records),
            "done": True,
            "records": records,
            "entityTypeName": "CustomField",
        }
    )
