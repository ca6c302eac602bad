"""The read-only leadership dashboard: the report's page, data and CSVs as Starlette routes.

The daemon mounts :func:`dashboard_routes` into its web app. Every request must be
authenticated, else it is refused (401, or 403 when no way to authenticate is configured):

- ``Authorization: Bearer <token>``;
- ``?token=<token>`` once (a link from the digest): answered with a redirect that drops the
  token from the address and sets an HttpOnly, SameSite=Strict session cookie, which holds an
  HMAC of the token, never the token itself;
- a trusted reverse-proxy header (``[dashboard] trusted_header``, e.g. ``X-Forwarded-User``),
  for a daemon reachable through that authenticating proxy alone.

Only GET (and HEAD) are routed: nothing on the dashboard changes state.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from urllib.parse import urlencode

from plotly.offline import get_plotlyjs
from pydantic import SecretStr
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Route

from icp_sync.report.document import Report
from icp_sync.report.html import csv_text, render

__all__ = ["COOKIE", "dashboard_routes"]

COOKIE = "icp_sync_dashboard"
_SESSION = b"icp-sync dashboard session"


class _Gate:
    """Who may see the dashboard."""

    def __init__(self, token: SecretStr | None, trusted_header: str | None, path: str) -> None:
        self.token = token.get_secret_value() if token is not None else None
        self.header = trusted_header
        self.path = path

    @property
    def configured(self) -> bool:
        return bool(self.token) or bool(self.header)

    def session(self) -> str:
        return hmac.new((self.token or "").encode(), _SESSION, hashlib.sha256).hexdigest()

    def allowed(self, request: Request) -> bool:
        if self.header and request.headers.get(self.header, "").strip():
            return True
        if not self.token:
            return False
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), self.token):
            return True
        cookie = request.cookies.get(COOKIE, "")
        return bool(cookie) and hmac.compare_digest(cookie, self.session())

    def refuse(self) -> Response:
        if not self.configured:
            return PlainTextResponse(
                "dashboard disabled: set [dashboard] token or trusted_header", status_code=403
            )
        return PlainTextResponse(
            "authentication required", status_code=401, headers={"WWW-Authenticate": "Bearer"}
        )

    def token_login(self, request: Request) -> Response | None:
        """A redirect setting the session cookie when ``?token=`` is right; else None."""
        given = request.query_params.get("token")
        if given is None or not self.token or not hmac.compare_digest(given, self.token):
            return None
        rest = {k: v for k, v in request.query_params.items() if k != "token"}
        target = request.url.path + (f"?{urlencode(rest)}" if rest else "")
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            COOKIE,
            self.session(),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path=self.path,
        )
        return response


def dashboard_routes(
    load_report: Callable[[], Report],
    *,
    token: SecretStr | None,
    trusted_header: str | None,
    prefix: str = "/dashboard",
) -> list[Route]:
    """The dashboard's routes under ``prefix``: the page, ``report.json``, ``csv/NAME.csv``
    and ``plotly.js``.

    Args:
        load_report: Returns the current report (called in a worker thread; cache it there).
        token: The bearer token, or None.
        trusted_header: The reverse-proxy header that authenticates, or None.
        prefix: Where the dashboard lives in the app.
    """
    gate = _Gate(token, trusted_header, prefix)
    plotly_js: list[str] = []

    async def page(request: Request) -> Response:
        login = gate.token_login(request)
        if login is not None:
            return login
        if not gate.allowed(request):
            return gate.refuse()
        report = await run_in_threadpool(load_report)
        links = {name: f"{prefix}/csv/{name}.csv" for name in report.tables()}
        html = await run_in_threadpool(
            lambda: render(report, links=links, plotly_src=f"{prefix}/plotly.js")
        )
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    async def data(request: Request) -> Response:
        if not gate.allowed(request):
            return gate.refuse()
        report = await run_in_threadpool(load_report)
        return JSONResponse(report.as_dict(), headers={"Cache-Control": "no-store"})

    async def table(request: Request) -> Response:
        if not gate.allowed(request):
            return gate.refuse()
        report = await run_in_threadpool(load_report)
        name = str(request.path_params["name"])
        tables = report.tables()
        if name not in tables:
            return PlainTextResponse(f"no table {name}", status_code=404)
        return Response(
            csv_text(tables[name]),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )

    async def script(request: Request) -> Response:
        if not gate.allowed(request):
            return gate.refuse()
        if not plotly_js:
            plotly_js.append(get_plotlyjs())
        return Response(
            plotly_js[0],
            media_type="application/javascript",
            headers={"Cache-Control": "private, max-age=86400"},
        )

    return [
        Route(prefix, page, methods=["GET"]),
        Route(f"{prefix}/report.json", data, methods=["GET"]),
        Route(f"{prefix}/csv/{{name}}.csv", table, methods=["GET"]),
        Route(f"{prefix}/plotly.js", script, methods=["GET"]),
    ]
