"""The file connector: reads CRM exports on disk (CSV or Parquet) into canonical batches.

Each object is one file plus optional lookup files joined onto it, read through a column
mapping (:mod:`connectors.files.mapping`). An
export is a full snapshot: records missing from a new export were deleted. The cursor is a
fingerprint of the files and the mapping, so an unchanged export costs nothing to re-sync.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pandas as pd

from connectors.base import ApiUsage, Batch, CheckItem
from connectors.files.config import FileObjectConfig, FilesConfig
from connectors.files.mapping import date_order_problems, map_frame, mapping_problems, matches
from icp_sync.errors import ConfigError, ConnectorError
from icp_sync.log import get_logger
from icp_sync.model import CrmObject

__all__ = ["FileConnector"]

log = get_logger(connector="files")

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
                lookups = self._read_lookups(spec)
                problems = mapping_problems(section, spec, frame, lookups)
                if not problems:
                    problems = date_order_problems(section, spec, frame, lookups, obj)
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
        problems = mapping_problems(_SECTION[obj], spec, source, lookups)
        if problems:
            raise ConfigError(problems)
        source = source[matches(source, spec.where)]
        problems = date_order_problems(_SECTION[obj], spec, source, lookups, obj)
        if problems:
            raise ConfigError(problems)
        yield Batch(frame=map_frame(obj, spec, source, lookups), cursor=cursor, snapshot=True)

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
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", pd.errors.ParserWarning)
            frame = pd.read_csv(
                path,
                dtype=str,
                sep=spec.delimiter,
                encoding=spec.encoding,
                keep_default_na=False,
                na_values=_NA_VALUES,
                skipinitialspace=False,
                on_bad_lines="warn",
            )
        for warning in caught:  # e.g. rows with too many fields: skipped, and said so
            log.warning("export_rows_skipped", file=str(path), detail=str(warning.message))
        return frame
    except UnicodeDecodeError:
        raise ConnectorError(_encoding_message(path, spec), connector="files") from None
    except (OSError, ValueError) as exc:
        raise ConnectorError(f"cannot read {path}: {exc}", connector="files") from exc


def _encoding_message(path: Path, spec: FileObjectConfig) -> str:
    """Where the file stops being ``spec.encoding``, and the config key that fixes it."""
    offset, byte = "?", ""
    try:
        with path.open("rb") as handle:
            handle.read().decode(spec.encoding)
    except UnicodeDecodeError as exc:
        offset, byte = f"{exc.start:,}", f" (0x{exc.object[exc.start]:02x})"
    return (
        f"cannot read {path}: byte {offset}{byte} is not valid {spec.encoding}. Set the file's "
        f'encoding, e.g. files.{spec.section_name()}.encoding = "latin-1" (or "cp1252")'
    )
