"""Plumbing of the HubSpot emulator: credentials, rate limits, auth, error and batch bodies.

Every route goes through :func:`endpoint`, which applies latency, authentication, the rate
limits (a rolling burst window, a daily budget, a per-second limit for search), injected
faults, accounting and the ``X-HubSpot-RateLimit-*`` headers.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import json
import secrets
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from icp_sync.sandbox.accounting import ApiStats
from icp_sync.sandbox.faults import FaultInjector
from icp_sync.sandbox.hubspot.portal import HubSpotPortal
from icp_sync.sandbox.hubspot.properties import PropertyError, iso_ms

__all__ = [
    "BATCH_LIMIT",
    "COMPANY_TO_DEAL",
    "DEAL_TO_COMPANY",
    "HISTORY_BATCH_LIMIT",
    "Handler",
    "HubSpotApi",
    "HubSpotCredentials",
    "HubSpotLimits",
    "Limiter",
    "RefusedError",
    "batch_inputs",
    "batch_response",
    "endpoint",
    "error",
    "invalid",
    "oauth_token",
    "object_kind",
    "problem_error",
    "refuse_duplicates",
    "standard_error",
    "wanted",
    "with_associations",
]

BATCH_LIMIT = 100
HISTORY_BATCH_LIMIT = 50
DEAL_TO_COMPANY = 341
COMPANY_TO_DEAL = 342


@dataclass(frozen=True, slots=True, kw_only=True)
class HubSpotCredentials:
    """What the sandbox portal accepts.

    Attributes:
        access_token: A private-app token (never expires).
        client_id: OAuth app id (refresh-token grant).
        client_secret: OAuth app secret.
        refresh_token: The refresh token the OAuth app holds.
    """

    access_token: str
    client_id: str
    client_secret: str
    refresh_token: str


@dataclass(frozen=True, slots=True, kw_only=True)
class HubSpotLimits:
    """Rate limits of the portal.

    Attributes:
        ten_secondly: Calls per rolling window (the burst limit).
        daily: Calls per day.
        search_per_second: Search calls per second (search is exempt from the burst window).
        window_ms: Length of the burst window (10 seconds in production).
        search_cap: Most results one search query reaches (10,000 in production; lowered
            by tests to exercise re-anchoring without 10,000 records).
    """

    ten_secondly: int = 190
    daily: int = 1_000_000
    search_per_second: int = 5
    window_ms: int = 10_000
    search_cap: int = 10_000


def error(status: int, category: str, message: str, **extra: Any) -> JSONResponse:
    body = {
        "status": "error",
        "message": message,
        "correlationId": str(uuid.uuid4()),
        "category": category,
    }
    body.update(extra)
    return JSONResponse(body, status_code=status)


def standard_error(category: str, message: str, context: dict[str, list[str]]) -> dict[str, Any]:
    return {
        "status": "error",
        "category": category,
        "message": message,
        "context": context,
        "errors": [],
        "links": {},
    }


class RefusedError(Exception):
    """A request HubSpot refuses as a whole (400 ``VALIDATION_ERROR`` unless told otherwise)."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        category: str = "VALIDATION_ERROR",
        context: dict[str, list[str]] | None = None,
    ) -> None:
        self.message = message
        self.status = status
        self.category = category
        self.context = context
        super().__init__(message)

    def response(self) -> JSONResponse:
        """The error answer."""
        extra = {"context": self.context} if self.context else {}
        return error(self.status, self.category, self.message, **extra)


class Limiter:
    def __init__(self, limits: HubSpotLimits, clock: Callable[[], float]) -> None:
        self.limits = limits
        self.clock = clock
        self.burst: collections.deque[float] = collections.deque()
        self.search: collections.deque[float] = collections.deque()
        self.day = 0
        self.lock = threading.Lock()
        self.refused: dict[str, int] = collections.defaultdict(int)

    def admit(self, *, search: bool) -> str | None:
        """Count a call; the policy it breaks (``TEN_SECONDLY_ROLLING``, ...) or None."""
        policy = self._admit(search=search)
        if policy is not None:
            with self.lock:
                self.refused[policy] += 1
        return policy

    def _admit(self, *, search: bool) -> str | None:
        now = self.clock()
        with self.lock:
            if self.day >= self.limits.daily:
                return "DAILY"
            if search:
                while self.search and now - self.search[0] >= 1.0:
                    self.search.popleft()
                if len(self.search) >= self.limits.search_per_second:
                    return "SECONDLY"
                self.search.append(now)
            else:
                window = self.limits.window_ms / 1000
                while self.burst and now - self.burst[0] >= window:
                    self.burst.popleft()
                if len(self.burst) >= self.limits.ten_secondly:
                    return "TEN_SECONDLY_ROLLING"
                self.burst.append(now)
            self.day += 1
            return None

    def headers(self) -> dict[str, str]:
        with self.lock:
            return {
                "X-HubSpot-RateLimit-Max": str(self.limits.ten_secondly),
                "X-HubSpot-RateLimit-Remaining": str(
                    max(0, self.limits.ten_secondly - len(self.burst))
                ),
                "X-HubSpot-RateLimit-Interval-Milliseconds": str(self.limits.window_ms),
                "X-HubSpot-RateLimit-Daily": str(self.limits.daily),
                "X-HubSpot-RateLimit-Daily-Remaining": str(max(0, self.limits.daily - self.day)),
            }


_NO_CREDENTIALS = (
    "Authentication credentials not found. This API supports OAuth 2.0 authentication and you "
    "can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
)
_POLICY_MESSAGES = {
    "TEN_SECONDLY_ROLLING": "You have reached your ten_secondly_rolling limit.",
    "DAILY": "You have reached your daily limit.",
    "SECONDLY": "You have reached your secondly limit.",
}


class HubSpotApi:
    def __init__(  # noqa: PLR0917 (one emulator's collaborators, wired once)
        self,
        portal: HubSpotPortal,
        credentials: HubSpotCredentials,
        stats: ApiStats,
        faults: FaultInjector,
        limits: HubSpotLimits,
        clock: Callable[[], float],
    ) -> None:
        self.portal = portal
        self.credentials = credentials
        self.stats = stats
        self.faults = faults
        self.limiter = Limiter(limits, clock)
        self.lock = threading.Lock()
        self.oauth_tokens: dict[str, int] = {}
        self.expired_tokens: set[str] = set()

    def fails_validation(self, record_id: str) -> bool:
        """Deterministic per record, like a property validation rule."""
        probability = self.faults.profile.validation
        if probability <= 0:
            return False
        digest = hashlib.sha256(f"{self.faults.profile.seed}:{record_id}".encode()).digest()
        return int.from_bytes(digest[:4], "big") / 2**32 < probability


Handler = Callable[[HubSpotApi, Request], Awaitable[Response]]


def endpoint(
    api: HubSpotApi, name: str, handler: Handler, *, search: bool = False
) -> Callable[[Request], Awaitable[Response]]:
    async def wrapped(request: Request) -> Response:
        label = f"{request.method} {name.format(**_canonical(request.path_params))}"
        request.state.read = 0
        request.state.written = 0
        await api.faults.delay()
        refusal = _authenticate(api, request)
        if refusal is None:
            policy = api.limiter.admit(search=search)
            if policy is None and api.faults.rate_limited():
                policy = "SECONDLY" if search else "TEN_SECONDLY_ROLLING"
            if policy is not None:
                refusal = error(
                    429,
                    "RATE_LIMITS",
                    _POLICY_MESSAGES[policy],
                    errorType="RATE_LIMIT",
                    policyName=policy,
                    groupName="sandbox",
                )
            elif api.faults.server_error():
                refusal = Response(
                    "<html><body><h1>502 Bad Gateway</h1></body></html>",
                    status_code=502,
                    media_type="text/html",
                )
        if refusal is not None:
            api.stats.record(label)
            refusal.headers.update(api.limiter.headers())
            return refusal
        try:
            response = await handler(api, request)
        except KeyError as exc:
            response = error(
                404, "OBJECT_NOT_FOUND", f"Unable to infer object type from: {exc.args[0]}"
            )
        except PropertyError as exc:
            response = invalid([exc])
        except RefusedError as exc:
            response = exc.response()
        except (ValueError, TypeError) as exc:
            response = error(400, "VALIDATION_ERROR", f"Invalid input JSON: {exc}")
        api.stats.record(
            label, records_read=request.state.read, records_written=request.state.written
        )
        response.headers.update(api.limiter.headers())
        return response

    return wrapped


def _canonical(params: dict[str, Any]) -> dict[str, Any]:
    """Path parameters with object type ids (``0-2``) spelled as names, for one stats key."""
    out = dict(params)
    for key in ("object", "from_object", "to_object"):
        if key in out:
            with contextlib.suppress(KeyError):  # unknown types keep their spelling
                out[key] = HubSpotPortal.kind(str(out[key]))
    return out


def invalid(problems: list[PropertyError]) -> JSONResponse:
    """400 ``VALIDATION_ERROR`` for refused property values, in HubSpot's words.

    The message embeds a JSON array of the problems, as HubSpot's does.
    """
    details = json.dumps(
        [
            {
                "isValid": False,
                "message": p.message,
                "error": p.code,
                "name": p.name,
                "localizedErrorMessage": p.message,
            }
            for p in problems
        ],
        separators=(",", ":"),
    )
    return error(
        400,
        "VALIDATION_ERROR",
        f"Property values were not valid: {details}",
        errors=[
            {"message": p.message, "code": p.code, "context": {"propertyName": [p.name]}}
            for p in problems
        ],
    )


def _authenticate(api: HubSpotApi, request: Request) -> Response | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    missing = error(
        401,
        "INVALID_AUTHENTICATION",
        _NO_CREDENTIALS,
    )
    if scheme.lower() != "bearer" or not token:
        return missing
    if token == api.credentials.access_token:
        return None
    limit = api.faults.profile.session_expiry_after
    expired = error(
        401, "EXPIRED_AUTHENTICATION", "The OAuth token used to make this call expired."
    )
    with api.lock:
        if token in api.expired_tokens:
            return expired
        if token not in api.oauth_tokens:
            return missing
        api.oauth_tokens[token] += 1
        if limit and api.oauth_tokens[token] > limit:
            del api.oauth_tokens[token]
            api.expired_tokens.add(token)  # an expired token stays expired, never unknown
            return expired
    return None


async def oauth_token(request: Request) -> JSONResponse:
    api: HubSpotApi = request.app.state.api
    form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
    api.stats.record("POST oauth/v1/token")
    creds = api.credentials
    if (
        form.get("grant_type") != "refresh_token"
        or form.get("client_id") != creds.client_id
        or form.get("client_secret") != creds.client_secret
        or form.get("refresh_token") != creds.refresh_token
    ):
        return JSONResponse(
            {"status": "BAD_REFRESH_TOKEN", "message": "missing or unknown refresh token"},
            status_code=400,
        )
    token = f"CKD-{secrets.token_urlsafe(24)}"
    with api.lock:
        api.oauth_tokens[token] = 0
    return JSONResponse(
        {
            "access_token": token,
            "refresh_token": creds.refresh_token,
            "expires_in": 1800,
            "token_type": "bearer",
        }
    )


def object_kind(request: Request) -> str:
    return HubSpotPortal.kind(request.path_params["object"])


def wanted(values: list[str]) -> list[str] | None:
    """Repeated and comma-separated query values (``properties=a&properties=b,c``)."""
    found = [p for value in values for p in value.split(",") if p]
    return found or None


def with_associations(
    api: HubSpotApi, kind: str, body: dict[str, Any], record_id: str, wanted: list[str] | None
) -> dict[str, Any]:
    if not wanted:
        return body
    other = "companies" if kind == "deals" else "deals"
    if any(
        HubSpotPortal.kind(w) == other for w in wanted if w in ("companies", "deals", "0-2", "0-3")
    ):
        type_name = "deal_to_company" if kind == "deals" else "company_to_deal"
        ids = api.portal.associated(kind, record_id)
        body["associations"] = {other: {"results": [{"id": i, "type": type_name} for i in ids]}}
    return body


def batch_inputs(body: Any, *, limit: int = BATCH_LIMIT) -> list[dict[str, Any]]:
    """The ``inputs`` of a batch body.

    Raises:
        ValueError: ``inputs`` is not an array of objects.
        RefusedError: More inputs than ``limit`` (100; 50 when property histories are asked).
    """
    inputs = body.get("inputs") if isinstance(body, dict) else None
    if not isinstance(inputs, list) or not all(isinstance(i, dict) for i in inputs):
        raise ValueError("inputs must be an array of objects")
    if len(inputs) > limit:
        what = "a batch request"
        if limit != BATCH_LIMIT:
            what += " for property histories"
        raise RefusedError(
            f"The maximum number of inputs supported in {what} is {limit}. "
            "Please reduce the number of items and try again"
        )
    return inputs


def refuse_duplicates(inputs: list[dict[str, Any]]) -> None:
    """HubSpot refuses a batch that names one record twice.

    Raises:
        RefusedError: 400 ``Duplicate IDs found in batch input``.
    """
    seen: set[tuple[str, str]] = set()
    duplicates: list[str] = []
    for item in inputs:
        key = (str(item.get("idProperty") or "hs_object_id"), str(item.get("id")))
        if key in seen and key[1] not in duplicates:
            duplicates.append(key[1])
        seen.add(key)
    if duplicates:
        raise RefusedError(
            f"Duplicate IDs found in batch input: [{', '.join(duplicates)}]. IDs must be unique",
            context={"ids": duplicates},
        )


def batch_response(
    results: list[dict[str, Any]], errors: list[dict[str, Any]], started: int, *, ok: int = 200
) -> JSONResponse:
    body: dict[str, Any] = {
        "status": "COMPLETE",
        "results": results,
        "startedAt": iso_ms(started),
        "completedAt": iso_ms(int(time.time() * 1000)),
    }
    if errors:
        body["errors"] = errors
        body["numErrors"] = len(errors)
        return JSONResponse(body, status_code=207)
    return JSONResponse(body, status_code=ok)


def problem_error(record_id: str, problem: PropertyError) -> dict[str, Any]:
    body = standard_error(
        "VALIDATION_ERROR", problem.message, {"ids": [record_id], "propertyName": [problem.name]}
    )
    context = {"propertyName": [problem.name]}
    body["errors"] = [{"message": problem.message, "code": problem.code, "context": context}]
    return body
