"""HubSpot CRM search in the emulator: filter groups, operators, sorts, paging, the 10k cap.

Filter groups are ORed and filters within a group ANDed; at most 5 groups, 10 filters per
group and 25 in all. A page holds at most 200 results; no result past the 10,000th is ever
returned, and a cursor at or past 10,000 is answered 400, as HubSpot does: a client must
narrow the query (re-anchor on ``hs_lastmodifieddate``) to read further.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from icp_sync.sandbox.hubspot.api import HubSpotApi, error, object_kind
from icp_sync.sandbox.hubspot.portal import record_json
from icp_sync.sandbox.hubspot.properties import PropertyDef, parse_moment

__all__ = [
    "MAX_FILTERS",
    "MAX_FILTERS_PER_GROUP",
    "MAX_FILTER_GROUPS",
    "SEARCH_PAGE_LIMIT",
    "SEARCH_RESULT_CAP",
    "search",
]

SEARCH_PAGE_LIMIT = 200
SEARCH_RESULT_CAP = 10_000
MAX_FILTER_GROUPS = 5
MAX_FILTERS_PER_GROUP = 10
MAX_FILTERS = 25
_TOO_MANY_FILTERS = (
    f"Too many filters: at most {MAX_FILTER_GROUPS} filterGroups, {MAX_FILTERS_PER_GROUP} "
    f"filters per group and {MAX_FILTERS} in total"
)
_PAST_THE_CAP = (
    f"The search API returns at most {SEARCH_RESULT_CAP} results for a query; narrow the "
    "filters (for example on hs_lastmodifieddate) to page further"
)


def _filter_test(  # noqa: PLR0911 (one return per operator)
    definition: PropertyDef | None, spec: dict[str, Any]
) -> Callable[[str | None], bool]:
    operator = str(spec.get("operator", "EQ"))
    kind = definition.type if definition else "string"

    def convert(value: Any) -> Any:
        if value is None:
            return None
        if kind == "number":
            return float(value)
        if kind in ("date", "datetime"):
            return parse_moment(str(value))
        return str(value).casefold()

    if operator == "HAS_PROPERTY":
        return lambda v: v is not None
    if operator == "NOT_HAS_PROPERTY":
        return lambda v: v is None
    if operator in ("IN", "NOT_IN"):
        wanted = {convert(v) for v in spec.get("values") or []}
        if operator == "IN":
            return lambda v: v is not None and convert(v) in wanted
        return lambda v: v is None or convert(v) not in wanted
    if operator in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        token = str(spec.get("value", "")).casefold().strip("*")
        if operator == "CONTAINS_TOKEN":
            return lambda v: v is not None and token in v.casefold()
        return lambda v: v is None or token not in v.casefold()
    target = convert(spec.get("value"))
    if operator == "BETWEEN":
        high = convert(spec.get("highValue"))
        return lambda v: v is not None and target <= convert(v) <= high
    tests: dict[str, Callable[[Any], bool]] = {
        "EQ": lambda v: v == target,
        "NEQ": lambda v: v != target,
        "LT": lambda v: v < target,
        "LTE": lambda v: v <= target,
        "GT": lambda v: v > target,
        "GTE": lambda v: v >= target,
    }
    if operator not in tests:
        raise ValueError(f"unknown filter operator {operator}")
    test = tests[operator]
    if operator == "NEQ":
        return lambda v: v is None or test(convert(v))
    return lambda v: v is not None and test(convert(v))


async def search(api: HubSpotApi, request: Request) -> Response:
    kind = object_kind(request)
    body = await request.json()
    groups = body.get("filterGroups") or []
    total_filters = sum(len(g.get("filters") or []) for g in groups)
    if (
        len(groups) > MAX_FILTER_GROUPS
        or total_filters > MAX_FILTERS
        or any(len(g.get("filters") or []) > MAX_FILTERS_PER_GROUP for g in groups)
    ):
        return error(
            400,
            "VALIDATION_ERROR",
            _TOO_MANY_FILTERS,
        )
    limit = int(body.get("limit") or 10)
    if limit > SEARCH_PAGE_LIMIT:
        return error(400, "VALIDATION_ERROR", f"limit must be at most {SEARCH_PAGE_LIMIT}")
    after = int(body.get("after") or 0)
    cap = api.limiter.limits.search_cap
    if after >= cap:
        return error(
            400,
            "VALIDATION_ERROR",
            _PAST_THE_CAP,
        )
    definitions = api.portal.properties[kind]
    compiled = [
        [
            (
                str(f.get("propertyName")),
                _filter_test(definitions.get(str(f.get("propertyName"))), f),
            )
            for f in g.get("filters") or []
        ]
        for g in groups
    ]
    query = str(body.get("query") or "").casefold()
    with api.portal.lock:
        matches = [
            r
            for r in api.portal.records[kind].values()
            if not r.archived
            and (
                not compiled
                or any(
                    all(test(r.properties.get(name)) for name, test in group) for group in compiled
                )
            )
            and (
                not query
                or any(
                    query in str(v).casefold()
                    for v in (
                        r.properties.get("name"),
                        r.properties.get("domain"),
                        r.properties.get("dealname"),
                    )
                    if v
                )
            )
        ]
        matches.sort(key=lambda r: int(r.id))
        for sort in reversed(body.get("sorts") or []):
            name, descending = _sort_spec(sort)
            sort_kind = definitions[name].type if name in definitions else "string"
            present = [r for r in matches if r.properties.get(name) is not None]
            absent = [r for r in matches if r.properties.get(name) is None]
            present.sort(
                key=lambda r: _sort_key(sort_kind, str(r.properties[name])), reverse=descending
            )
            matches = present + absent
        wanted = body.get("properties") or None
        end = min(after + limit, cap)  # no result past the cap, even mid-page
        page = matches[after:end]
        results = [record_json(r, wanted) for r in page]
    response: dict[str, Any] = {"total": len(matches), "results": results}
    if end < len(matches):
        # Past the cap this cursor is answered 400, as HubSpot does.
        response["paging"] = {"next": {"after": str(end), "link": None}}
    request.state.read = len(results)
    return JSONResponse(response)


def _sort_spec(sort: Any) -> tuple[str, bool]:
    if isinstance(sort, str):
        return sort.lstrip("-"), sort.startswith("-")
    return str(sort.get("propertyName")), str(
        sort.get("direction", "ASCENDING")
    ).upper() == "DESCENDING"


def _sort_key(kind: str, value: str) -> Any:
    if kind == "number":
        return float(value)
    if kind in ("date", "datetime"):
        return parse_moment(value)
    return value.casefold()
