"""The sandbox control endpoints, served on every emulator port (contract).

- ``GET /__sandbox/stats``: API accounting (see :mod:`icp_sync.sandbox.accounting`).
- ``POST /__sandbox/reset-stats``: zero the counters.
- ``GET /__sandbox/faults`` / ``POST /__sandbox/faults``: read or set the fault profile; the
  body is a JSON object of :class:`~icp_sync.sandbox.faults.FaultProfile` fields, optionally
  with ``"profile": "<name>"`` as the starting point.

Control calls are never counted as API calls and never fail by injection.
"""

from __future__ import annotations

import json
from dataclasses import replace

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from icp_sync.sandbox.accounting import ApiStats
from icp_sync.sandbox.faults import PROFILES, FaultInjector, from_mapping

__all__ = ["CONTROL_PREFIX", "control_routes"]

CONTROL_PREFIX = "/__sandbox/"


def control_routes(stats: ApiStats, faults: FaultInjector) -> list[Route]:
    """Routes for the control endpoints, bound to one port's counters and fault injector."""

    async def get_stats(_: Request) -> JSONResponse:
        return JSONResponse(stats.snapshot())

    async def reset_stats(_: Request) -> JSONResponse:
        stats.reset()
        return JSONResponse(stats.snapshot())

    async def get_faults(_: Request) -> JSONResponse:
        return JSONResponse(faults.profile.as_dict())

    async def set_faults(request: Request) -> JSONResponse:
        try:
            body = json.loads(await request.body() or b"{}")
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
            name = body.pop("profile", None)
            base = faults.profile if name is None else PROFILES.get(str(name))
            if base is None:
                raise ValueError(f"unknown fault profile {name!r}; known: {', '.join(PROFILES)}")
            profile = from_mapping({**replace(base).as_dict(), **body})
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        faults.set_profile(profile)
        return JSONResponse(profile.as_dict())

    return [
        Route(f"{CONTROL_PREFIX}stats", get_stats, methods=["GET"]),
        Route(f"{CONTROL_PREFIX}reset-stats", reset_stats, methods=["POST"]),
        Route(f"{CONTROL_PREFIX}faults", get_faults, methods=["GET"]),
        Route(f"{CONTROL_PREFIX}faults", set_faults, methods=["POST"]),
    ]
