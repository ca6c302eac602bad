"""Salesforce extraction: incremental SOQL (REST pages or a Bulk API 2.0 query) into batches.

Extraction reads ``queryAll`` (so deletions arrive flagged) ordered by ``SystemModstamp``,
from the stored cursor inclusive up to the run start, 2,000 records a page; each page's
cursor is stored once the page is mirrored. When the first page says the result is large, the
rest is read with a Bulk API 2.0 query instead. Hard deletes come from getDeleted while the
cursor is inside its window. Records whose only change since the cursor is icp-sync's own
write-back are left out (``LastModifiedById`` inside a recorded write window), so a cycle
after a write does not pay to read its own writes back. The owned fields' values are read
along and handed over apart from the record (:attr:`connectors.base.Batch.owned`).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from connectors.base import Batch, ConnectorState
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.config import SalesforceConfig
from connectors.salesforce.fields import SOBJECT, Fields
from icp_sync.errors import FatalConnectorError
from icp_sync.log import get_logger
from icp_sync.model import ATTR_PREFIX, ID_COLUMN, CrmObject

__all__ = ["Extractor", "parse_datetime", "soql_datetime", "soql_literal"]

log = get_logger(connector="salesforce")


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


def soql_datetime(moment: datetime) -> str:
    """A SOQL / Salesforce JSON datetime literal in UTC, to the millisecond."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_datetime(text: str) -> datetime:
    """A Salesforce datetime (or a stored cursor) as an aware UTC datetime."""
    return pd.Timestamp(text).tz_convert("UTC").to_pydatetime()


class Extractor:
    """Reads changed Accounts and Opportunities.

    Args:
        client: The API client.
        config: The ``[salesforce]`` section.
        fields: Which fields exist.
        state: Holds the write windows and integration user id; gets the last read time.
        bulk_wait: Seconds between bulk query status polls.
    """

    def __init__(
        self,
        client: SalesforceClient,
        config: SalesforceConfig,
        fields: Fields,
        state: ConnectorState,
        *,
        bulk_wait: float,
    ) -> None:
        self._client = client
        self._config = config
        self._fields = fields
        self._state = state
        self._bulk_wait = bulk_wait

    def extract(self, obj: CrmObject, *, since: str | None, now: datetime) -> Iterator[Batch]:
        """Records of ``obj`` changed since ``since`` (a ``SystemModstamp``), up to ``now``."""
        if not self._client.limit_known:
            self._client.read_limits()
        sobject = SOBJECT[obj]
        select, owned = self._select(obj)
        stamp = self._config.fields.account.get("modified_at", "SystemModstamp")
        if obj is CrmObject.OPPORTUNITY:
            stamp = self._config.fields.opportunity.get("modified_at", "SystemModstamp")
        lower = parse_datetime(since) if since else None
        where = [f"{stamp} <= {soql_datetime(now)}"]
        if lower is not None:
            where.append(f"{stamp} >= {soql_datetime(lower)}")
        if obj is CrmObject.ACCOUNT:
            where += self._own_write_filter(stamp, lower)
        fields = ", ".join({**select, **owned})
        soql = f"SELECT {fields} FROM {sobject} WHERE {' AND '.join(where)} ORDER BY {stamp}, Id"
        yield from self._rest_or_bulk(obj, soql, _Columns(obj, select, owned), stamp, now)
        if obj is CrmObject.ACCOUNT:
            state = self._state.load()
            state["last_read"] = soql_datetime(now)
            self._state.save(state)
        if lower is not None and now - lower <= timedelta(days=self._config.deleted_window_days):
            deleted = self._client.call(
                f"getDeleted {sobject}",
                lambda sf: getattr(sf, sobject).deleted(lower, now),
            )
            ids = tuple(str(r["id"]) for r in deleted.get("deletedRecords", []))
            if ids:
                yield Batch(frame=pd.DataFrame(), deleted=ids)

    def _select(self, obj: CrmObject) -> tuple[dict[str, str], dict[str, str]]:
        """API name -> column for every mapped field that exists; API name -> owned field."""
        sobject = SOBJECT[obj]
        existing = self._fields.existing(sobject)
        fields = self._config.fields
        mapping = fields.account if obj is CrmObject.ACCOUNT else fields.opportunity
        extra = (
            fields.account_attributes if obj is CrmObject.ACCOUNT else fields.opportunity_attributes
        )
        select = {api: column for column, api in mapping.items() if api in existing}
        select |= {api: ATTR_PREFIX + name for name, api in extra.items() if api in existing}
        owned: dict[str, str] = {}
        if obj is CrmObject.ACCOUNT:
            owned = {
                api: key
                for key, api in fields.writeback.items()
                if api in existing and api not in select
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
                connector="salesforce",
            )
        return select, owned

    def _own_write_filter(self, stamp: str, lower: datetime | None) -> list[str]:
        state = self._state.load()
        user = state.get("user_id")
        windows = [w for w in state.get("write_windows", []) if w.get("end")]
        if not user or lower is None:
            return []
        clauses = []
        for window in windows:
            start, end = parse_datetime(window["start"]), parse_datetime(window["end"])
            if end < lower:
                continue
            clauses.append(
                f"(LastModifiedById != {soql_literal(str(user))} OR {stamp} < "
                f"{soql_datetime(start)} OR {stamp} > {soql_datetime(end)})"
            )
        return clauses

    def _rest_or_bulk(
        self, obj: CrmObject, soql: str, columns: _Columns, stamp: str, now: datetime
    ) -> Iterator[Batch]:
        headers = {"Sforce-Query-Options": f"batchSize={self._config.page_size}"}
        page = self._client.call(
            f"query {SOBJECT[obj]}",
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
            yield from self._bulk_query(obj, soql, columns, now)
            return
        log.info("extraction_method", object=str(obj), method="rest", records=total)
        seen: set[str] = set()
        while True:
            records = page.get("records", [])
            done = bool(page.get("done", True))
            rows = [{k: v for k, v in r.items() if k != "attributes"} for r in records]
            cursor = soql_datetime(now) if done else _last_stamp(records, stamp)
            yield columns.batch(pd.DataFrame.from_records(rows, columns=columns.api), cursor)
            if done:
                return
            next_url = str(page["nextRecordsUrl"])
            if next_url in seen:
                raise FatalConnectorError(
                    f"query paging returned {next_url} twice; stopping instead of looping",
                    connector="salesforce",
                )
            seen.add(next_url)
            page = self._client.call(f"queryMore {SOBJECT[obj]}", _query_more(next_url, headers))

    def _bulk_query(
        self, obj: CrmObject, soql: str, columns: _Columns, now: datetime
    ) -> Iterator[Batch]:
        # Bulk API 2.0 does not support ORDER BY: the cursor is safe only at the very end
        unordered = soql.rsplit(" ORDER BY ", 1)[0]
        sobject = SOBJECT[obj]
        pages = self._client.call(
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
            yield columns.batch(frame[columns.api], soql_datetime(now) if last else None)


class _Columns:
    """Splits rows read from Salesforce into the record frame and the owned-field values."""

    def __init__(self, obj: CrmObject, select: Mapping[str, str], owned: Mapping[str, str]):
        self.obj = obj
        self.select = dict(select)
        self.owned = dict(owned)
        self.api = [*self.select, *self.owned]

    def batch(self, rows: pd.DataFrame, cursor: str | None) -> Batch:
        frame = rows[list(self.select)].rename(columns=self.select)
        values: pd.DataFrame | None = None
        id_column = ID_COLUMN[self.obj]
        if self.owned and id_column in frame:
            values = rows[list(self.owned)].rename(columns=self.owned)
            values.index = pd.Index(frame[id_column].astype(str), name="record_id")
            values = values[~values.index.duplicated(keep="last")]
        return Batch(frame=frame, cursor=cursor, owned=values)


def _query_more(url: str, headers: dict[str, str]) -> Callable[[Any], Any]:
    def operation(sf: Any) -> Any:
        return sf.query_more(url, identifier_is_url=True, include_deleted=True, headers=headers)

    return operation


def _last_stamp(records: list[dict[str, Any]], stamp: str) -> str | None:
    if not records:
        return None
    return soql_datetime(parse_datetime(str(records[-1][stamp])))
