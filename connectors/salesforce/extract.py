"""Salesforce extraction: incremental SOQL (REST pages or a Bulk API 2.0 query) into batches.

Extraction reads ``queryAll`` (so deletions arrive flagged) ordered by ``SystemModstamp``,
from the stored cursor minus a lookback overlap, 2,000 records a page; each page's cursor is
stored once the page is mirrored. Cursors come from the server (the newest
``SystemModstamp`` seen, and once a read is complete the server's ``Date`` when it began),
never from this machine's clock, and the overlap re-reads the last minutes so that a commit
stamped before it became visible is not skipped (re-read rows are deduplicated by id and row
hash, so they cost no write). Own write-backs are read back
like any change: a user's edit or a Flow that lands in a write window is never hidden.
When the first page says the result is large, the rest is read with a Bulk API 2.0 query
(:mod:`~connectors.salesforce.bulk_query`). Deletes follow on their own cursor
(:mod:`~connectors.salesforce.deletes`). The owned fields' values are read along and
handed over apart from the record (:attr:`connectors.base.Batch.owned`).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from connectors.base import Batch, ConnectorState
from connectors.salesforce.bulk_query import BulkQuery
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.config import SalesforceConfig
from connectors.salesforce.deletes import Deletions
from connectors.salesforce.fields import SOBJECT, Fields
from connectors.salesforce.prefetch import Prefetch
from connectors.salesforce.soql import parse_datetime, soql_datetime, soql_literal
from connectors.salesforce.write import unrecorded_writes
from icp_sync.errors import FatalConnectorError
from icp_sync.log import get_logger
from icp_sync.model import ATTR_PREFIX, ID_COLUMN, CrmObject
from icp_sync.writeback import canonical_value

__all__ = ["Extractor", "parse_datetime", "soql_datetime", "soql_literal"]

log = get_logger(connector="salesforce")

_MODIFIER = "LastModifiedById"


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
        self._wait = bulk_wait
        self._bulk = BulkQuery(client, state, wait=bulk_wait, page_records=config.bulk_page_records)
        self._prefetch = Prefetch(client, config.api_version)
        self._deletions = Deletions(client, config, state, prefetch=self._prefetch)
        self._cursors: dict[CrmObject, str | None] = {}
        self._now = datetime.min.replace(tzinfo=UTC)
        self._workers: ThreadPoolExecutor | None = None
        self._ahead: Future[list[_Ahead]] | None = None

    def prefetch(self, cursors: Mapping[CrmObject, str | None], *, now: datetime) -> int:
        """Read the first page of each incremental query, and the getDeleted windows due,
        in one Composite call (objects read in full or by a bulk job are left out)."""
        self._cursors = dict(cursors)
        if self._ahead is not None:  # an interrupted cycle's read-ahead: stale now
            self._ahead.exception()
            self._ahead = None
        resuming = self._state.load().get("bulk_query", {})
        queries = {
            SOBJECT[obj]: self._query(obj, since)[0]
            for obj, since in cursors.items()
            if since is not None and SOBJECT[obj] not in resuming
        }
        # after the describes (if any): the org's clock as of the latest answer
        started = self._client.server_now(now)
        clock = max(started, self._client.server_clock(started))
        due = {
            SOBJECT[obj]: self._deletions.due_window(obj, now=clock)
            for obj, since in cursors.items()
            if since is not None
        }
        windows = {sobject: w for sobject, w in due.items() if isinstance(w, tuple)}
        waiting = {sobject for sobject, w in due.items() if w == "wait"}
        return self._prefetch.run(queries, windows, waiting=waiting, started=started)

    def extract(self, obj: CrmObject, *, since: str | None, now: datetime) -> Iterator[Batch]:
        """Records of ``obj`` changed since ``since`` (a ``SystemModstamp``), then deletes.

        The org's daily limit arms the budget guard from the ``Sforce-Limit-Info`` header of
        every answer, so no ``/limits`` call is needed.
        """
        self._now = now
        self._collect_ahead()
        soql, columns = self._query(obj, since)
        if columns.owned:
            sobject = SOBJECT[obj]
            unrecorded = unrecorded_writes(self._client, self._state, sobject, poll=self._wait)
            columns.unrecorded = _in_flight(unrecorded, columns.owned)
        ahead = self._prefetch.page(soql)
        started = ahead[1] if ahead else self._client.server_now(now)
        columns.started = soql_datetime(started)
        yield from self._rest_or_bulk(obj, soql, columns, first=ahead[0] if ahead else None)
        # the Date header has whole seconds: the newest stamp read may be later
        read_at = max(started, parse_datetime(columns.newest)) if columns.newest else started
        state = self._state.load()
        # Account keeps the original key; deals (written by the compliance monitor) their own
        key = "last_read" if obj is CrmObject.ACCOUNT else f"last_read:{SOBJECT[obj]}"
        state[key] = soql_datetime(read_at)
        self._state.save(state)
        live = columns.live()
        if since is None and live is not None:
            yield from self._deletions.after_full_read(obj, live, read_from=started)
        else:
            yield from self._deletions.pending(obj, now=self._client.server_now(now))

    def _query(self, obj: CrmObject, since: str | None) -> tuple[str, _Columns]:
        """The SOQL of an extraction from ``since``, and the columns it reads."""
        sobject = SOBJECT[obj]
        select, owned = self._select(obj)
        stamp = self._config.fields.account.get("modified_at", "SystemModstamp")
        if obj is CrmObject.OPPORTUNITY:
            stamp = self._config.fields.opportunity.get("modified_at", "SystemModstamp")
        where = ""
        if since:
            lookback = timedelta(seconds=self._config.lookback_seconds)
            where = f" WHERE {stamp} >= {soql_datetime(parse_datetime(since) - lookback)}"
        user = self._state.load().get("user_id")
        modifier = _MODIFIER if owned and _MODIFIER in self._fields.existing(sobject) else None
        fields = ", ".join({**select, **owned, **({modifier: ""} if modifier else {})})
        soql = f"SELECT {fields} FROM {sobject}{where} ORDER BY {stamp}, Id"
        columns = _Columns(
            obj, select, owned, stamp=stamp, since=since, user=str(user) if user else None
        )
        if modifier:
            columns.api.append(modifier)
        return soql, columns

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

    def _rest_or_bulk(
        self, obj: CrmObject, soql: str, columns: _Columns, *, first: dict[str, Any] | None
    ) -> Iterator[Batch]:
        headers = self._headers()
        saved = self._bulk.saved(SOBJECT[obj])
        resuming = saved is not None
        # rows read by an earlier run of a kept job are not read again: not a complete read
        columns.partial = bool(saved and saved.get("locator"))
        page: dict[str, Any] = first or {}
        if not resuming and first is None:
            page = self._client.call(
                f"query {SOBJECT[obj]}",
                lambda sf: sf.query(soql, include_deleted=True, headers=headers),
            )
        total = int(page.get("totalSize", 0))
        if resuming or self._bulky(page):
            log.info(
                "extraction_method",
                object=str(obj),
                method="bulk",
                records=total,
                threshold=self._config.bulk_query_threshold,
            )
            self._bulk.submit(SOBJECT[obj], _unordered(soql))
            self._read_ahead(obj)
            yield from self._bulk_query(obj, soql, columns)
            return
        log.info("extraction_method", object=str(obj), method="rest", records=total)
        seen: set[str] = set()
        while True:
            records = page.get("records", [])
            done = bool(page.get("done", True))
            rows = [{k: v for k, v in r.items() if k != "attributes"} for r in records]
            frame = pd.DataFrame.from_records(rows, columns=columns.api)
            yield columns.batch(frame, final=done)
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

    def _headers(self) -> dict[str, str]:
        return {"Sforce-Query-Options": f"batchSize={self._config.page_size}"}

    def _bulky(self, page: Mapping[str, Any]) -> bool:
        """Whether a first page says the rest is best read by a Bulk API 2.0 query."""
        total = int(page.get("totalSize", 0))
        return total > self._config.bulk_query_threshold and not page.get("done", True)

    def _read_ahead(self, current: CrmObject) -> None:
        """Start the bulk jobs of the objects read after ``current``, so the org runs them
        while ``current`` is read. Their first page (the size probe a read makes anyway) is
        read on a worker thread meanwhile and kept for their turn: no extra call, no wait.
        The worker only calls the API; what it found is kept (job ids, pages) on this
        thread when the next object's read begins (:meth:`_collect_ahead`)."""
        later = list(CrmObject)[list(CrmObject).index(current) + 1 :]
        probes: list[tuple[CrmObject, str]] = []
        for obj in (o for o in later if o in self._cursors):
            if self._bulk.saved(SOBJECT[obj]) is not None:
                continue
            soql = self._query(obj, self._cursors[obj])[0]
            page = self._prefetch.peek(soql)
            if page is None:
                probes.append((obj, soql))
            elif self._bulky(page):
                log.info("bulk_query_ahead", object=str(obj), records=page.get("totalSize"))
                self._bulk.submit(SOBJECT[obj], _unordered(soql))
        if probes and self._ahead is None:
            self._workers = self._workers or ThreadPoolExecutor(1, thread_name_prefix="ahead")
            self._ahead = self._workers.submit(self._probe_ahead, probes)

    def _probe_ahead(self, probes: list[tuple[CrmObject, str]]) -> list[_Ahead]:
        found: list[_Ahead] = []
        for obj, soql in probes:
            sobject = SOBJECT[obj]
            started = self._client.server_now(self._now)
            page = self._client.call(f"query {sobject}", _probe(soql, self._headers()))
            job = None
            if self._bulky(page):
                log.info("bulk_query_ahead", object=str(obj), records=page.get("totalSize"))
                job = self._bulk.create(sobject, _unordered(soql))
            found.append(_Ahead(obj=obj, soql=soql, page=page, started=started, job=job))
        return found

    def _collect_ahead(self) -> None:
        """Keep what the read-ahead found (waits for it; its errors surface here)."""
        if self._ahead is None:
            return
        ahead, self._ahead = self._ahead, None
        for found in ahead.result():
            self._prefetch.keep(found.soql, found.page, found.started)
            if found.job is not None:
                self._bulk.adopt(SOBJECT[found.obj], _unordered(found.soql), found.job)

    def close(self) -> None:
        """Wait for a read-ahead still running (its findings are dropped)."""
        if self._workers is not None:
            self._workers.shutdown(wait=True, cancel_futures=True)
            self._workers, self._ahead = None, None

    def _bulk_query(self, obj: CrmObject, soql: str, columns: _Columns) -> Iterator[Batch]:
        for page in self._bulk.pages(SOBJECT[obj], _unordered(soql)):
            columns.newest = page.newest or columns.newest
            frame = pd.read_csv(
                io.StringIO(page.text), dtype=str, keep_default_na=False, na_values=[""]
            )
            for name in columns.api:
                if name not in frame:
                    frame[name] = None
            yield columns.batch(frame[columns.api], final=page.last, ordered=False)
            page.newest = columns.newest


@dataclass(frozen=True, slots=True)
class _Ahead:
    """A later object's first page read ahead, and the bulk job started for it."""

    obj: CrmObject
    soql: str
    page: dict[str, Any]
    started: datetime
    job: str | None


def _probe(soql: str, headers: dict[str, str]) -> Callable[[Any], dict[str, Any]]:
    """The first page of ``soql`` (through queryAll), as a client operation."""

    def operation(sf: Any) -> dict[str, Any]:
        page: dict[str, Any] = sf.query(soql, include_deleted=True, headers=headers)
        return page

    return operation


def _unordered(soql: str) -> str:
    """``soql`` without its ORDER BY: Bulk API 2.0 does not support it (the cursor is safe
    only once the whole result was read)."""
    return soql.rsplit(" ORDER BY ", 1)[0]


class _Columns:
    """Splits rows read from Salesforce into the record frame and the owned-field values,
    and follows the newest ``SystemModstamp`` seen (the next cursor) and the live ids."""

    def __init__(
        self,
        obj: CrmObject,
        select: Mapping[str, str],
        owned: Mapping[str, str],
        *,
        stamp: str,
        since: str | None,
        user: str | None = None,
    ):
        self.obj = obj
        self.select = dict(select)
        self.owned = dict(owned)
        self.api = [*self.select, *self.owned]
        self.stamp = stamp
        self.newest = since
        self.started: str | None = None
        self.user = user
        self.unrecorded: dict[str, dict[str, str]] | None = None
        """Values icp-sync may have written without recording them (see ``Batch``)."""
        self.partial = False
        self._live: set[str] = set()

    def live(self) -> frozenset[str] | None:
        """Ids read whose row is not flagged deleted (``None`` unless every row was read here
        with its deleted flag)."""
        if self.partial or "IsDeleted" not in self.api:
            return None
        return frozenset(self._live)

    def batch(self, rows: pd.DataFrame, *, final: bool, ordered: bool = True) -> Batch:
        """One batch; its cursor is the newest stamp seen (ordered pages, or the last one)."""
        frame = rows[list(self.select)].rename(columns=self.select)
        id_column = ID_COLUMN[self.obj]
        if self.stamp in rows and not rows.empty:
            stamps = pd.to_datetime(rows[self.stamp], utc=True, errors="coerce").dropna()
            if not stamps.empty:
                newest = stamps.max().to_pydatetime()
                if self.newest is None or newest > parse_datetime(self.newest):
                    self.newest = soql_datetime(newest)
        if "IsDeleted" in rows and id_column in frame:
            flags = rows["IsDeleted"].astype(str).str.lower() == "true"
            self._live.update(frame.loc[~flags.to_numpy(), id_column].astype(str))
            self._live.difference_update(frame.loc[flags.to_numpy(), id_column].astype(str))
        values: pd.DataFrame | None = None
        if self.owned and id_column in frame:
            values = rows[list(self.owned)].rename(columns=self.owned)
            values.index = pd.Index(frame[id_column].astype(str), name="record_id")
            values = values[~values.index.duplicated(keep="last")]
        others: frozenset[str] | None = None
        if values is not None and self.user and _MODIFIER in rows:
            by = rows[_MODIFIER].astype(str).str[:15] != self.user[:15]
            others = frozenset(frame.loc[by.to_numpy(), id_column].astype(str))
        cursor = self.newest if ordered else None
        if final:
            # caught up: the read covered everything committed before it started
            moments = [m for m in (self.newest, self.started) if m]
            cursor = max(moments, key=parse_datetime) if moments else None
        return Batch(
            frame=frame,
            cursor=cursor,
            owned=values,
            edited_by_others=others,
            unrecorded=self.unrecorded if values is not None else None,
        )


def _in_flight(
    intent: Mapping[str, Mapping[str, Any]], owned: Mapping[str, str]
) -> dict[str, dict[str, str]]:
    """An interrupted write's values keyed as read-back values are: owned field, canonical."""
    return {
        rid: {owned[api]: canonical_value(v) for api, v in values.items() if api in owned}
        for rid, values in intent.items()
    }


def _query_more(url: str, headers: dict[str, str]) -> Callable[[Any], Any]:
    def operation(sf: Any) -> Any:
        return sf.query_more(url, identifier_is_url=True, include_deleted=True, headers=headers)

    return operation
