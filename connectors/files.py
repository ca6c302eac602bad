"""CRM exports on disk (CSV or Parquet) as a connector.

Each object is one file plus optional lookup files joined onto it, read through a column
mapping (source column, constant, value map, scale, date format, lookup aggregation). An
export is a full snapshot: records missing from a new export were deleted. The cursor is a
fingerprint of the files and the mapping, so an unchanged export costs nothing to re-sync.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pandas as pd

from connectors.base import ApiUsage, Batch, CheckItem
from icp_sync.config import ColumnSpec, FileObjectConfig, FilesConfig, LookupConfig
from icp_sync.errors import ConfigError, ConnectorError
from icp_sync.model import ATTR_PREFIX, COLUMNS, DATETIME, CrmObject

__all__ = ["FileConnector"]

_NA_VALUES = ["", "NULL", "null", "NaN", "nan", "N/A", "n/a", "#N/A", "None", "none"]
_SECTION = {CrmObject.ACCOUNT: "accounts", CrmObject.OPPORTUNITY: "opportunities"}


class FileConnector:
    """Reads accounts and opportunities from exported files.

    Args:
        config: The ``[files]`` section.
    """

    name = "files"

    def __init__(self, config: FilesConfig) -> None:
        self._config = config
        self._cache: dict[Path, pd.DataFrame] = {}

    def _spec(self, obj: CrmObject) -> FileObjectConfig | None:
        return self._config.accounts if obj is CrmObject.ACCOUNT else self._config.opportunities

    def check(self) -> list[CheckItem]:
        """Each configured file is readable and every mapped column exists in it."""
        items: list[CheckItem] = []
        for obj, section in _SECTION.items():
            spec = self._spec(obj)
            if spec is None:
                items.append(
                    CheckItem(
                        name=f"{section} file",
                        ok=False,
                        required=False,
                        detail="not configured: win rates, ACV and lifecycle need opportunities",
                        fix=f"add a [files.{section}] section",
                    )
                )
                continue
            try:
                frame = self._read(spec.path, spec)
                problems = _mapping_problems(section, spec, frame, self._read_lookups(spec))
            except ConnectorError as exc:
                items.append(
                    CheckItem(
                        name=f"{section} file",
                        ok=False,
                        detail=str(exc),
                        fix="check the path and the file format",
                    )
                )
                continue
            items.append(
                CheckItem(
                    name=f"{section} file",
                    ok=not problems,
                    detail=f"{spec.path.name}: {len(frame):,} rows, {len(frame.columns)} columns"
                    + ("" if not problems else "; " + "; ".join(problems)),
                    fix="" if not problems else "fix the column mapping in the config",
                )
            )
        return items

    def extract(self, obj: CrmObject, *, since: str | None, now: datetime) -> Iterator[Batch]:
        """The whole export as one snapshot batch, or nothing when it has not changed."""
        del now  # exports carry their own history; nothing here depends on the clock
        spec = self._spec(obj)
        if spec is None:
            return
        cursor = self._fingerprint(spec)
        if since == cursor:
            return
        source = self._read(spec.path, spec)
        lookups = self._read_lookups(spec)
        problems = _mapping_problems(_SECTION[obj], spec, source, lookups)
        if problems:
            raise ConfigError(problems)
        source = source[_matches(source, spec.where)]
        yield Batch(frame=_map(obj, spec, source, lookups), cursor=cursor, snapshot=True)

    def usage(self) -> ApiUsage:
        """Files cost no API calls."""
        return ApiUsage()

    def close(self) -> None:
        """Forget cached files."""
        self._cache.clear()

    def _read_lookups(self, spec: FileObjectConfig) -> dict[str, pd.DataFrame]:
        return {name: self._read(lookup.path, spec) for name, lookup in spec.lookups.items()}

    def _read(self, path: Path, spec: FileObjectConfig) -> pd.DataFrame:
        if path not in self._cache:
            self._cache[path] = _read_file(path, spec)
        return self._cache[path]

    def _fingerprint(self, spec: FileObjectConfig) -> str:
        digest = hashlib.sha256(spec.model_dump_json().encode())
        for path in (spec.path, *(lookup.path for lookup in spec.lookups.values())):
            with path.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
        return "sha256:" + digest.hexdigest()


def _read_file(path: Path, spec: FileObjectConfig) -> pd.DataFrame:
    kind = spec.format
    if kind == "auto":
        kind = "parquet" if path.suffix.lower() in (".parquet", ".pq") else "csv"
    try:
        if kind == "parquet":
            return pd.read_parquet(path)
        return pd.read_csv(
            path,
            dtype=str,
            sep=spec.delimiter,
            encoding=spec.encoding,
            keep_default_na=False,
            na_values=_NA_VALUES,
            skipinitialspace=False,
            on_bad_lines="warn",
        )
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise ConnectorError(f"cannot read {path}: {exc}", connector="files") from exc


def _mapping_problems(
    section: str, spec: FileObjectConfig, frame: pd.DataFrame, lookups: dict[str, pd.DataFrame]
) -> list[str]:
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


def _map(
    obj: CrmObject,
    spec: FileObjectConfig,
    source: pd.DataFrame,
    lookups: dict[str, pd.DataFrame],
) -> pd.DataFrame:
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
        values = values.where(_matches(source, spec.when).to_numpy(), None)
    return values


def _matches(frame: pd.DataFrame, conditions: dict[str, list[str]]) -> pd.Series:
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
    table = table[_matches(table, lookup.where)]
    values = table[str(spec.column)]
    if spec.agg in ("min", "max") and dtype == DATETIME:
        values = pd.to_datetime(values, utc=True, errors="coerce", format="mixed")
    elif spec.agg in ("min", "max", "sum", "mean"):
        values = pd.to_numeric(values, errors="coerce")
    grouped = values.groupby(table[lookup.key].astype("string").str.strip())
    reduced = grouped.size() if spec.agg == "count" else grouped.agg(spec.agg)
    keys = source[lookup.on or lookup.key].astype("string").str.strip()
    return keys.map(reduced)
