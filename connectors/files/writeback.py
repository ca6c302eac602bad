"""File write-back: the changed ICP fields as an import-ready CSV instead of API calls.

For teams without API access to their CRM: each cycle with changes writes one file,
``icp-import-<UTC time>.csv``, that Salesforce Data Loader (Update, matched on ``Id``) or
HubSpot's company import (matched on ``Record ID``) loads as is. One row per changed record,
the owned fields that changed as columns (a blank cell leaves a field as it is; Data Loader
clears a field given ``#N/A``). Files are written atomically (a temporary name, then
renamed) and never overwritten, so a file not imported yet is never lost; records are
counted as written once the file exists.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from connectors.base import ApplyBatch, FieldSetup
from connectors.files.config import FilesConfig, FileWritebackConfig
from connectors.files.connector import FileConnector
from icp_sync.model import OWNED, WRITTEN_ACCOUNT_FIELDS, CrmObject, FieldKind
from icp_sync.writeback import Plan, canonical_value

__all__ = ["FileWriteConnector", "import_columns"]

_ID = {"salesforce": "Id", "hubspot": "Record ID"}
_CLEAR = {"salesforce": "#N/A", "hubspot": ""}


def import_columns(config: FileWritebackConfig) -> dict[str, str]:
    """Owned field -> import column (Salesforce API names or HubSpot internal names)."""
    return {key: getattr(OWNED[key], config.format) for key in WRITTEN_ACCOUNT_FIELDS}


class FileWriteConnector(FileConnector):
    """The file connector with write-back to import files.

    Args:
        config: The ``[files]`` section, with ``[files.writeback]`` set.
        clock: The time stamp of each file (injected by tests).
    """

    def __init__(self, config: FilesConfig, *, clock: Any = None) -> None:
        super().__init__(config)
        assert config.writeback is not None
        self._writeback = config.writeback
        self._clock = clock or (lambda: datetime.now(UTC))
        self.files: list[Path] = []

    def writable_fields(self) -> dict[str, str]:
        """Every written owned field: the import file can hold them all."""
        return import_columns(self._writeback)

    def ensure_fields(self, *, dry_run: bool) -> FieldSetup:
        """Nothing to create here: the fields must exist in the CRM the file is loaded into."""
        names = [f"Account.{column}" for column in import_columns(self._writeback).values()]
        return FieldSetup(existing=names, dry_run=dry_run)

    def write_cost(self, records: int) -> dict[str, Any]:
        """An import file costs no API calls."""
        return {"method": f"{self._writeback.format} import file", "calls": 0, "files": 1}

    def apply(self, plan: Plan) -> Iterator[ApplyBatch]:
        """Write the plan's changes as one import file; every record in it counts as written."""
        by_record = {
            record_id: values
            for (obj, record_id), values in plan.by_record().items()
            if obj is CrmObject.ACCOUNT
        }
        if not by_record:
            return
        columns = import_columns(self._writeback)
        fields = [f for f in WRITTEN_ACCOUNT_FIELDS if any(f in v for v in by_record.values())]
        fmt = self._writeback.format
        folder = self._writeback.output_dir
        folder.mkdir(parents=True, exist_ok=True)
        stamp = self._clock().strftime("%Y%m%dT%H%M%S%fZ")
        target = folder / f"icp-import-{stamp}.csv"
        partial = target.with_suffix(".csv.partial")
        with partial.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow([_ID[fmt], *(columns[f] for f in fields)])
            for record_id, values in by_record.items():
                writer.writerow(
                    [record_id, *(_cell(f, values, fmt) if f in values else "" for f in fields)]
                )
            out.flush()
            os.fsync(out.fileno())
        partial.replace(target)
        self.files.append(target)
        yield ApplyBatch(written=by_record, method="file")


def _cell(field: str, values: dict[str, Any], fmt: str) -> str:
    value = values[field]
    text = canonical_value(value)
    if text == "":
        return _CLEAR[fmt]
    if OWNED[field].kind is FieldKind.CHECKBOX:
        return "true" if text == "true" else "false"
    # datetimes are ISO 8601 UTC, which both importers accept; text goes as it is (quoted by
    # the CSV writer), the same value an API write would send
    return text
