"""The ``[files]`` config section: which exports to read and how their columns map.

The mapping itself (source column, constant, value map, scale, date format, lookup, row
filters) is applied by :mod:`connectors.files.mapping`.
"""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from icp_sync.model import COLUMNS, ID_COLUMN, CrmObject
from icp_sync.sections import Section, base_dir, existing_file

__all__ = [
    "ColumnSpec",
    "FileObjectConfig",
    "FileWritebackConfig",
    "FilesConfig",
    "LookupConfig",
    "OpportunityFileConfig",
]


class ColumnSpec(Section):
    """How one canonical column is read from an export.

    Written in TOML either as a plain source column name (``name = "account_name"``) or as a
    table: ``{ column = "revenue", scale = 1000000 }``, ``{ const = "new_business" }``,
    ``{ column = "deal_stage", values = { Won = "won" } }``,
    ``{ lookup = "churn", column = "churn_date", agg = "max" }``.
    """

    column: str | None = None
    """Source column (in the object's file, or in the lookup's file with ``lookup``)."""
    const: str | float | bool | None = None
    """A constant for every row instead of a column."""
    values: dict[str, str] = Field(default_factory=dict)
    """Value map applied after trimming, matched case-insensitively (source -> canonical)."""
    default: str | None = None
    """Value for source values the map does not list (default: keep them as they are)."""
    scale: float | None = None
    """Multiply numbers by this (e.g. revenue in millions -> 1000000)."""
    format: str | None = None
    """strptime format for dates when automatic parsing is ambiguous (e.g. ``%d/%m/%Y``)."""
    lookup: str | None = None
    """Name of a lookup table of this object to take ``column`` from."""
    agg: Literal["first", "last", "min", "max", "sum", "mean", "count"] = "first"
    """How to reduce several lookup rows per key."""
    when: dict[str, list[str]] = Field(default_factory=dict)
    """Keep the value only on rows whose (primary file) columns hold one of these values."""

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: object) -> object:
        return {"column": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_source(self) -> ColumnSpec:
        if (self.column is None) == (self.const is None):
            raise ValueError("give exactly one of 'column' or 'const'")
        if self.lookup is not None and self.column is None:
            raise ValueError("'lookup' needs 'column' (the column of the lookup file)")
        return self


class LookupConfig(Section):
    """A second export joined onto an object's rows (e.g. churn events onto accounts)."""

    path: Path
    """The lookup file (CSV or Parquet)."""
    key: str
    """Join column in the lookup file."""
    on: str | None = None
    """Join column in the object's file (default: same name as ``key``)."""
    where: dict[str, list[str]] = Field(default_factory=dict)
    """Keep only lookup rows whose columns hold one of these values."""

    @field_validator("path")
    @classmethod
    def _resolve(cls, value: Path, info: ValidationInfo) -> Path:
        return existing_file(value, info)


class FileObjectConfig(Section):
    """One exported object (accounts or opportunities): file, format and column mapping."""

    _object: ClassVar[CrmObject] = CrmObject.ACCOUNT
    _section: ClassVar[str] = "accounts"

    path: Path
    """The export (CSV or Parquet)."""
    format: Literal["auto", "csv", "parquet"] = "auto"
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    encoding: str = "utf-8"
    """Text encoding of a CSV export (e.g. ``latin-1``, ``cp1252``); lookups use it too."""
    day_first: bool = False
    """Read ambiguous dates such as 03/04/2024 as 3 April (default: 4 March)."""
    where: dict[str, list[str]] = Field(default_factory=dict)
    """Keep only rows whose columns hold one of these values (e.g. leave out trials)."""
    lookups: dict[str, LookupConfig] = Field(default_factory=dict)
    columns: dict[str, ColumnSpec] = Field(default_factory=dict, validate_default=True)
    """Canonical column -> source. Unmapped canonical columns are derived or left empty."""
    attributes: dict[str, ColumnSpec] = Field(default_factory=dict)
    """Extra columns kept as ``attr_<name>`` (usable as segment dimensions)."""

    @field_validator("path")
    @classmethod
    def _resolve(cls, value: Path, info: ValidationInfo) -> Path:
        return existing_file(value, info)

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(
                f"unknown encoding {value!r} (e.g. utf-8, latin-1, cp1252, utf-16)"
            ) from None
        return value

    @classmethod
    def section_name(cls) -> str:
        """``accounts`` or ``opportunities``: the TOML table under ``[files]``."""
        return cls._section

    @field_validator("columns")
    @classmethod
    def _columns_known(
        cls, value: dict[str, ColumnSpec], info: ValidationInfo
    ) -> dict[str, ColumnSpec]:
        canonical = COLUMNS[cls._object]
        where = f"files.{cls._section}.columns"
        problems = [
            f"{where}.{name}: not a canonical {cls._object} column (known: "
            f"{', '.join(canonical)}); map extra columns under files.{cls._section}.attributes"
            for name in value
            if name not in canonical
        ]
        id_column = ID_COLUMN[cls._object]
        if id_column not in value:
            problems.append(f"{where}.{id_column}: required value missing")
        lookups = info.data.get("lookups", {})
        problems += [
            f"{where}.{name}.lookup: no lookup named {spec.lookup!r} under "
            f"files.{cls._section}.lookups"
            for name, spec in value.items()
            if spec.lookup is not None and spec.lookup not in lookups
        ]
        if problems:
            raise ValueError("\n".join(problems))
        return value


class OpportunityFileConfig(FileObjectConfig):
    """The opportunities export."""

    _object: ClassVar[CrmObject] = CrmObject.OPPORTUNITY
    _section: ClassVar[str] = "opportunities"


class FileWritebackConfig(Section):
    """Write-back as import files: a CSV of the changed ICP fields per cycle, for teams that
    load it with Salesforce Data Loader or HubSpot's import instead of giving API access."""

    format: Literal["salesforce", "hubspot"] = "salesforce"
    """``salesforce``: Data Loader update (``Id`` + field API names, ``#N/A`` clears a
    field); ``hubspot``: company import (``Record ID`` + property internal names)."""
    output_dir: Path = Path("icp-imports")
    """Where the files go, one per cycle with changes (``icp-import-<UTC time>.csv``)."""

    @field_validator("output_dir")
    @classmethod
    def _resolve_dir(cls, value: Path, info: ValidationInfo) -> Path:
        return (value if value.is_absolute() else base_dir(info) / value).resolve()


class FilesConfig(Section):
    """The file connector: CRM exports on disk."""

    accounts: FileObjectConfig
    opportunities: OpportunityFileConfig | None = None
    writeback: FileWritebackConfig | None = None
    """Write the ICP fields as an import-ready CSV (unset: read only)."""
