"""HubSpot extraction: incremental CRM search past the 10,000-result cap, or list paging.

Incremental reads search on ``hs_lastmodifieddate >= cursor - lookback`` sorted ascending,
200 records a page. The search API never returns more than 10,000 results for one query, so
before the next page would pass the cap the window is re-anchored at the newest stamp read:
the next query asks for ``stamp > T`` or (``stamp = T`` and an id not yet read), so a record
is neither dropped nor read twice; when more than 900 records share one stamp (too many to
exclude by id: 9 filters of 100 ids), those are drained by id first (re-reading them once).
Records are deduplicated by id, each page's cursor is the newest stamp read (an inclusive
bound: records sharing it are re-read next time, never skipped), and once a read is complete
the cursor moves to the portal's clock when the read began.

A full read (no cursor) pages through the object's list (100 a page) and then hands over
every live id (:attr:`connectors.base.Batch.live`), so records missing from it are deleted
in the mirror. Archived records are listed every cycle and handed over as deletes. Deals get
their company through v4 associations (batch read; the list returns them inline) and their
stage mapped to open / won / lost through the pipelines. The owned properties are read along
and handed over apart from the record (:attr:`connectors.base.Batch.owned`).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from connectors.base import Batch, ConnectorState
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.config import HubSpotConfig
from connectors.hubspot.fields import KIND, Metadata
from icp_sync.errors import FatalConnectorError
from icp_sync.log import get_logger
from icp_sync.model import ATTR_PREFIX, COLUMNS, ID_COLUMN, CrmObject

__all__ = ["Extractor", "iso", "parse_moment"]

log = get_logger(connector="hubspot")

STAMP = "hs_lastmodifieddate"
_PAGE = 200
_VALUES = 100  # values one IN / NOT_IN filter takes
_MAX_EXCLUDED = 9 * _VALUES  # a filter group holds 10 filters: the stamp and 9 NOT_IN
INTENT = "write_in_flight"


def parse_moment(value: str) -> datetime:
    """An ISO-8601 moment or epoch milliseconds as an aware datetime."""
    if value.isdigit():
        return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def iso(moment: datetime) -> str:
    """A moment as ISO-8601 UTC with milliseconds (the cursor's form)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class Extractor:
    """Reads changed companies and deals.

    Args:
        client: The API client.
        config: The ``[hubspot]`` section.
        metadata: Which properties exist, and the deal stages.
        state: Holds the write in flight (whose read-back is not someone else's edit).
    """

    def __init__(
        self,
        client: HubSpotClient,
        config: HubSpotConfig,
        metadata: Metadata,
        state: ConnectorState,
    ) -> None:
        self._client = client
        self._config = config
        self._metadata = metadata
        self._state = state

    def extract(self, obj: CrmObject, *, since: str | None, now: datetime) -> Iterator[Batch]:
        """Records of ``obj`` changed since ``since`` (an ISO stamp), then archived ones."""
        kind = KIND[obj]
        shape = _Shape(obj, self._config, self._metadata)
        started: datetime | None = None
        newest = parse_moment(since) if since else None
        if since is None:
            live: set[str] = set()
            for records in self._list(kind, shape):
                started = started or self._client.server_now(now)
                live.update(str(r["id"]) for r in records)
                yield shape.batch(records, self._companies(obj, records), self._intent())
            yield Batch(frame=shape.empty(), live=frozenset(live))
        else:
            lookback = timedelta(seconds=self._config.lookback_seconds)
            for records in self._search(kind, shape, parse_moment(since) - lookback):
                started = started or self._client.server_now(now)
                stamps = [_stamp(r) for r in records]
                newest = max([s for s in stamps if s] + ([newest] if newest else []), default=None)
                batch = shape.batch(records, self._companies(obj, records), self._intent())
                yield Batch(
                    frame=batch.frame,
                    owned=batch.owned,
                    edited_by_others=batch.edited_by_others,
                    cursor=iso(newest) if newest else None,
                )
        archived = self._archived(kind) if self._archive_due(kind, since, now) else []
        if archived:
            yield Batch(frame=shape.empty(), deleted=tuple(archived))
        moments = [m for m in (newest, started) if m]
        if moments:
            yield Batch(frame=shape.empty(), cursor=iso(max(moments)))

    def _archive_due(self, kind: str, since: str | None, now: datetime) -> bool:
        """Whether to list archived records now (always on a full read), and note it."""
        every = timedelta(minutes=self._config.archived_every_minutes)
        state = self._state.load()
        listed = state.get("archived_listed", {})
        last = listed.get(kind)
        if since is not None and every and last and parse_moment(last) + every > now:
            return False
        listed[kind] = iso(now)
        state["archived_listed"] = listed
        self._state.save(state)
        return True

    def _intent(self) -> dict[str, dict[str, Any]]:
        return dict(self._state.load().get(INTENT) or {})

    def _list(self, kind: str, shape: _Shape) -> Iterator[list[dict[str, Any]]]:
        after: str | None = None
        associations = ["companies"] if kind == "deals" else None
        pages: set[str] = set()
        while True:
            page = self._client.list_page(
                kind, properties=shape.properties, after=after, associations=associations
            )
            yield list(page.get("results") or [])
            after = _next(page)
            if not after:
                return
            if after in pages:
                raise FatalConnectorError(
                    f"{kind} list paging returned cursor {after} twice; stopping instead of "
                    "looping",
                    connector="hubspot",
                )
            pages.add(after)

    def _archived(self, kind: str) -> list[str]:
        ids: list[str] = []
        after: str | None = None
        while True:
            page = self._client.list_page(kind, properties=[], after=after, archived=True)
            ids += [str(r["id"]) for r in page.get("results") or []]
            after = _next(page)
            if not after:
                return ids

    def _search(self, kind: str, shape: _Shape, start: datetime) -> Iterator[list[dict[str, Any]]]:
        """Every record with a stamp at or after ``start``, once, in stamp order (by window)."""
        anchor = _ms(start)
        excluded: set[str] = set()  # ids read whose stamp equals the anchor
        seen: set[str] = set()
        while True:
            if len(excluded) > _MAX_EXCLUDED:
                yield from self._drain(kind, shape, anchor, seen)
                groups = [_group((STAMP, "GT", str(anchor)))]
            elif excluded:
                groups = [
                    _group((STAMP, "GT", str(anchor))),
                    _group((STAMP, "EQ", str(anchor)), *_not_in("hs_object_id", excluded)),
                ]
            else:
                groups = [_group((STAMP, "GTE", str(anchor)))]
            window = _Window()
            yield from self._pages(kind, shape, groups, STAMP, seen=seen, window=window)
            if window.complete or window.last is None:
                return
            if window.last == anchor:
                excluded |= window.at_last
            else:
                anchor, excluded = window.last, set(window.at_last)
            log.info("hubspot_search_reanchored", object=kind, anchor=anchor, read=len(seen))

    def _pages(
        self,
        kind: str,
        shape: _Shape,
        groups: list[dict[str, Any]],
        sort: str,
        *,
        seen: set[str],
        window: _Window,
    ) -> Iterator[list[dict[str, Any]]]:
        """The pages of one search query up to the cap; new records only."""
        after: str | None = None
        while True:
            page = self._client.search(
                kind,
                filter_groups=groups,
                sorts=[{"propertyName": sort, "direction": "ASCENDING"}],
                properties=shape.properties,
                after=after,
                limit=_PAGE,
            )
            records = list(page.get("results") or [])
            fresh = [r for r in records if str(r["id"]) not in seen]
            seen.update(str(r["id"]) for r in records)
            window.track(records)
            if fresh:
                yield fresh
            after = _next(page)
            if not after:
                window.complete = True
                return
            if int(after) + _PAGE > self._config.search_result_cap:
                return  # the next page would pass the cap: the caller re-anchors

    def _drain(
        self, kind: str, shape: _Shape, anchor: int, seen: set[str]
    ) -> Iterator[list[dict[str, Any]]]:
        """Every record stamped exactly ``anchor``, by ascending id (any number of them)."""
        last_id = 0
        while True:
            window = _Window()
            groups = [_group((STAMP, "EQ", str(anchor)), ("hs_object_id", "GT", str(last_id)))]
            yield from self._pages(kind, shape, groups, "hs_object_id", seen=seen, window=window)
            if window.complete or window.top_id <= last_id:
                return
            last_id = window.top_id

    def _companies(self, obj: CrmObject, records: list[dict[str, Any]]) -> dict[str, str]:
        """Deal id -> company id (inline associations, else one batch read per 1,000)."""
        if obj is not CrmObject.OPPORTUNITY or not records:
            return {}
        found: dict[str, str] = {}
        missing: list[str] = []
        for record in records:
            inline = (record.get("associations") or {}).get("companies")
            if inline is None:
                missing.append(str(record["id"]))
                continue
            results = inline.get("results") or []
            if results:
                found[str(record["id"])] = str(results[0]["id"])
        for start in range(0, len(missing), 1000):
            answer = self._client.deal_companies(missing[start : start + 1000])
            for result in answer.get("results") or []:
                targets = result.get("to") or []
                if targets:
                    found[str(result["_from"]["id"])] = str(targets[0]["to_object_id"])
        return found


class _Window:
    """What one search query read: the newest stamp, the ids bearing it, the highest id."""

    def __init__(self) -> None:
        self.last: int | None = None
        self.at_last: set[str] = set()
        self.top_id = 0
        self.complete = False

    def track(self, records: list[dict[str, Any]]) -> None:
        """Follow a page (sorted by stamp, or by id when draining one stamp)."""
        for record in records:
            self.top_id = max(self.top_id, int(record["id"]))
            stamp = _stamp(record)
            if stamp is None:
                continue
            moment = _ms(stamp)
            if self.last is None or moment > self.last:
                self.last, self.at_last = moment, set()
            if moment == self.last:
                self.at_last.add(str(record["id"]))


def _not_in(name: str, ids: set[str]) -> list[tuple[str, str, Any]]:
    ordered = sorted(ids, key=int)
    return [(name, "NOT_IN", ordered[i : i + _VALUES]) for i in range(0, len(ordered), _VALUES)]


def _group(*filters: tuple[str, str, Any]) -> dict[str, Any]:
    out = []
    for name, operator, value in filters:
        item: dict[str, Any] = {"propertyName": name, "operator": operator}
        item["values" if isinstance(value, list) else "value"] = value
        out.append(item)
    return {"filters": out}


def _next(page: dict[str, Any]) -> str | None:
    paging = page.get("paging") or {}
    following = paging.get("next") or {}
    after = following.get("after")
    return str(after) if after else None


def _stamp(record: dict[str, Any]) -> datetime | None:
    value = (record.get("properties") or {}).get(STAMP)
    if value:
        return parse_moment(str(value))
    updated = record.get("updated_at")
    if isinstance(updated, datetime):
        return updated if updated.tzinfo else updated.replace(tzinfo=UTC)
    return None


class _Shape:
    """Which properties to read for an object, and how a page becomes a batch."""

    def __init__(self, obj: CrmObject, config: HubSpotConfig, metadata: Metadata) -> None:
        self.obj = obj
        kind = KIND[obj]
        existing = metadata.existing(kind)
        fields = config.fields
        mapping = fields.company if obj is CrmObject.ACCOUNT else fields.deal
        extra = fields.company_attributes if obj is CrmObject.ACCOUNT else fields.deal_attributes
        self.select = {column: p for column, p in mapping.items() if p in existing}
        self.extra = {ATTR_PREFIX + n: p for n, p in extra.items() if p in existing}
        self.owned: dict[str, str] = {}
        self.stages: dict[str, str] = {}
        if obj is CrmObject.ACCOUNT:
            self.owned = metadata.writable()
            if fields.salesforce_id in existing:
                self.extra[ATTR_PREFIX + "salesforce_id"] = fields.salesforce_id
        else:
            self.stages = metadata.stages()
        for required in ("name", "modified_at"):
            if required not in self.select:
                raise FatalConnectorError(
                    f"{kind} have no readable {mapping.get(required, required)} property: "
                    "check the mapping and the app's scopes",
                    connector="hubspot",
                )
        self.properties = sorted(
            {*self.select.values(), *self.extra.values(), *self.owned.values(), STAMP}
        )

    def empty(self) -> pd.DataFrame:
        """A frame with this object's columns and no rows."""
        return pd.DataFrame(columns=[*COLUMNS[self.obj], *self.extra])

    def batch(
        self,
        records: list[dict[str, Any]],
        companies: dict[str, str],
        intent: dict[str, dict[str, Any]],
    ) -> Batch:
        """Records as a batch: the canonical frame, the owned values, who edited last."""
        id_column = ID_COLUMN[self.obj]
        rows = []
        for record in records:
            props = record.get("properties") or {}
            row: dict[str, Any] = {c: props.get(p) for c, p in self.select.items()}
            row.update({c: props.get(p) for c, p in self.extra.items()})
            row[id_column] = str(record["id"])
            row["is_deleted"] = bool(record.get("archived"))
            if self.obj is CrmObject.OPPORTUNITY:
                row["account_id"] = companies.get(str(record["id"]))
                stage = self.stages.get(str(props.get(self.select.get("stage", "dealstage"))))
                if stage is not None:
                    row["stage"] = stage
                    row["is_closed"] = stage != "open"
                    row["is_won"] = stage == "won"
            rows.append(row)
        frame = pd.DataFrame.from_records(rows, columns=[*COLUMNS[self.obj], *self.extra])
        if not self.owned:
            return Batch(frame=frame)
        values = pd.DataFrame.from_records(
            [
                {k: (r.get("properties") or {}).get(p) for k, p in self.owned.items()}
                for r in records
            ],
            columns=list(self.owned),
            index=pd.Index([str(r["id"]) for r in records], name="record_id"),
        )
        values = values[~values.index.duplicated(keep="last")]
        # icp-sync writes only values it records as written, so an owned value that differs
        # from the known one was set by someone else; a write that landed but was not yet
        # recorded (a run killed mid-call) is the one exception, and is recognised here
        own = {
            rid
            for rid, sent in intent.items()
            if rid in values.index
            and all(str(values.at[rid, k]) == str(v) for k, v in sent.items() if k in values)
        }
        others = frozenset(values.index) - own
        return Batch(frame=frame, owned=values, edited_by_others=frozenset(others))
