"""The Salesforce API emulator as an ASGI app: REST, OAuth, Tooling and Bulk API 2.0 routes.

Served over TLS (simple-salesforce only speaks https). Every API call is authenticated,
counted against the org's daily limit (``Sforce-Limit-Info`` on every answer), recorded in
the port's :class:`~icp_sync.sandbox.accounting.ApiStats`, and exposed to the fault
profile: 503s, concurrency limits, expiring sessions, row locks and validation rules.
"""

from __future__ import annotations

from email.utils import formatdate
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from icp_sync.sandbox.accounting import ApiStats
from icp_sync.sandbox.control import control_routes
from icp_sync.sandbox.faults import FaultInjector
from icp_sync.sandbox.salesforce import auth, query, sobjects, tooling
from icp_sync.sandbox.salesforce.api import (
    Handler,
    SalesforceApi,
    SalesforceCredentials,
    endpoint,
    run_handler,
)
from icp_sync.sandbox.salesforce.composite import Composite
from icp_sync.sandbox.salesforce.org import SalesforceOrg, format_datetime

__all__ = ["SalesforceCredentials", "create_salesforce_app"]


async def _versions(request: Request) -> JSONResponse:
    version = request.app.state.api.org.api_version
    return JSONResponse(
        [{"label": "Sandbox", "url": f"/services/data/v{version}", "version": version}]
    )


async def _resources(api: SalesforceApi, request: Request) -> Response:
    version = request.path_params["version"]
    names = ("sobjects", "query", "queryAll", "limits", "composite", "tooling", "jobs")
    return JSONResponse({n: f"/services/data/{version}/{n}" for n in names})


async def _limits(api: SalesforceApi, request: Request) -> Response:
    return JSONResponse(api.org.limits())


async def _set_limits(request: Request) -> JSONResponse:
    api: SalesforceApi = request.app.state.api
    body = await request.json()
    with api.lock:
        if "daily_api_limit" in body:
            api.org.daily_api_limit = int(body["daily_api_limit"])
        if "api_used" in body:
            api.org.api_used = int(body["api_used"])
    return JSONResponse({"daily_api_limit": api.org.daily_api_limit, "api_used": api.org.api_used})


class _OrgDate:
    """Stamps every answer's ``Date`` header with the org's clock (as a real org's server)."""

    def __init__(self, app: ASGIApp, org: SalesforceOrg) -> None:
        self.app = app
        self.org = org

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def stamped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"date"]
                date = formatdate(self.org.now_ms() / 1000, usegmt=True)
                message = {**message, "headers": [*headers, (b"date", date.encode())]}
            await send(message)

        await self.app(scope, receive, stamped)


async def _clock(request: Request) -> JSONResponse:
    """``GET|POST /__sandbox/clock``: the org's clock; ``{"advance_seconds": n}`` moves it."""
    api: SalesforceApi = request.app.state.api
    if request.method == "POST":
        body = await request.json()
        api.org.advance(float(body.get("advance_seconds", 0)))
    return JSONResponse({"now": format_datetime(api.org.now_ms()), "offset_ms": api.org.offset_ms})


async def _replication(request: Request) -> JSONResponse:
    """``GET|POST /__sandbox/replication``: the getDeleted retention window, in days."""
    api: SalesforceApi = request.app.state.api
    if request.method == "POST":
        body = await request.json()
        days = float(body.get("retention_days", api.org.retention_days))
        if days <= 0:
            return JSONResponse({"error": "retention_days must be positive"}, status_code=400)
        with api.org.lock:
            api.org.retention_days = days
    return JSONResponse({"retention_days": api.org.retention_days})


async def _purge(request: Request) -> JSONResponse:
    """``POST /__sandbox/purge``: empty an object's recycle bin (``{"sobject": "Account"}``)."""
    api: SalesforceApi = request.app.state.api
    body = await request.json()
    purged = api.org.purge(str(body.get("sobject", "Account")))
    return JSONResponse({"purged": purged})


def _uncounted(api: SalesforceApi, handler: Handler) -> Any:
    async def run(request: Request) -> Response:
        request.state.read = 0
        request.state.written = 0
        return await run_handler(api, handler, request)

    return run


def create_salesforce_app(
    org: SalesforceOrg,
    *,
    credentials: SalesforceCredentials,
    stats: ApiStats,
    faults: FaultInjector,
) -> Starlette:
    """The emulator as an ASGI app, bound to an org, its credentials, counters and faults."""
    api = SalesforceApi(org, credentials, stats, faults)
    data = "/services/data/{version}"
    # the same handlers, uncounted, for the subrequests of a composite call
    inner: list[Route] = []

    def route(path: str, name: str, handler: Handler, methods: list[str]) -> list[Route]:
        wrapped = endpoint(api, name, handler)
        paths = [path, path + "/"] if not path.endswith("/") else [path]
        if name != "composite" and not name.startswith(("jobs", "tooling", "limits", "resources")):
            inner.extend(Route(p, _uncounted(api, handler), methods=methods) for p in paths)
        return [Route(p, wrapped, methods=methods) for p in paths]

    routes = [
        Route("/services/data", _versions, methods=["GET"]),
        Route("/services/data/", _versions, methods=["GET"]),
        Route("/services/oauth2/token", auth.token, methods=["POST"]),
        Route("/services/Soap/u/{version}", auth.soap_login, methods=["POST"]),
        Route("/__sandbox/limits", _set_limits, methods=["POST"]),
        Route("/__sandbox/replication", _replication, methods=["GET", "POST"]),
        Route("/__sandbox/purge", _purge, methods=["POST"]),
        Route("/__sandbox/clock", _clock, methods=["GET", "POST"]),
        *control_routes(stats, faults),
        *route(data, "resources", _resources, ["GET"]),
        *route(f"{data}/query", "query", query.query, ["GET"]),
        *route(f"{data}/queryAll", "queryAll", query.query_all, ["GET"]),
        *route(f"{data}/query/{{cursor}}", "queryMore", query.query_more, ["GET"]),
        *route(f"{data}/queryAll/{{cursor}}", "queryAllMore", query.query_more, ["GET"]),
        *route(f"{data}/limits", "limits", _limits, ["GET"]),
        *route(f"{data}/sobjects", "sobjects", sobjects.global_describe, ["GET"]),
        *route(f"{data}/sobjects/{{sobject}}", "sobjects/create", sobjects.create, ["POST"]),
        *route(f"{data}/sobjects/{{sobject}}", "sobjects/metadata", sobjects.metadata, ["GET"]),
        *route(f"{data}/sobjects/{{sobject}}/describe", "describe", sobjects.describe, ["GET"]),
        *route(f"{data}/sobjects/{{sobject}}/deleted", "getDeleted", sobjects.deleted, ["GET"]),
        *route(f"{data}/sobjects/{{sobject}}/updated", "getUpdated", sobjects.updated, ["GET"]),
        *route(
            f"{data}/sobjects/{{sobject}}/{{record_id}}",
            "sobjects/record",
            sobjects.record,
            ["GET", "PATCH", "DELETE"],
        ),
        *route(
            f"{data}/composite/sobjects",
            "composite/sobjects",
            sobjects.collections,
            ["POST", "PATCH", "DELETE"],
        ),
        *route(f"{data}/composite", "composite", Composite(Starlette(routes=inner)), ["POST"]),
        *route(
            f"{data}/tooling/sobjects/CustomField",
            "tooling/sobjects/CustomField",
            tooling.create_field,
            ["POST"],
        ),
        *route(f"{data}/tooling/query", "tooling/query", tooling.query_fields, ["GET"]),
        *api.bulk.routes(route, data),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(_OrgDate, org=org)])
    app.state.api = api
    return app
