"""The HubSpot API emulator as an ASGI app: the routes of every API family, assembled.

It serves CRM v3 objects, search, properties, v4 associations, deal pipelines and stages,
and owners.

Served over plain HTTP. Every call is authenticated (private-app token, or OAuth tokens
from ``/oauth/v1/token``), rate limited like a portal (a rolling ten-second window, a
daily budget, and a separate per-second limit for search) with the
``X-HubSpot-RateLimit-*`` headers on every answer, counted in the port's
:class:`~icp_sync.sandbox.accounting.ApiStats`, and exposed to the fault profile.
Batch endpoints answer 200 / 201, or 207 with ``errors`` when some inputs fail (for batch
writes only when the inputs carry ``objectWriteTraceId``; see :mod:`.records`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from icp_sync.sandbox.accounting import ApiStats
from icp_sync.sandbox.control import control_routes
from icp_sync.sandbox.faults import FaultInjector
from icp_sync.sandbox.hubspot import associations, records, schema
from icp_sync.sandbox.hubspot.api import (
    Handler,
    HubSpotApi,
    HubSpotCredentials,
    HubSpotLimits,
    endpoint,
    oauth_token,
)
from icp_sync.sandbox.hubspot.portal import HubSpotPortal
from icp_sync.sandbox.hubspot.search import search

__all__ = ["HubSpotCredentials", "HubSpotLimits", "HubSpotPortal", "create_hubspot_app"]


_LIMIT_KEYS = ("ten_secondly", "daily", "search_per_second", "window_ms", "search_cap")


async def _set_limits(request: Request) -> JSONResponse:
    """``POST`` changes the limits (and by default resets the windows and the refusal
    counts); ``GET`` reads them, with the calls refused so far by policy."""
    api: HubSpotApi = request.app.state.api
    if request.method == "POST":
        body = await request.json()
        fields = {k: int(body[k]) for k in _LIMIT_KEYS if k in body}
        with api.limiter.lock:
            api.limiter.limits = replace(api.limiter.limits, **fields)
            if body.get("reset", True):
                api.limiter.burst.clear()
                api.limiter.search.clear()
                api.limiter.day = 0
                api.limiter.refused.clear()
    limits = api.limiter.limits
    with api.limiter.lock:
        refused = dict(api.limiter.refused)
    return JSONResponse({**{k: getattr(limits, k) for k in _LIMIT_KEYS}, "refused": refused})


def create_hubspot_app(
    portal: HubSpotPortal,
    *,
    credentials: HubSpotCredentials,
    stats: ApiStats,
    faults: FaultInjector,
    limits: HubSpotLimits | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Starlette:
    """The emulator as an ASGI app, bound to a portal, its credentials, counters and faults."""
    api = HubSpotApi(portal, credentials, stats, faults, limits or HubSpotLimits(), clock)

    def route(
        path: str, name: str, handler: Handler, methods: list[str], *, search: bool = False
    ) -> Route:
        return Route(path, endpoint(api, name, handler, search=search), methods=methods)

    objects = "/crm/v3/objects/{object}"
    properties = "/crm/v3/properties/{object}"
    routes = [
        Route("/oauth/v1/token", oauth_token, methods=["POST"]),
        Route("/__sandbox/limits", _set_limits, methods=["GET", "POST"]),
        *control_routes(stats, faults),
        route(objects, "objects/{object}", records.list_records, ["GET"]),
        route(objects, "objects/{object}", records.create, ["POST"]),
        route(f"{objects}/batch/read", "objects/{object}/batch/read", records.batch_read, ["POST"]),
        route(
            f"{objects}/batch/create",
            "objects/{object}/batch/create",
            records.batch_create,
            ["POST"],
        ),
        route(
            f"{objects}/batch/update",
            "objects/{object}/batch/update",
            records.batch_update,
            ["POST"],
        ),
        route(
            f"{objects}/batch/upsert",
            "objects/{object}/batch/upsert",
            records.batch_upsert,
            ["POST"],
        ),
        route(
            f"{objects}/batch/archive",
            "objects/{object}/batch/archive",
            records.batch_archive,
            ["POST"],
        ),
        route(f"{objects}/search", "objects/{object}/search", search, ["POST"], search=True),
        route(
            f"{objects}/{{record_id}}",
            "objects/{object}/record",
            records.one,
            ["GET", "PATCH", "DELETE"],
        ),
        route(properties, "properties/{object}", schema.properties, ["GET", "POST"]),
        route(
            f"{properties}/batch/{{action}}",
            "properties/{object}/batch/{action}",
            schema.properties_batch,
            ["POST"],
        ),
        route(f"{properties}/groups", "properties/{object}/groups", schema.groups, ["GET", "POST"]),
        route(
            f"{properties}/groups/{{name}}",
            "properties/{object}/group",
            schema.group,
            ["GET", "PATCH", "DELETE"],
        ),
        route(
            f"{properties}/{{name}}",
            "properties/{object}/property",
            schema.property_,
            ["GET", "PATCH", "DELETE"],
        ),
        route(
            "/crm/v4/objects/{from_object}/{from_id}/associations/default/{to_object}/{to_id}",
            "associations/default",
            associations.associate_default,
            ["PUT"],
        ),
        route(
            "/crm/v4/objects/{from_object}/{from_id}/associations/{to_object}/{to_id}",
            "associations/labelled",
            associations.associate_labelled,
            ["PUT", "DELETE"],
        ),
        route(
            "/crm/v4/objects/{object}/{record_id}/associations/{to_object}",
            "associations/list",
            associations.associations,
            ["GET"],
        ),
        route(
            "/crm/v4/associations/{from_object}/{to_object}/batch/{action:path}",
            "associations/batch/{action}",
            associations.associations_batch,
            ["POST"],
        ),
        route("/crm/v3/pipelines/{object}", "pipelines/{object}", schema.pipelines, ["GET"]),
        route(
            "/crm/v3/pipelines/{object}/{pipeline_id}",
            "pipelines/{object}/pipeline",
            schema.pipeline,
            ["GET"],
        ),
        route(
            "/crm/v3/pipelines/{object}/{pipeline_id}/stages",
            "pipelines/{object}/stages",
            schema.stages,
            ["GET"],
        ),
        route(
            "/crm/v3/pipelines/{object}/{pipeline_id}/stages/{stage_id}",
            "pipelines/{object}/stage",
            schema.stage,
            ["GET"],
        ),
        route("/crm/v3/owners", "owners", schema.owners, ["GET"]),
        route("/crm/v3/owners/", "owners", schema.owners, ["GET"]),
        route("/crm/v3/owners/{owner_id}", "owners/owner", schema.owner, ["GET"]),
    ]
    app = Starlette(routes=routes)
    app.state.api = api
    return app
