"""Salesforce through simple-salesforce: incremental extraction and minimal-call write-back.

The only module that imports simple-salesforce. Records leave it as canonical-named frames.

Extraction reads ``queryAll`` (so deletions arrive flagged) ordered by ``SystemModstamp``,
from the stored cursor inclusive up to the run start, 2,000 records a page; each page's
cursor is stored once the page is mirrored. When the first page says the result is large, the
rest is read with a Bulk API 2.0 query instead. Hard deletes come from getDeleted while the
cursor is inside its window. Records whose only change since the cursor is icp-sync's own
write-back are left out (``LastModifiedById`` inside a recorded write window), so a cycle
after a write does not pay to read its own writes back.

Write-back sends only the planned fields: sObject Collections (200 records a call,
allOrNone false, row locks retried) or, above the bulk threshold, one Bulk API 2.0 ingest
job (failed and unprocessed records read back; row locks retried). Every field is checked
against the allow-list before anything is sent.

Every call is retried on 5xx, timeouts, row locks and concurrency limits with jittered
backoff; an expired session is renewed in every auth mode; the daily limit and the
configured budget end the cycle cleanly.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pandas as pd
import requests
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)
from simple_salesforce.util import exception_handler

from connectors.base import ApiUsage, ApplyBatch, Batch, CheckItem, ConnectorState, FieldSetup
from connectors.salesforce_auth import Token, http_session, obtain_token
from connectors.salesforce_fields import OWNED_ACCOUNT, READ_ONLY, tooling_metadata
from connectors.salesforce_write import (
    RETRIABLE_CODES,
    backoff,
    bulk_update,
    collections_update,
    salesforce_value,
)
from icp_sync.config import SalesforceConfig
from icp_sync.errors import (
    AuthError,
    BudgetExhaustedError,
    ConnectorError,
    FatalConnectorError,
    RetriableConnectorError,
    SessionExpiredError,
)
from icp_sync.log import get_logger
from icp_sync.model import ATTR_PREFIX, CrmObject
from icp_sync.writeback import Plan

__all__ = ["SalesforceConnector", "soql_literal"]

log = get_logger(connector="salesforce")

T = TypeVar("T")

_SOBJECT = {CrmObject.ACCOUNT: "Account", CrmObject.OPPORTUNITY: "Opportunity"}
_READBACK = "icp_"


def soql_literal(value: str) -> str:
    """A SOQL string literal, quotes and backslashes escaped."""
    escaped = (
        value.replace("\\", "\\\\")
        .replace("'", "\\'")
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    return f"'{escaped}'"


def _soql_datetime(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _parse_datetime(text: str) -> datetime:
    return pd.Timestamp(text).tz_convert("UTC").to_pydatetime()


class _NullState:
    def __init__(self) -> None:
        self._state: dict[str, Any] = {}

    def load(self) -> dict[str, Any]:
        return dict(self._state)

    def save(self, state: dict[str, Any]) -> None:
        self._state = dict(state)


class SalesforceConnector:
    """Reads accounts and opportunities from Salesforce and writes owned fields back.

    Args:
        config: The ``[salesforce]`` section.
        state: Where the connector keeps its write windows and integration user id.
        session: A requests session to use (default: one built from the TLS settings).
        sleep: How to wait between retries (injected by tests).
    """

    name = "salesforce"

    def __init__(
        self,
        config: SalesforceConfig,
        *,
        state: ConnectorState | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        bulk_wait: float = 1.0,
    ) -> None:
        self._config = config
        self._state = state or _NullState()
        self._session = session or http_session(config)
        self._session.hooks["response"].append(self._count)
        self._sleep = sleep
        self._bulk_wait = bulk_wait
        self._token: Token | None = None
        self._sf: Salesforce | None = None
        self._fields: dict[str, set[str]] = {}
        self._calls = 0
        self._by_endpoint: dict[str, int] = {}
        self._limit: int | None = None
        self._used: int | None = None
        self._budget_start: int | None = None

    def _count(self, response: requests.Response, *_: Any, **__: Any) -> None:
        self._calls += 1
        endpoint = _endpoint(response.request.method or "", response.url)
        self._by_endpoint[endpoint] = self._by_endpoint.get(endpoint, 0) + 1
        info = response.headers.get("Sforce-Limit-Info", "")
        for part in info.split(";"):
            key, equals, value = part.strip().partition("=")
            if equals and key == "api-usage" and "/" in value:
                used, total = value.split("/", 1)
                self._used, self._limit = int(used), int(total)

    def usage(self) -> ApiUsage:
        """Calls made by this connector, and the org's daily allowance as last reported."""
        remaining = None if self._limit is None or self._used is None else self._limit - self._used
        return ApiUsage(
            calls=self._calls,
            by_endpoint=dict(sorted(self._by_endpoint.items())),
            limit=self._limit,
            remaining=remaining,
        )

    def close(self) -> None:
        """Release the HTTP session."""
        self._session.close()

    def _client(self) -> Salesforce:
        if self._sf is None:
            self._sf = self._login()
        return self._sf

    def _login(self) -> Salesforce:
        token = obtain_token(self._config, self._session)
        self._token = token
        if token.user_id:
            self._remember(user_id=token.user_id)
        log.info("salesforce_authenticated", auth=self._config.auth, instance=token.instance_url)
        return Salesforce(
            instance_url=token.instance_url,
            session_id=token.access_token,
            session=self._session,
            version=self._config.api_version,
        )

    def _remember(self, **values: Any) -> None:
        state = self._state.load()
        state.update(values)
        self._state.save(state)

    def _call(self, what: str, operation: Callable[[Salesforce], T]) -> T:
        """Run one API operation with retries, session renewal and the budget guard."""
        attempts = self._config.max_attempts
        for attempt in range(1, attempts + 1):
            self._guard_budget()
            try:
                return operation(self._client())
            except (SalesforceError, requests.RequestException) as exc:
                error = _classify(exc)
            except RetriableConnectorError as exc:
                error = exc
            if isinstance(error, SessionExpiredError):
                log.info("salesforce_session_expired", action="re-authenticating", during=what)
                self._sf = None
            elif not isinstance(error, RetriableConnectorError):
                raise error
            if attempt == attempts:
                raise error
            if not isinstance(error, SessionExpiredError):
                delay = error.retry_after or backoff(attempt)
                log.warning("salesforce_retry", during=what, attempt=attempt, error=str(error))
                self._sleep(delay)
        raise FatalConnectorError(f"{what}: retries exhausted", connector=self.name)

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
                connector=self.name,
            )
        if self._used >= self._config.max_org_share * self._limit:
            raise BudgetExhaustedError(
                f"the org has used {self._used:,} of its {self._limit:,} daily API calls "
                f"(over {self._config.max_org_share:.0%}); stopping cleanly until the next cycle",
                connector=self.name,
            )

    def read_limits(self) -> dict[str, Any]:
        """The org's ``/limits`` (also primes the budget guard)."""
        limits = self._call("limits", lambda sf: sf.limits())
        daily = limits.get("DailyApiRequests", {})
        if "Max" in daily:
            self._limit = int(daily["Max"])
            self._used = self._limit - int(daily.get("Remaining", 0))
        return dict(limits)

    def _existing_fields(self, sobject: str) -> set[str]:
        if sobject not in self._fields:
            described = self._call(
                f"describe {sobject}", lambda sf: getattr(sf, sobject).describe()
            )
            self._fields[sobject] = {str(f["name"]) for f in described.get("fields", [])}
        return self._fields[sobject]

    def _select(self, obj: CrmObject) -> dict[str, str]:
        """API name -> output column for every mapped field that exists."""
        sobject = _SOBJECT[obj]
        existing = self._existing_fields(sobject)
        fields = self._config.fields
        mapping = fields.account if obj is CrmObject.ACCOUNT else fields.opportunity
        extra = (
            fields.account_attributes if obj is CrmObject.ACCOUNT else fields.opportunity_attributes
        )
        select = {api: column for column, api in mapping.items() if api in existing}
        select |= {api: ATTR_PREFIX + name for name, api in extra.items() if api in existing}
        if obj is CrmObject.ACCOUNT:
            select |= {
                api: ATTR_PREFIX + _READBACK + owned
                for owned, api in fields.writeback.items()
                if api in existing
            }
        missing = [
            api
            for api in (*mapping.values(), "SystemModstamp", "Id")
            if api not in existing and api in ("Id", "SystemModstamp", mapping.get("name", ""))
        ]
        if missing:
            raise FatalConnectorError(
                f"{sobject} has no readable {', '.join(missing)}: check the integration "
                "user's permissions",
                connector=self.name,
            )
        return select

    def extract(self, obj: CrmObject, *, since: str | None, now: datetime) -> Iterator[Batch]:
        """Records of ``obj`` changed since ``since`` (a ``SystemModstamp``), up to ``now``."""
        if self._limit is None:
            self.read_limits()
        sobject = _SOBJECT[obj]
        select = self._select(obj)
        stamp = self._config.fields.account.get("modified_at", "SystemModstamp")
        if obj is CrmObject.OPPORTUNITY:
            stamp = self._config.fields.opportunity.get("modified_at", "SystemModstamp")
        lower = _parse_datetime(since) if since else None
        where = [f"{stamp} <= {_soql_datetime(now)}"]
        if lower is not None:
            where.append(f"{stamp} >= {_soql_datetime(lower)}")
        if obj is CrmObject.ACCOUNT:
            where += self._own_write_filter(stamp, lower)
        fields = ", ".join(select)
        soql = f"SELECT {fields} FROM {sobject} WHERE {' AND '.join(where)} ORDER BY {stamp}, Id"
        yield from self._rest_or_bulk(obj, soql, select, stamp, now)
        if obj is CrmObject.ACCOUNT:
            self._remember(last_read=_soql_datetime(now))
        if lower is not None and now - lower <= timedelta(days=self._config.deleted_window_days):
            deleted = self._call(
                f"getDeleted {sobject}",
                lambda sf: getattr(sf, sobject).deleted(lower, now),
            )
            ids = tuple(str(r["id"]) for r in deleted.get("deletedRecords", []))
            if ids:
                yield Batch(frame=pd.DataFrame(), deleted=ids)

    def _own_write_filter(self, stamp: str, lower: datetime | None) -> list[str]:
        state = self._state.load()
        user = state.get("user_id")
        windows = [w for w in state.get("write_windows", []) if w.get("end")]
        if not user or lower is None:
            return []
        clauses = []
        for window in windows:
            start, end = _parse_datetime(window["start"]), _parse_datetime(window["end"])
            if end < lower:
                continue
            clauses.append(
                f"(LastModifiedById != {soql_literal(str(user))} OR {stamp} < "
                f"{_soql_datetime(start)} OR {stamp} > {_soql_datetime(end)})"
            )
        return clauses

    def _rest_or_bulk(
        self,
        obj: CrmObject,
        soql: str,
        select: Mapping[str, str],
        stamp: str,
        now: datetime,
    ) -> Iterator[Batch]:
        headers = {"Sforce-Query-Options": f"batchSize={self._config.page_size}"}
        page = self._call(
            f"query {_SOBJECT[obj]}",
            lambda sf: sf.query(soql, include_deleted=True, headers=headers),
        )
        total = int(page.get("totalSize", 0))
        if total > self._config.bulk_query_threshold and not page.get("done", True):
            log.info(
                "extraction_method",
                object=str(obj),
                method="bulk",
                records=total,
                threshold=self._config.bulk_query_threshold,
            )
            yield from self._bulk_query(obj, soql, select, now)
            return
        log.info("extraction_method", object=str(obj), method="rest", records=total)
        seen: set[str] = set()
        while True:
            records = page.get("records", [])
            done = bool(page.get("done", True))
            frame = _frame(records, select)
            cursor = _soql_datetime(now) if done else _last_stamp(records, stamp)
            yield Batch(frame=frame, cursor=cursor)
            if done:
                return
            next_url = str(page["nextRecordsUrl"])
            if next_url in seen:
                raise FatalConnectorError(
                    f"query paging returned {next_url} twice; stopping instead of looping",
                    connector=self.name,
                )
            seen.add(next_url)
            page = self._call(f"queryMore {_SOBJECT[obj]}", _query_more(next_url, headers))

    def _bulk_query(
        self, obj: CrmObject, soql: str, select: Mapping[str, str], now: datetime
    ) -> Iterator[Batch]:
        # Bulk API 2.0 does not support ORDER BY: the cursor is safe only at the very end
        unordered = soql.rsplit(" ORDER BY ", 1)[0]
        sobject = _SOBJECT[obj]
        pages = self._call(
            f"bulk query {sobject}",
            lambda sf: list(
                getattr(sf.bulk2, sobject).query_all(
                    unordered, max_records=50_000, wait=self._bulk_wait
                )
            ),
        )
        for index, text in enumerate(pages):
            frame = pd.read_csv(
                io.StringIO(str(text)), dtype=str, keep_default_na=False, na_values=[""]
            )
            last = index == len(pages) - 1
            yield Batch(
                frame=frame.rename(columns=dict(select))[list(select.values())],
                cursor=_soql_datetime(now) if last else None,
            )

    def writable_fields(self) -> dict[str, str]:
        """Owned field -> API name, for those that exist on Account."""
        existing = self._existing_fields("Account")
        return {k: v for k, v in self._config.fields.writeback.items() if v in existing}

    def ensure_fields(self, *, dry_run: bool) -> FieldSetup:
        """Create the missing ICP fields through the Tooling API (idempotent)."""
        wanted: dict[str, Any] = {}
        for owned, api in self._config.fields.writeback.items():
            wanted[f"Account.{api}"] = OWNED_ACCOUNT[owned]
        override = self._config.fields.account_attributes.get("icp_tier_override")
        for api, spec in READ_ONLY.items():
            name = override if api == "ICP_Tier_Override__c" and override else api
            wanted[f"{spec.sobject}.{name}"] = spec
        result = FieldSetup(dry_run=dry_run)
        for full_name, spec in wanted.items():
            sobject, api = full_name.split(".", 1)
            if api in self._existing_fields(sobject):
                result.existing.append(full_name)
                continue
            if dry_run:
                result.created.append(full_name)
                continue
            body = {"FullName": full_name, "Metadata": tooling_metadata(spec)}
            try:
                self._call(f"create {full_name}", _tooling_create(body))
            except FatalConnectorError as exc:
                result.failed[full_name] = str(exc)
                continue
            result.created.append(full_name)
            self._fields.get(sobject, set()).add(api)
        self._fields.clear()
        return result

    def check(self) -> list[CheckItem]:
        """Login, API budget, readable objects and fields, write-back fields."""
        items: list[CheckItem] = []
        try:
            limits = self.read_limits()
        except AuthError as exc:
            return [
                CheckItem(
                    name="salesforce login",
                    ok=False,
                    detail=str(exc),
                    fix="check the credentials and the connected app",
                )
            ]
        except ConnectorError as exc:
            return [
                CheckItem(
                    name="salesforce connection",
                    ok=False,
                    detail=str(exc),
                    fix="check instance_url / login_url, ca_file and the network",
                )
            ]
        items.append(
            CheckItem(
                name="salesforce login",
                ok=True,
                detail=f"{self._config.auth} on {self._token.instance_url if self._token else '?'}",
            )
        )
        daily = limits.get("DailyApiRequests", {})
        items.append(
            CheckItem(
                name="API budget",
                ok=True,
                detail=f"{daily.get('Remaining', '?'):,} of {daily.get('Max', '?'):,} daily "
                f"calls left; a cycle may use {self._config.budget_share:.0%}",
            )
        )
        fields = self._config.fields
        for obj, mapping, extra in (
            (CrmObject.ACCOUNT, fields.account, fields.account_attributes),
            (CrmObject.OPPORTUNITY, fields.opportunity, fields.opportunity_attributes),
        ):
            sobject = _SOBJECT[obj]
            try:
                existing = self._existing_fields(sobject)
            except ConnectorError as exc:
                items.append(
                    CheckItem(
                        name=f"{sobject} access",
                        ok=False,
                        detail=str(exc),
                        fix=f"grant the integration user read access to {sobject}",
                    )
                )
                continue
            absent = [f"{column} ({api})" for column, api in mapping.items() if api not in existing]
            absent += [f"attr_{n} ({api})" for n, api in extra.items() if api not in existing]
            required = [
                a
                for a in absent
                if a.split(" ")[0] in ("account_id", "opportunity_id", "name", "modified_at")
            ]
            items.append(
                CheckItem(
                    name=f"{sobject} fields",
                    ok=not absent,
                    required=bool(required),
                    detail=f"{len(mapping) + len(extra) - len(absent)} mapped fields readable"
                    + (f"; missing: {', '.join(absent)}" if absent else ""),
                    fix=""
                    if not absent
                    else (
                        "create the fields or grant field-level security; missing lifecycle "
                        "fields are derived from deals, other optional ones are left empty"
                    ),
                )
            )
        writable = self.writable_fields()
        missing = sorted(set(fields.writeback) - set(writable))
        items.append(
            CheckItem(
                name="write-back fields",
                ok=not missing,
                required=False,
                detail=f"{len(writable)} of {len(fields.writeback)} ICP fields exist on Account"
                + (
                    f"; missing: {', '.join(fields.writeback[m] for m in missing)}"
                    if missing
                    else ""
                ),
                fix="run `icp-sync setup-fields` (and grant field-level security)"
                if missing
                else "",
            )
        )
        return items

    def apply(self, plan: Plan) -> Iterator[ApplyBatch]:
        """Write the plan's Account changes; yields results per call (or per bulk job)."""
        mapping = self._config.fields.writeback
        allowed = set(self.writable_fields().values())
        records: dict[str, dict[str, Any]] = {}
        for (obj, record_id), values in plan.by_record().items():
            if obj is not CrmObject.ACCOUNT:
                raise FatalConnectorError(f"icp-sync writes no {obj} fields", connector=self.name)
            row = {mapping[owned]: salesforce_value(owned, v) for owned, v in values.items()}
            outside = set(row) - allowed
            if outside:
                raise FatalConnectorError(
                    f"refusing to write {', '.join(sorted(outside))}: not an existing owned field",
                    connector=self.name,
                )
            records[record_id] = row
        if not records:
            return
        windows = [w for w in self._state.load().get("write_windows", []) if w.get("end")]
        windows = [*windows[-5:], {"start": _soql_datetime(datetime.now(UTC)), "end": None}]
        self._remember(write_windows=windows)
        conflicts = self._changed_since_read(list(records))
        if conflicts:
            reason = "changed in Salesforce since it was read; written next cycle"
            yield ApplyBatch(deferred=dict.fromkeys(conflicts, reason))
            for record_id in conflicts:
                records.pop(record_id, None)
        owned_of = {api: owned for owned, api in mapping.items()}
        written: str | None = None
        try:
            if len(records) > self._config.bulk_write_threshold:
                log.info("writeback_method", method="bulk", records=len(records))
                batches = bulk_update(
                    self._call,
                    _csv_upload,
                    records,
                    owned_of,
                    max_attempts=self._config.max_attempts,
                    sleep=self._sleep,
                    poll=self._bulk_wait,
                )
            else:
                log.info("writeback_method", method="collections", records=len(records))
                batches = collections_update(
                    self._call,
                    records,
                    owned_of,
                    max_attempts=self._config.max_attempts,
                    sleep=self._sleep,
                )
            for batch in batches:
                written = written or next(iter(batch.written), None)
                yield batch
        finally:
            windows[-1]["end"] = _soql_datetime(datetime.now(UTC) + timedelta(seconds=1))
            self._remember(write_windows=windows)
        if written and not self._state.load().get("user_id"):
            self._learn_user(written)

    def _changed_since_read(self, ids: list[str]) -> list[str]:
        read_at = self._state.load().get("last_read")
        if not read_at or not ids:
            return []
        user = self._state.load().get("user_id")
        soql = f"SELECT Id FROM Account WHERE SystemModstamp > {read_at}" + (
            f" AND LastModifiedById != {soql_literal(str(user))}" if user else ""
        )
        result = self._call("conflict check", lambda sf: sf.query_all(soql))
        wanted = set(ids)
        return [str(r["Id"]) for r in result.get("records", []) if str(r["Id"]) in wanted]

    def _learn_user(self, record_id: str | None) -> None:
        if record_id is None:
            return
        soql = f"SELECT LastModifiedById FROM Account WHERE Id = {soql_literal(record_id)}"
        result = self._call("identify integration user", lambda sf: sf.query(soql))
        rows = result.get("records", [])
        if rows and rows[0].get("LastModifiedById"):
            self._remember(user_id=str(rows[0]["LastModifiedById"]))


def _frame(records: list[dict[str, Any]], select: Mapping[str, str]) -> pd.DataFrame:
    rows = [{k: v for k, v in r.items() if k != "attributes"} for r in records]
    frame = pd.DataFrame.from_records(rows, columns=list(select))
    return frame.rename(columns=dict(select))


def _last_stamp(records: list[dict[str, Any]], stamp: str) -> str | None:
    if not records:
        return None
    return _soql_datetime(_parse_datetime(str(records[-1][stamp])))


def _csv_upload(job_id: str, data: bytes) -> Callable[[Salesforce], Any]:
    """PUT a Bulk API 2.0 job's CSV (answered 201 with no body, which ``restful`` can't read)."""

    def operation(sf: Salesforce) -> Any:
        headers = {**sf.headers, "Content-Type": "text/csv; charset=UTF-8"}
        url = f"{sf.bulk2_url}ingest/{job_id}/batches"
        response = sf.session.put(url, data=data, headers=headers, timeout=300)
        if response.status_code != 201:
            exception_handler(response, name="bulk upload")
        return None

    return operation


def _restful(path: str, **kwargs: Any) -> Callable[[Salesforce], Any]:
    def operation(sf: Salesforce) -> Any:
        return sf.restful(path, **kwargs)

    return operation


def _tooling_create(body: dict[str, Any]) -> Callable[[Salesforce], Any]:
    def operation(sf: Salesforce) -> Any:
        return sf.toolingexecute("sobjects/CustomField", method="POST", data=body)

    return operation


def _query_more(url: str, headers: dict[str, str]) -> Callable[[Salesforce], Any]:
    def operation(sf: Salesforce) -> Any:
        return sf.query_more(url, identifier_is_url=True, include_deleted=True, headers=headers)

    return operation


def _classify(exc: Exception) -> ConnectorError:  # noqa: PLR0911 (one return per error family)
    """Map a simple-salesforce or transport exception onto the error tree."""
    if isinstance(exc, requests.exceptions.JSONDecodeError):
        return FatalConnectorError(
            "Salesforce sent a response that is not JSON", connector="salesforce"
        )
    if isinstance(exc, requests.RequestException):
        return RetriableConnectorError(f"network: {type(exc).__name__}", connector="salesforce")
    content = getattr(exc, "content", None)
    first = content[0] if isinstance(content, list) and content else {}
    code = str(first.get("errorCode", "")) if isinstance(first, dict) else ""
    message = str(first.get("message", "")) if isinstance(first, dict) else str(content)
    status = int(getattr(exc, "status", 0) or 0)
    text = f"{code or status}: {message}"[:500]
    if isinstance(exc, SalesforceExpiredSession):
        return SessionExpiredError(text, connector="salesforce")
    if isinstance(exc, SalesforceRefusedRequest):
        if code == "REQUEST_LIMIT_EXCEEDED":
            if "TotalRequests" in message:
                return BudgetExhaustedError(
                    f"the org's daily API limit is spent ({message}); stopping cleanly",
                    connector="salesforce",
                )
            return RetriableConnectorError(text, connector="salesforce")
        return FatalConnectorError(text, connector="salesforce")
    if isinstance(exc, SalesforceMalformedRequest):
        if code in RETRIABLE_CODES:
            return RetriableConnectorError(text, connector="salesforce")
        return FatalConnectorError(text, connector="salesforce")
    if isinstance(exc, SalesforceResourceNotFound):
        return FatalConnectorError(text, connector="salesforce")
    if status >= 500 or status == 429:
        return RetriableConnectorError(text, connector="salesforce")
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
