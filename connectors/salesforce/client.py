"""The Salesforce API client: the only simple-salesforce import, one retry policy, call budget.

Every call to Salesforce goes through :meth:`SalesforceClient.call`, which

* retries 429, 5xx, timeouts, row locks and concurrency limits with jittered exponential
  backoff that honours ``Retry-After`` (tenacity), and nothing else: other 4xx fail at once;
* renews an expired session (in every auth mode, see :mod:`connectors.salesforce.auth`);
* counts the call by endpoint and stops the cycle cleanly (:class:`BudgetExhaustedError`)
  once the configured share of the daily limit, or of the org's, is spent.

Vendor types and exceptions never leave this module: operations receive the simple-salesforce
object as ``Any`` and failures leave as the :mod:`icp_sync.errors` tree.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import requests
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import (
    SalesforceBulkV2LoadError,
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceOperationError,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)
from simple_salesforce.util import exception_handler
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from connectors.base import ApiUsage
from connectors.salesforce.auth import Token, http_session, obtain_token
from connectors.salesforce.config import SalesforceConfig
from icp_sync.errors import (
    BudgetExhaustedError,
    ConnectorError,
    FatalConnectorError,
    RetriableConnectorError,
    SessionExpiredError,
)
from icp_sync.log import get_logger, mask

__all__ = ["RETRIABLE_CODES", "Operation", "SalesforceClient", "backoff"]

log = get_logger(connector="salesforce")

T = TypeVar("T")

Operation = Callable[[Any], T]
"""One API operation on the simple-salesforce client: ``operation(sf) -> result``."""

RETRIABLE_CODES = frozenset({"UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE", "UNKNOWN_EXCEPTION"})
"""Salesforce error codes (whole calls or single records) that a later try can fix."""


def backoff(attempt: int) -> float:
    """Jittered exponential delay before try ``attempt + 1`` (0.25 s .. 30 s)."""
    return float(min(30.0, 0.5 * 2.0 ** (attempt - 1))) * random.uniform(0.5, 1.0)


class SalesforceClient:
    """A logged-in simple-salesforce client behind one retrying, counting call wrapper.

    Args:
        config: The ``[salesforce]`` section.
        session: A requests session to use (default: one built from the TLS settings).
        sleep: How to wait between retries (injected by tests).
        on_login: Called with every new token (the connector remembers the user id).
    """

    def __init__(
        self,
        config: SalesforceConfig,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        on_login: Callable[[Token], None] | None = None,
    ) -> None:
        self._config = config
        self._session = session or http_session(config)
        self._session.hooks["response"].append(self._count)
        self._sleep = sleep
        self._on_login = on_login
        self.token: Token | None = None
        self._sf: Salesforce | None = None
        # responses arrive on two threads while a bulk read runs ahead of its consumer
        self._counting = threading.Lock()
        self._calls = 0
        self._by_endpoint: dict[str, int] = {}
        self._limit: int | None = None
        self._used: int | None = None
        self._budget_start: int | None = None
        self._retry_after: float | None = None
        self._server_date: datetime | None = None
        self._server_offset: timedelta | None = None

    @property
    def limit_known(self) -> bool:
        """Whether the org's daily limit has been read (the budget guard is armed)."""
        return self._limit is not None

    def server_now(self, fallback: datetime) -> datetime:
        """The org's clock as of the last response (its ``Date`` header), else ``fallback``.

        Cursors and replication windows are taken from the server, never from this machine's
        clock, which may run fast or slow.
        """
        return self._server_date or fallback

    def server_clock(self, fallback: datetime) -> datetime:
        """An estimate of the org's clock now: this machine's clock corrected by the offset
        of the last ``Date`` header (whole seconds), else ``fallback``.

        Only for deciding whether a request is due (a getDeleted window a minute long);
        cursors use :meth:`server_now`.
        """
        if self._server_offset is None:
            return fallback
        return datetime.now(UTC) + self._server_offset

    def usage(self) -> ApiUsage:
        """Calls made through this client, and the org's daily allowance as last reported."""
        with self._counting:
            limit, used = self._limit, self._used
            return ApiUsage(
                calls=self._calls,
                by_endpoint=dict(sorted(self._by_endpoint.items())),
                limit=limit,
                remaining=None if limit is None or used is None else limit - used,
            )

    def close(self) -> None:
        """Release the HTTP session."""
        self._session.close()

    def call(self, what: str, operation: Operation[T]) -> T:
        """Run one API operation with the retry policy, session renewal and budget guard.

        Args:
            what: Names the operation in logs and errors.
            operation: Receives the simple-salesforce client.

        Raises:
            RetriableConnectorError: Still failing after ``max_attempts`` tries.
            FatalConnectorError: A fault retrying cannot fix (auth, permissions, bad request).
            BudgetExhaustedError: The cycle's share of the API limit is spent.
        """
        retrying = Retrying(
            stop=stop_after_attempt(self._config.max_attempts),
            wait=_wait,
            retry=retry_if_exception_type(RetriableConnectorError),
            sleep=self._sleep,
            before_sleep=lambda state: _log_retry(what, state),
            reraise=True,
        )
        result: T = retrying(self._attempt, what, operation)
        return result

    @property
    def max_attempts(self) -> int:
        """Tries per call, and rounds for records that hit a row lock."""
        return self._config.max_attempts

    def pause(self, attempt: int) -> None:
        """Wait before round ``attempt + 1`` of records that hit a row lock (same policy)."""
        self._sleep(backoff(attempt))

    def wait(self, seconds: float) -> None:
        """Wait between polls of a bulk job."""
        self._sleep(seconds)

    def _attempt(self, what: str, operation: Operation[T]) -> T:
        self._guard_budget()
        self._retry_after = None
        try:
            return operation(self._client())
        except (SalesforceError, SalesforceOperationError, requests.RequestException) as exc:
            error = classify(exc, retry_after=self._retry_after)
        if isinstance(error, SessionExpiredError):
            log.info("salesforce_session_expired", action="re-authenticating", during=what)
            self._sf = None
        raise error

    def read_limits(self) -> dict[str, Any]:
        """The org's ``/limits`` (also primes the budget guard)."""
        limits = self.call("limits", lambda sf: sf.limits())
        daily = limits.get("DailyApiRequests", {})
        if "Max" in daily:
            self._limit = int(daily["Max"])
            self._used = self._limit - int(daily.get("Remaining", 0))
        return dict(limits)

    def upload_csv(self, job_id: str, data: bytes) -> Operation[None]:
        """The operation that PUTs a Bulk API 2.0 ingest job's CSV (answered 201, no body)."""

        def operation(sf: Salesforce) -> None:
            headers = {**sf.headers, "Content-Type": "text/csv; charset=UTF-8"}
            url = f"{sf.bulk2_url}ingest/{job_id}/batches"
            response = sf.session.put(url, data=data, headers=headers, timeout=300)
            if response.status_code != 201:
                exception_handler(response, name="bulk upload")

        return operation

    def query_results(self, job_id: str, locator: str, max_records: int) -> Operation[Any]:
        """The operation that GETs one page of a Bulk API 2.0 query job's CSV results.

        It returns ``(csv_text, next_locator)``; the next locator is ``""`` after the last page.
        """

        def operation(sf: Salesforce) -> tuple[str, str]:
            params: dict[str, Any] = {"maxRecords": max_records}
            if locator:
                params["locator"] = locator
            headers = {**sf.headers, "Accept": "text/csv; charset=UTF-8"}
            url = f"{sf.bulk2_url}query/{job_id}/results"
            response = sf.session.get(url, params=params, headers=headers, timeout=300)
            if response.status_code != 200:
                exception_handler(response, name="bulk query results")
            following = response.headers.get("Sforce-Locator", "")
            return response.content.decode("utf-8"), "" if following == "null" else following

        return operation

    def _client(self) -> Salesforce:
        if self._sf is None:
            token = obtain_token(self._config, self._session)
            mask(token.access_token)  # before anything can log or raise with it
            self.token = token
            if self._on_login is not None:
                self._on_login(token)
            log.info(
                "salesforce_authenticated", auth=self._config.auth, instance=token.instance_url
            )
            self._sf = Salesforce(
                instance_url=token.instance_url,
                session_id=token.access_token,
                session=self._session,
                version=self._config.api_version,
            )
        return self._sf

    def _count(self, response: requests.Response, *_: Any, **__: Any) -> None:
        endpoint = _endpoint(response.request.method or "", response.url)
        retry_after = _retry_after(response.headers.get("Retry-After"))
        date = _http_date(response.headers.get("Date"))
        usage = _api_usage(response.headers.get("Sforce-Limit-Info", ""))
        with self._counting:
            self._calls += 1
            self._by_endpoint[endpoint] = self._by_endpoint.get(endpoint, 0) + 1
            self._retry_after = retry_after
            self._server_date = date or self._server_date
            if self._server_date is not None:
                self._server_offset = self._server_date - datetime.now(UTC)
            if usage is not None:
                self._used, self._limit = usage

    def _guard_budget(self) -> None:
        if self._limit is None or self._used is None:
            return
        if self._budget_start is None:
            self._budget_start = self._used
        spent = self._used - self._budget_start
        if spent >= self._config.budget_share * self._limit:
            raise BudgetExhaustedError(
                f"this cycle used {spent:,} API calls, its budget of "
                f"{self._config.budget_share:.0%} of the daily {self._limit:,}; "
                "stopping cleanly, the next cycle resumes",
                connector="salesforce",
            )
        if self._used >= self._config.max_org_share * self._limit:
            raise BudgetExhaustedError(
                f"the org has used {self._used:,} of its {self._limit:,} daily API calls "
                f"(over {self._config.max_org_share:.0%}); stopping cleanly until the next cycle",
                connector="salesforce",
            )


def _wait(state: RetryCallState) -> float:
    """Backoff before the next try: none after a renewed session, else Retry-After or jitter."""
    error = state.outcome.exception() if state.outcome else None
    if isinstance(error, SessionExpiredError):
        return 0.0
    if isinstance(error, RetriableConnectorError) and error.retry_after:
        return error.retry_after
    return backoff(state.attempt_number)


def _log_retry(what: str, state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    if not isinstance(error, SessionExpiredError):
        log.warning("salesforce_retry", during=what, attempt=state.attempt_number, error=str(error))


def _http_date(header: str | None) -> datetime | None:
    if not header:
        return None
    try:
        return parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None


def _retry_after(header: str | None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP date), capped."""
    if not header:
        return None
    try:
        return min(300.0, max(0.0, float(header)))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    return min(300.0, max(0.0, moment.timestamp() - time.time()))


def classify(  # noqa: PLR0911 (one return per error family)
    exc: Exception, *, retry_after: float | None = None
) -> ConnectorError:
    """Map a simple-salesforce or transport exception onto the error tree."""
    if isinstance(exc, requests.exceptions.JSONDecodeError):
        return FatalConnectorError(
            "Salesforce sent a response that is not JSON", connector="salesforce"
        )
    if isinstance(exc, requests.RequestException):
        return RetriableConnectorError(f"network: {type(exc).__name__}", connector="salesforce")
    if isinstance(exc, SalesforceOperationError):
        # a bulk job that failed, aborted or timed out may pass when submitted again; a load
        # the API refused (bad CSV, too large) will not
        text = " ".join(str(exc).split())[:300]
        if isinstance(exc, SalesforceBulkV2LoadError):
            return FatalConnectorError(f"bulk load refused: {text}", connector="salesforce")
        return RetriableConnectorError(f"bulk job: {text}", connector="salesforce")
    content = getattr(exc, "content", None)
    first = content[0] if isinstance(content, list) and content else {}
    code = str(first.get("errorCode", "")) if isinstance(first, dict) else ""
    message = str(first.get("message", "")) if isinstance(first, dict) else str(content)
    status = int(getattr(exc, "status", 0) or 0)
    text = f"{code or status}: {message}"[:500]

    def retriable() -> RetriableConnectorError:
        return RetriableConnectorError(text, connector="salesforce", retry_after=retry_after)

    if isinstance(exc, SalesforceExpiredSession):
        return SessionExpiredError(text, connector="salesforce")
    if isinstance(exc, SalesforceRefusedRequest):
        if code == "REQUEST_LIMIT_EXCEEDED":
            if "TotalRequests" in message:
                return BudgetExhaustedError(
                    f"the org's daily API limit is spent ({message}); stopping cleanly",
                    connector="salesforce",
                )
            return retriable()
        return FatalConnectorError(text, connector="salesforce")
    if isinstance(exc, SalesforceMalformedRequest):
        return (
            retriable()
            if code in RETRIABLE_CODES
            else FatalConnectorError(text, connector="salesforce")
        )
    if isinstance(exc, SalesforceResourceNotFound):
        return FatalConnectorError(text, connector="salesforce")
    if status >= 500 or status == 429:
        return retriable()
    return FatalConnectorError(text, connector="salesforce")


def _endpoint(method: str, url: str) -> str:
    path = url.split("?", 1)[0]
    marker = "/services/data/"
    if marker in path:
        rest = path.split(marker, 1)[1].split("/", 1)[-1] if "/" in path.split(marker, 1)[1] else ""
        parts = [p for p in rest.split("/") if p]
        if parts[:1] in (["query"], ["queryAll"]):
            return f"{method} {parts[0]}" + ("More" if len(parts) > 1 else "")
        if parts[:2] == ["jobs", "ingest"] or parts[:2] == ["jobs", "query"]:
            tail = parts[3] if len(parts) > 3 else ""
            return f"{method} jobs/{parts[1]}" + (f"/{tail}" if tail else "")
        if parts[:1] == ["sobjects"] and len(parts) >= 3:
            return f"{method} sobjects/{parts[2]}"
        return f"{method} {'/'.join(parts[:2])}"
    if "/services/oauth2/" in path:
        return f"{method} oauth2/token"
    return f"{method} {path}"


def _api_usage(info: str) -> tuple[int, int] | None:
    """``(used, limit)`` from a ``Sforce-Limit-Info`` header (``api-usage=25/15000``)."""
    for part in info.split(";"):
        key, equals, value = part.strip().partition("=")
        if equals and key == "api-usage" and "/" in value:
            used, total = value.split("/", 1)
            return int(used), int(total)
    return None
