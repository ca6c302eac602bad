"""The file connector's mapping language, applied: export columns -> canonical columns.

A canonical column comes from a source column or a constant, optionally through a value map
(with a default), a scale, a date format, a lookup file aggregated per key, or kept only on
rows matching a filter (see :class:`~connectors.files.config.ColumnSpec`).
"""

from __future__ import annotations

import pandas as pd

from connectors.files.config import ColumnSpec, FileObjectConfig, LookupConfig
from icp_sync.model import ATTR_PREFIX, COLUMNS, DATETIME, CrmObject

__all__ = ["map_frame", "mapping_problems", "matches"]


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
