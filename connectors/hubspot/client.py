"""The HubSpot API client: the only hubspot-api-client import, one retry policy, rate limits.

Every call goes through :meth:`HubSpotClient.call`, which

* waits as a client-side limiter says: the portal's ten-second burst allowance and daily
  limit as the ``X-HubSpot-RateLimit-*`` headers of the last answer report them, and the
  separate per-second limit of the search API;
* retries 429 (every HTTP method, POST and PATCH included: urllib3's own ``Retry`` would
  skip them), 5xx and network errors with jittered exponential backoff (tenacity); a spent
  daily limit (429 ``DAILY``, or the cycle's configured share) stops the cycle cleanly
  (:class:`~icp_sync.errors.BudgetExhaustedError`);
* renews an expired OAuth access token (:mod:`connectors.hubspot.auth`).

The SDK builds a new API client (and connection pool) on every property access, so each API
object is built once and its pool wrapped to see every request and answer. SDK models never
leave this module: callers get plain dicts (``to_dict()`` form, snake_case keys).
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import urllib3
from hubspot.crm.associations.v4 import BatchInputPublicFetchAssociationsBatchRequest
from hubspot.crm.associations.v4.exceptions import ApiException as AssociationsError
from hubspot.crm.companies.exceptions import ApiException as CompaniesError
from hubspot.crm.deals.exceptions import ApiException as DealsError
from hubspot.crm.objects import (
    BatchInputSimplePublicObjectBatchInput,
    BatchReadInputSimplePublicObjectId,
    PublicObjectSearchRequest,
    SimplePublicObjectInputForCreate,
)
from hubspot.crm.objects.exceptions import ApiException as ObjectsError
from hubspot.crm.pipelines.exceptions import ApiException as PipelinesError
from hubspot.crm.properties import PropertyCreate, PropertyGroupCreate
from hubspot.crm.properties.exceptions import ApiException as PropertiesError
from hubspot.oauth.exceptions import ApiException as OAuthError
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from connectors.base import ApiUsage, ConnectorState
from connectors.hubspot.auth import Grant, TokenSource
from connectors.hubspot.config import HubSpotConfig
from connectors.hubspot.limits import shared_limiter
from hubspot import HubSpot
from icp_sync.errors import (
    AuthError,
    BudgetExhaustedError,
    ConnectorError,
    FatalConnectorError,
    RetriableConnectorError,
    SessionExpiredError,
)
from icp_sync.log import get_logger

__all__ = ["HubSpotClient", "backoff"]

log = get_logger(connector="hubspot")

T = TypeVar("T")

_API_ERRORS = (
    AssociationsError,
    CompaniesError,
    DealsError,
    ObjectsError,
    PipelinesError,
    PropertiesError,
    OAuthError,
)
_OBJECT_TYPE = {"companies": "0-2", "deals": "0-3", "tasks": "0-27"}

TASK_TO_DEAL = 216
"""HubSpot's default association type id of a task to a deal."""


def backoff(attempt: int) -> float:
    """Jittered exponential delay before try ``attempt + 1`` (0.25 s .. 30 s)."""
    return float(min(30.0, 0.5 * 2.0 ** (attempt - 1))) * random.uniform(0.5, 1.0)


class _Metered:
    """Wraps an SDK API object's urllib3 pool: paces, counts and observes every request."""

    def __init__(self, inner: Any, client: HubSpotClient) -> None:
        self._inner = inner
        self._client = client

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        self._client._before(url)
        response = self._inner.request(method, url, *args, **kwargs)
        self._client._after(method, url, response)
        return response

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class HubSpotClient:
    """hubspot-api-client behind one retrying, pacing, counting call wrapper.

    Args:
        config: The ``[hubspot]`` section.
        state: Where a rotated OAuth refresh token is kept.
        sleep: How to wait (injected by tests).
        clock: Monotonic seconds (the limiter's clock).
    """

    def __init__(
        self,
        config: HubSpotConfig,
        state: ConnectorState,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._tokens = TokenSource(config, state)
        self._sleep = sleep
        self._limiter = shared_limiter(config, clock)
        self._apis: dict[str, Any] = {}
        self._calls = 0
        self._by_endpoint: dict[str, int] = {}
        self._budget_start: int | None = None
        self._daily: int | None = None
        self._daily_remaining: int | None = None
        self._server_date: datetime | None = None

    # -- plumbing ---------------------------------------------------------------------

    def usage(self) -> ApiUsage:
        """Calls made through this client, and the portal's daily allowance as last reported."""
        return ApiUsage(
            calls=self._calls,
            by_endpoint=dict(sorted(self._by_endpoint.items())),
            limit=self._daily,
            remaining=self._daily_remaining,
        )

    def server_now(self, fallback: datetime) -> datetime:
        """The portal's clock as of the last answer (its ``Date`` header), else ``fallback``."""
        return self._server_date or fallback

    def pause(self, attempt: int) -> None:
        """Wait before round ``attempt + 1`` of records a batch could not write yet."""
        self._sleep(backoff(attempt))

    def close(self) -> None:
        """Release the connection pools."""
        for api in self._apis.values():
            api.api_client.rest_client.pool_manager.clear()
        self._apis.clear()

    def _hubspot(self, token: str | None) -> HubSpot:
        return HubSpot(
            access_token=token,
            host=self._config.base_url.rstrip("/"),
            retry=urllib3.Retry(total=0, connect=1, read=0, status=0, raise_on_status=False),
        )

    def _api(self, path: str) -> Any:
        api = self._apis.get(path)
        if api is None:
            token = None if path == "oauth.tokens_api" else self._tokens.token(self._exchange)
            api = self._hubspot(token)
            for part in path.split("."):
                api = getattr(api, part)
            rest = api.api_client.rest_client
            rest.pool_manager = _Metered(rest.pool_manager, self)
            self._apis[path] = api
        return api

    def _exchange(self, client_id: str, client_secret: str, refresh_token: str) -> Grant:
        def operation() -> Grant:
            answer = self._api("oauth.tokens_api").create(
                grant_type="refresh_token",
                client_id=client_id,
                client_secret=client_secret,
                refresh_token=refresh_token,
            )
            return Grant(str(answer.access_token or ""), str(answer.refresh_token or ""))

        try:
            return self._retrying("oauth token", operation, renew=False)
        except FatalConnectorError as exc:
            raise AuthError(
                f"HubSpot refused the refresh token: {exc}", connector="hubspot"
            ) from None

    def _before(self, url: str) -> None:
        self._guard_budget()
        search = url.split("?", 1)[0].endswith("/search")
        while (wait := self._limiter.delay(search=search)) > 0:
            self._sleep(wait)

    def _after(self, method: str, url: str, response: Any) -> None:
        self._calls += 1
        endpoint = _endpoint(method, url)
        self._by_endpoint[endpoint] = self._by_endpoint.get(endpoint, 0) + 1
        headers = response.headers
        self._limiter.observe(headers)
        self._daily, self._daily_remaining = self._limiter.daily, self._limiter.daily_remaining
        date = headers.get("Date")
        if date:
            with contextlib.suppress(TypeError, ValueError):
                self._server_date = parsedate_to_datetime(date).astimezone(UTC)

    def _guard_budget(self) -> None:
        daily, remaining = self._daily, self._daily_remaining
        if daily is None or remaining is None:
            return
        used = daily - remaining
        if self._budget_start is None:
            self._budget_start = used
        if remaining <= 0:
            raise BudgetExhaustedError(
                f"the portal's daily limit of {daily:,} calls is spent; stopping cleanly, "
                "the next cycle resumes",
                connector="hubspot",
            )
        if used - self._budget_start >= self._config.budget_share * daily:
            raise BudgetExhaustedError(
                f"this cycle used {used - self._budget_start:,} API calls, its budget of "
                f"{self._config.budget_share:.0%} of the daily {daily:,}; stopping cleanly, "
                "the next cycle resumes",
                connector="hubspot",
            )

    def call(self, what: str, operation: Callable[[], T]) -> T:
        """Run one API operation with pacing, retries and token renewal.

        Raises:
            RetriableConnectorError: Still failing after ``max_attempts`` tries.
            FatalConnectorError: A fault retrying cannot fix (auth, scopes, bad request).
            BudgetExhaustedError: The daily limit, or the cycle's share of it, is spent.
        """
        return self._retrying(what, operation, renew=self._tokens.refreshable)

    def _retrying(self, what: str, operation: Callable[[], T], *, renew: bool) -> T:
        def attempt() -> T:
            try:
                return operation()
            except _API_ERRORS as exc:
                error = classify(exc)
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                error = RetriableConnectorError(
                    f"network: {type(exc).__name__}", connector="hubspot"
                )
            if isinstance(error, SessionExpiredError):
                if not renew:
                    raise AuthError(str(error), connector="hubspot")
                log.info("hubspot_token_expired", action="refreshing", during=what)
                self._tokens.expire()
                self._apis = {k: v for k, v in self._apis.items() if k == "oauth.tokens_api"}
            raise error

        retrying = Retrying(
            stop=stop_after_attempt(self._config.max_attempts),
            wait=_wait,
            retry=retry_if_exception_type(RetriableConnectorError),
            sleep=self._sleep,
            before_sleep=lambda state: _log_retry(what, state),
            reraise=True,
        )
        result: T = retrying(attempt)
        return result

    # -- operations (plain dicts in and out) --------------------------------------------

    def search(
        self,
        kind: str,
        *,
        filter_groups: list[dict[str, Any]],
        sorts: list[dict[str, str]],
        properties: Iterable[str],
        after: str | None = None,
        limit: int = 200,
    ) -> dict[str, Any]:
        """One page of CRM search results."""
        request = PublicObjectSearchRequest(
            filter_groups=filter_groups,
            sorts=sorts,
            properties=list(properties),
            limit=limit,
            after=after,
        )
        return _plain(
            self.call(
                f"search {kind}",
                lambda: self._api("crm.objects.search_api").do_search(_OBJECT_TYPE[kind], request),
            )
        )

    def list_page(
        self,
        kind: str,
        *,
        properties: Iterable[str],
        after: str | None = None,
        archived: bool = False,
        associations: list[str] | None = None,
    ) -> dict[str, Any]:
        """One page (100 records) of the object's list, live or archived."""
        kwargs: dict[str, Any] = {"limit": 100, "archived": archived}
        props = list(properties)
        if props:
            kwargs["properties"] = props
        if after:
            kwargs["after"] = after
        if associations:
            kwargs["associations"] = associations
        return _plain(
            self.call(
                f"list {kind}",
                lambda: self._api("crm.objects.basic_api").get_page(_OBJECT_TYPE[kind], **kwargs),
            )
        )

    def batch_read(self, kind: str, ids: list[str], properties: Iterable[str]) -> dict[str, Any]:
        """Up to 100 records by id."""
        body = BatchReadInputSimplePublicObjectId(
            inputs=[{"id": i} for i in ids], properties=list(properties), properties_with_history=[]
        )
        return _plain(
            self.call(
                f"batch read {kind}",
                lambda: self._api("crm.objects.batch_api").read(_OBJECT_TYPE[kind], body),
            )
        )

    def batch_update(self, kind: str, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        """Update up to 100 records (inputs: ``id``, ``properties``, ``objectWriteTraceId``);
        the answer of 200 or 207 (``errors`` then lists the inputs not written)."""
        body = BatchInputSimplePublicObjectBatchInput(inputs=inputs)
        return _plain(
            self.call(
                f"batch update {kind}",
                lambda: self._api("crm.objects.batch_api").update(_OBJECT_TYPE[kind], body),
            )
        )

    def create_task(self, properties: dict[str, str], deal_id: str) -> str:
        """Create a task associated with ``deal_id`` (type 216); returns the task's id."""
        body = SimplePublicObjectInputForCreate(
            properties=properties,
            associations=[
                {
                    "to": {"id": deal_id},
                    "types": [
                        {
                            "associationCategory": "HUBSPOT_DEFINED",
                            "associationTypeId": TASK_TO_DEAL,
                        }
                    ],
                }
            ],
        )
        created = self.call(
            "create task", lambda: self._api("crm.objects.basic_api").create("tasks", body)
        )
        return str(_plain(created)["id"])

    def deal_companies(self, ids: list[str]) -> dict[str, Any]:
        """The companies of up to 1,000 deals (v4 associations, batch read)."""
        body = BatchInputPublicFetchAssociationsBatchRequest(inputs=[{"id": i} for i in ids])
        return _plain(
            self.call(
                "associations deals->companies",
                lambda: self._api("crm.associations.v4.batch_api").get_page(
                    "deals", "companies", body
                ),
            )
        )

    def pipelines(self, kind: str) -> list[dict[str, Any]]:
        """Every pipeline of the object with its stages."""
        answer = _plain(
            self.call(
                f"pipelines {kind}", lambda: self._api("crm.pipelines.pipelines_api").get_all(kind)
            )
        )
        return list(answer.get("results") or [])

    def properties(self, kind: str) -> list[dict[str, Any]]:
        """Every property of the object."""
        answer = _plain(
            self.call(
                f"properties {kind}", lambda: self._api("crm.properties.core_api").get_all(kind)
            )
        )
        return list(answer.get("results") or [])

    def groups(self, kind: str) -> list[dict[str, Any]]:
        """Every property group of the object."""
        answer = _plain(
            self.call(
                f"property groups {kind}",
                lambda: self._api("crm.properties.groups_api").get_all(kind),
            )
        )
        return list(answer.get("results") or [])

    def create_group(self, kind: str, name: str, label: str) -> None:
        """Create a property group."""
        body = PropertyGroupCreate(name=name, label=label, display_order=-1)
        self.call(
            f"create group {kind}.{name}",
            lambda: self._api("crm.properties.groups_api").create(kind, body),
        )

    def create_property(self, kind: str, spec: dict[str, Any]) -> None:
        """Create a property (``spec``: PropertyCreate fields, snake_case)."""
        body = PropertyCreate(**spec)
        self.call(
            f"create property {kind}.{spec['name']}",
            lambda: self._api("crm.properties.core_api").create(kind, body),
        )


def _plain(answer: Any) -> dict[str, Any]:
    if answer is None:
        return {}
    if isinstance(answer, dict):
        return answer
    converted: dict[str, Any] = answer.to_dict()
    return converted


def classify(exc: Exception) -> ConnectorError:
    """Map an SDK ``ApiException`` onto the error tree."""
    status = int(getattr(exc, "status", 0) or 0)
    body = str(getattr(exc, "body", "") or "")
    text = f"{status}: {' '.join(body.split())[:300]}"
    if status == 429:
        if '"DAILY"' in body or "daily limit" in body:
            return BudgetExhaustedError(
                "the portal's daily API limit is spent; stopping cleanly, the next cycle resumes",
                connector="hubspot",
            )
        return RetriableConnectorError(text, connector="hubspot")
    if status == 401:
        return SessionExpiredError(text, connector="hubspot")
    if status == 403:
        return AuthError(f"missing scopes or access: {text}", connector="hubspot")
    if status >= 500 or status == 0:
        return RetriableConnectorError(text, connector="hubspot")
    return FatalConnectorError(text, connector="hubspot")


def _wait(state: RetryCallState) -> float:
    error = state.outcome.exception() if state.outcome else None
    if isinstance(error, SessionExpiredError):
        return 0.0
    if isinstance(error, RetriableConnectorError) and error.retry_after:
        return error.retry_after
    return backoff(state.attempt_number)


def _log_retry(what: str, state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    if not isinstance(error, SessionExpiredError):
        log.warning("hubspot_retry", during=what, attempt=state.attempt_number, error=str(error))


def _endpoint(method: str, url: str) -> str:
    path = url.split("?", 1)[0].split("://", 1)[-1]
    parts = [p for p in path.split("/")[1:] if p]
    if parts[:2] == ["crm", "v3"] and len(parts) >= 4 and parts[2] == "objects":
        kind = {v: k for k, v in _OBJECT_TYPE.items()}.get(parts[3], parts[3])
        tail = parts[4:]
        name = "/".join(t for t in tail if not t.isdigit())
        return f"{method} objects/{kind}" + (f"/{name}" if name else "")
    if parts[:2] == ["crm", "v4"]:
        return f"{method} associations/{'/'.join(parts[3:])}"
    if parts[:2] == ["crm", "v3"]:
        return f"{method} {'/'.join(parts[2:4])}"
    return f"{method} {'/'.join(parts)}"
