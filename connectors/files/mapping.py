"""The file connector's mapping language, applied: export columns -> canonical columns.

A canonical column comes from a source column or a constant, optionally through a value map
(with a default), a scale, a date format, a lookup file aggregated per key, or kept only on
rows matching a filter (see :class:`~connectors.files.config.ColumnSpec`).
"""

from __future__ import annotations

import pandas as pd

from connectors.files.config import ColumnSpec, FileObjectConfig, LookupConfig
from icp_sync.model import ATTR_PREFIX, COLUMNS, DATETIME, CrmObject

__all__ = ["date_order_problems", "map_frame", "mapping_problems", "matches"]

_SLASH_DATE = r"^\s*(\d{1,2})[/.\-](\d{1,2})[/.\-](?:\d{4}|\d{2})\b"
_EXAMPLES = 3


def mapping_problems(
    section: str, spec: FileObjectConfig, frame: pd.DataFrame, lookups: dict[str, pd.DataFrame]
) -> list[str]:
    """Every mapped column, filter and lookup key the files lack, each with its TOML path.

    Args:
        section: ``accounts`` or ``opportunities``.
        spec: The object's config.
        frame: The object's export.
        lookups: The lookup exports, by name.
    """
    problems: list[str] = []
    mapped = [("columns", n, c) for n, c in spec.columns.items()]
    mapped += [("attributes", n, c) for n, c in spec.attributes.items()]
    for group, name, column in mapped:
        if column.column is None:
            continue
        source = frame if column.lookup is None else lookups[column.lookup]
        where = spec.path.name if column.lookup is None else spec.lookups[column.lookup].path.name
        if column.column not in source.columns:
            problems.append(
                f"files.{section}.{group}.{name}: no column {column.column!r} in {where} "
                f"(columns: {', '.join(map(str, source.columns))})"
            )
        problems.extend(
            f"files.{section}.{group}.{name}.when: no column {condition!r} in {spec.path.name}"
            for condition in column.when
            if condition not in frame.columns
        )
    problems.extend(
        f"files.{section}.where: no column {column!r} in {spec.path.name}"
        for column in spec.where
        if column not in frame.columns
    )
    for lookup_name, lookup in spec.lookups.items():
        table = lookups[lookup_name]
        on = lookup.on or lookup.key
        if lookup.key not in table.columns:
            problems.append(
                f"files.{section}.lookups.{lookup_name}.key: no column {lookup.key!r} in "
                f"{lookup.path.name}"
            )
        if on not in frame.columns:
            problems.append(
                f"files.{section}.lookups.{lookup_name}.on: no column {on!r} in {spec.path.name}"
            )
        problems.extend(
            f"files.{section}.lookups.{lookup_name}.where: no column {column!r} in "
            f"{lookup.path.name}"
            for column in lookup.where
            if column not in table.columns
        )
    return problems


def date_order_problems(
    section: str,
    spec: FileObjectConfig,
    frame: pd.DataFrame,
    lookups: dict[str, pd.DataFrame],
    obj: CrmObject,
) -> list[str]:
    """Date columns whose day/month order cannot be trusted, each with its TOML path and fix.

    A column is refused when it holds values only valid day-first (``13/02/2017``) and values
    only valid month-first (``02/13/2017``): it was mangled (e.g. edited in two locales) and
    every value that reads both ways (``03/04/2017``) could be either date. It is also refused
    when such evidence contradicts ``day_first`` while values that read both ways exist. A
    ``format`` on the column says how to read it and silences the check.
    """
    problems: list[str] = []
    canonical = COLUMNS[obj]
    for name, column in spec.columns.items():
        if canonical.get(name) != DATETIME or column.column is None or column.format:
            continue
        source = frame if column.lookup is None else lookups.get(column.lookup)
        if source is None or column.column not in source.columns:
            continue
        where = spec.path.name if column.lookup is None else spec.lookups[column.lookup].path.name
        finding = _date_order(source[column.column], day_first=spec.day_first)
        if finding:
            problems.append(
                f"files.{section}.columns.{name}: {where} column {column.column!r} {finding}; "
                f"its values are not imported. Set how to read it, e.g. "
                f'{name} = {{ column = {column.column!r}, format = "%d/%m/%Y" }} '
                f'(or "%m/%d/%Y"); values in the other order are then dropped as not a date'
            )
    return problems


def _date_order(values: pd.Series, *, day_first: bool) -> str:
    """Why the day/month order of ``values`` is ambiguous, or ``""`` when it is not."""
    if not (values.dtype == object or pd.api.types.is_string_dtype(values)):
        return ""
    parts = values.astype("string").str.extract(_SLASH_DATE)
    first = pd.to_numeric(parts[0], errors="coerce")
    second = pd.to_numeric(parts[1], errors="coerce")
    as_day_first = first.between(1, 31) & second.between(1, 12)
    as_month_first = first.between(1, 12) & second.between(1, 31)
    text = values.astype("string").str.strip()
    only_day = text[as_day_first & ~as_month_first]
    only_month = text[as_month_first & ~as_day_first]
    either = text[as_day_first & as_month_first & (first != second)]

    def shown(sample: pd.Series) -> str:
        return ", ".join(repr(str(v)) for v in sample.head(_EXAMPLES))

    if len(only_day) and len(only_month):
        return (
            f"mixes day-first and month-first dates ({len(only_day):,} only valid day-first "
            f"such as {shown(only_day)}; {len(only_month):,} only valid month-first such as "
            f"{shown(only_month)}; {len(either):,} read either way)"
        )
    if len(either) and len(only_day) and not day_first:
        return (
            f"holds day-first dates such as {shown(only_day)} but is read month-first, so "
            f"{len(either):,} values such as {shown(either)} would be read wrongly "
            "(or set day_first = true on the file)"
        )
    if len(either) and len(only_month) and day_first:
        return (
            f"holds month-first dates such as {shown(only_month)} but day_first = true, so "
            f"{len(either):,} values such as {shown(either)} would be read wrongly"
        )
    return ""


def map_frame(
    obj: CrmObject,
    spec: FileObjectConfig,
    source: pd.DataFrame,
    lookups: dict[str, pd.DataFrame],
) -> pd.DataFrame:
    """The export's rows as canonical columns (plus ``attr_`` columns), values still raw."""
    out = pd.DataFrame(index=source.index)
    canonical = COLUMNS[obj]
    for name, column in spec.columns.items():
        out[name] = _column(source, column, spec, lookups, canonical.get(name))
    for name, column in spec.attributes.items():
        out[ATTR_PREFIX + name] = _column(source, column, spec, lookups, None)
    return out


def _column(
    source: pd.DataFrame,
    spec: ColumnSpec,
    obj_spec: FileObjectConfig,
    lookups: dict[str, pd.DataFrame],
    dtype: str | None,
) -> pd.Series:
    values: pd.Series
    if spec.const is not None:
        values = pd.Series([spec.const] * len(source), index=source.index, dtype=object)
    elif spec.lookup is not None:
        values = _lookup(source, spec, obj_spec.lookups[spec.lookup], lookups[spec.lookup], dtype)
    else:
        values = source[str(spec.column)]
    if spec.values:
        table = {k.strip().casefold(): v for k, v in spec.values.items()}
        folded = values.astype("string").str.strip().str.casefold()
        mapped = folded.map(table)
        fallback = values if spec.default is None else pd.Series(spec.default, index=values.index)
        values = mapped.where(mapped.notna() | values.isna(), fallback.astype(object))
        values = values.where(values.notna(), None)
    if spec.scale is not None:
        numbers = pd.to_numeric(values, errors="coerce")
        values = (numbers * spec.scale).astype(object).where(numbers.notna(), values)
    if dtype == DATETIME and (spec.format or obj_spec.day_first):
        parsed = pd.to_datetime(
            values,
            format=spec.format or "mixed",
            dayfirst=obj_spec.day_first,
            errors="coerce",
            utc=True,
        )
        values = parsed.astype(object).where(parsed.notna(), values)
    if spec.when:
        values = values.where(matches(source, spec.when).to_numpy(), None)
    return values


def matches(frame: pd.DataFrame, conditions: dict[str, list[str]]) -> pd.Series:
    """Rows whose columns each hold one of the listed values (trimmed, any case)."""
    keep = pd.Series(True, index=frame.index)
    for column, allowed in conditions.items():
        wanted = {a.strip().casefold() for a in allowed}
        folded = frame[column].astype("string").str.strip().str.casefold()
        keep &= folded.isin(wanted).fillna(False)
    return keep


def _lookup(
    source: pd.DataFrame,
    spec: ColumnSpec,
    lookup: LookupConfig,
    table: pd.DataFrame,
    dtype: str | None,
) -> pd.Series:
    table = table[matches(table, lookup.where)]
    values = table[str(spec.column)]
    if spec.agg in ("min", "max") and dtype == DATETIME:
        values = pd.to_datetime(values, utc=True, errors="coerce", format="mixed")
    elif spec.agg in ("min", "max", "sum", "mean"):
        values = pd.to_numeric(values, errors="coerce")
    grouped = values.groupby(table[lookup.key].astype("string").str.strip())
    reduced = grouped.size() if spec.agg == "count" else grouped.agg(spec.agg)
    keys = source[lookup.on or lookup.key].astype("string").str.strip()
    return keys.map(reduced)
