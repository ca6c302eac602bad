"""Plumbing of the Salesforce emulator: credentials, sessions, the call wrapper, error bodies.

Every API route goes through :func:`endpoint`, which applies latency, authentication, the
org's daily limit (``Sforce-Limit-Info`` on every answer), injected faults and accounting.
Errors use Salesforce's bodies: a JSON array of ``{"message", "errorCode"}`` at the top
level, ``{"statusCode", "message", "fields"}`` per record.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from icp_sync.sandbox.accounting import ApiStats
from icp_sync.sandbox.faults import FaultInjector
from icp_sync.sandbox.salesforce.bulk import BulkError, BulkJobs
from icp_sync.sandbox.salesforce.org import RecordError, SalesforceOrg
from icp_sync.sandbox.salesforce.soql import SoqlError

__all__ = [
    "Handler",
    "SalesforceApi",
    "SalesforceCredentials",
    "base_url",
    "endpoint",
    "errors",
    "run_handler",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class SalesforceCredentials:
    """What the sandbox org accepts.

    Attributes:
        access_token: A session id valid from the start (until a fault expires it).
        client_id: Connected app consumer key (client credentials, password, JWT flows).
        client_secret: Connected app consumer secret.
        username: The integration user's username.
        password: Its password.
        security_token: Its security token (appended to the password at login).
        jwt_public_key_pem: When set, JWT bearer assertions must be RS256-signed with the
            matching private key.
    """

    access_token: str
    client_id: str
    client_secret: str
    username: str
    password: str
    security_token: str = ""
    jwt_public_key_pem: str | None = None


def errors(status: int, code: str, message: str) -> JSONResponse:
    """A top-level Salesforce error body: one ``{message, errorCode}``."""
    return JSONResponse([{"message": message, "errorCode": code}], status_code=status)


class SalesforceApi:
    """State shared by the routes of one emulator: tokens, cursors, bulk jobs."""

    def __init__(
        self,
        org: SalesforceOrg,
        credentials: SalesforceCredentials,
        stats: ApiStats,
        faults: FaultInjector,
    ) -> None:
        self.org = org
        self.credentials = credentials
        self.stats = stats
        self.faults = faults
        self.lock = threading.Lock()
        self.tokens: dict[str, int] = {credentials.access_token: 0}
        self.cursors: OrderedDict[str, tuple[list[dict[str, Any]], str, bool]] = OrderedDict()
        self.bulk = BulkJobs(org, faults=faults, fails_validation=self.fails_validation)

    def fails_validation(self, record_id: str) -> bool:
        """Deterministic per record, like a real validation rule: same record, same answer."""
        probability = self.faults.profile.validation
        if probability <= 0:
            return False
        digest = hashlib.sha256(f"{self.faults.profile.seed}:{record_id}".encode()).digest()
        return int.from_bytes(digest[:4], "big") / 2**32 < probability

    def issue_token(self) -> str:
        token = f"00D5g0000000001!{secrets.token_urlsafe(24)}"
        with self.lock:
            self.tokens[token] = 0
        return token

    def limit_header(self) -> dict[str, str]:
        used = min(self.org.api_used, self.org.daily_api_limit)
        return {"Sforce-Limit-Info": f"api-usage={used}/{self.org.daily_api_limit}"}


Handler = Callable[[SalesforceApi, Request], Awaitable[Response]]


def endpoint(
    api: SalesforceApi, name: str, handler: Handler
) -> Callable[[Request], Awaitable[Response]]:
    """Wrap a handler with latency, auth, daily quota, faults, accounting and headers."""

    async def wrapped(request: Request) -> Response:
        label = f"{request.method} {name}"
        request.state.read = 0
        request.state.written = 0
        await api.faults.delay()
        refusal = _authenticate(api, request)
        if refusal is None:
            with api.lock:
                api.org.api_used += 1
                over = api.org.api_used > api.org.daily_api_limit
            if over:
                refusal = errors(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
            elif api.faults.server_error():
                refusal = errors(503, "SERVER_UNAVAILABLE", "Server temporarily unavailable")
            elif api.faults.rate_limited():
                refusal = errors(
                    403, "REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded."
                )
        if refusal is not None:
            api.stats.record(label)
            refusal.headers.update(api.limit_header())
            return refusal
        response = await run_handler(api, handler, request)
        api.stats.record(
            label, records_read=request.state.read, records_written=request.state.written
        )
        response.headers.update(api.limit_header())
        return response

    return wrapped


async def run_handler(api: SalesforceApi, handler: Handler, request: Request) -> Response:
    """Run a route's handler; Salesforce-shaped error answers for the errors it raises."""
    try:
        return await handler(api, request)
    except SoqlError as exc:
        return errors(400, exc.code, str(exc))
    except RecordError as exc:
        status = 404 if exc.code == "NOT_FOUND" else 400
        return errors(status, exc.code, exc.message)
    except BulkError as exc:
        return errors(exc.status, exc.code, str(exc))


def _authenticate(api: SalesforceApi, request: Request) -> Response | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    expired = errors(401, "INVALID_SESSION_ID", "Session expired or invalid")
    if scheme.lower() not in ("bearer", "oauth") or not token:
        return expired
    limit = api.faults.profile.session_expiry_after
    with api.lock:
        if token not in api.tokens:
            return expired
        api.tokens[token] += 1
        if limit and api.tokens[token] > limit:
            del api.tokens[token]
            return expired
    return None


def base_url(request: Request) -> str:
    """The ``https://host:port`` the client reached (for instance and login URLs)."""
    host = request.headers.get("host", f"{request.url.hostname}:{request.url.port}")
    return f"https://{host}"
