"""The daemon's HTTP side: ``/healthz``, ``/readyz``, ``/metrics`` (starlette, served by uvicorn).

:func:`build_app` takes what it shows as callables, so it knows nothing of the scheduler;
``extra_routes`` mounts more (the dashboard: ``extra_routes=[Mount("/dashboard", app)]``).

- ``/healthz`` (liveness): 200 with ``{"status", "last_success_at", "cycles", ...}`` while the
  daemon is alive: ``starting`` before the first cycle, ``ok`` after a good one, ``standby``
  while another replica holds the lease, ``failing`` after failed cycles (a restart would not
  fix the CRM). 503 only when ``stalled``: no cycle has even been attempted for three
  intervals, a wedged scheduler that a restart does fix.
- ``/readyz`` (readiness): 200 once the scheduler runs, 503 while starting or shutting down.
- ``/metrics``: the daemon's own Prometheus registry.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from icp_sync.metrics import CONTENT_TYPE

__all__ = ["Health", "HttpServer", "build_app", "parse_listen"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Health:
    """What ``/healthz`` says."""

    status: str
    last_success_at: str | None
    cycles: int
    alive: bool = True
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The JSON body (contract: ``status``, ``last_success_at``, ``cycles``)."""
        return {
            "status": self.status,
            "last_success_at": self.last_success_at,
            "cycles": self.cycles,
            **self.detail,
        }


def build_app(
    *,
    health: Callable[[], Health],
    ready: Callable[[], bool],
    metrics: Callable[[], bytes],
    extra_routes: Sequence[BaseRoute] = (),
) -> Starlette:
    """The daemon's ASGI app.

    Args:
        health: The current health (liveness).
        ready: Whether the daemon is ready (scheduler running, not shutting down).
        metrics: The Prometheus exposition.
        extra_routes: More routes or mounts (the dashboard).
    """

    async def healthz(_: Request) -> JSONResponse:
        now = health()
        return JSONResponse(now.as_dict(), status_code=200 if now.alive else 503)

    async def readyz(_: Request) -> JSONResponse:
        ok = ready()
        return JSONResponse({"ready": ok}, status_code=200 if ok else 503)

    async def metrics_page(_: Request) -> Response:
        return Response(metrics(), media_type=CONTENT_TYPE)

    routes: list[BaseRoute] = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_page, methods=["GET"]),
        *extra_routes,
    ]
    return Starlette(routes=routes)


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:9464`` for IPv6) as ``(host, port)``.

    Raises:
        ValueError: If it is not of that form or the port is out of range.
    """
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65_535:
        raise ValueError(f"--listen: expected HOST:PORT, got {value!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


class HttpServer:
    """uvicorn serving an app from a background thread (signals stay with the main thread)."""

    def __init__(self, app: Starlette, *, host: str, port: int) -> None:
        config = uvicorn.Config(
            app, host=host, port=port, log_level="warning", access_log=False, lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="icp-sync-http", daemon=True)
        self.host = host
        self.port = port

    def start(self, timeout: float = 15.0) -> None:
        """Serve; return once the socket accepts connections.

        Raises:
            OSError: If the address cannot be bound (the port is taken).
        """
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise OSError(f"cannot listen on {self.host}:{self.port} (in use or not allowed)")
            time.sleep(0.01)
        sockets = [s for server in self._server.servers for s in server.sockets]
        self.port = int(sockets[0].getsockname()[1])

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving and wait for the thread."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout)
