"""File write-back: each cycle with changes leaves one import-ready CSV of the changed ICP
fields (Salesforce Data Loader or HubSpot import), and a cycle without changes leaves none."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import pytest

from icp_sync.config import load_settings
from icp_sync.pipeline import sync
from icp_sync.sandbox.generate import generate, write_dataset
from icp_sync.store import Store


@pytest.mark.parametrize(
    ("fmt", "id_column", "tier_column"),
    [
        pytest.param("salesforce", "Id", "ICP_Tier__c", id="data-loader"),
        pytest.param("hubspot", "Record ID", "icp_tier", id="hubspot-import"),
    ],
)
def test_each_cycle_with_changes_writes_one_import_file_of_the_changed_fields(
    tmp_path: Path, fmt: str, id_column: str, tier_column: str
) -> None:
    """The first cycle writes every account's ICP fields to one CSV; an unchanged export then
    writes no file and costs no API call; records are matched on the CRM's id column."""
    paths = write_dataset(generate(3_000, seed=5), tmp_path / "crm")
    config = paths["config"]
    config.write_text(
        config.read_text() + f'\n[files.writeback]\nformat = "{fmt}"\noutput_dir = "imports"\n'
    )
    settings = load_settings(config)
    with Store.open(settings.store.url) as store:
        first = sync(settings, store, run_id="r1", now=datetime.now(UTC))
        files = sorted((config.parent / "imports").glob("*.csv"))
        assert len(files) == 1
        with files[0].open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        second = sync(settings, store, run_id="r2", now=datetime.now(UTC))

    assert first.writeback is not None
    assert first.records_written == len(rows) > 2_000
    assert first.api_calls == 0
    assert next(iter(rows[0])) == id_column
    assert {r[tier_column] for r in rows} <= {"Green", "Yellow", "Red"}
    assert len({r[id_column] for r in rows}) == len(rows)
    with (config.parent / "accounts.csv").open(newline="", encoding="utf-8") as handle:
        accounts = {r["account_id"] for r in csv.DictReader(handle)}
    assert {r[id_column] for r in rows} <= accounts
    assert second.records_written == 0
    assert sorted((config.parent / "imports").glob("*.csv")) == files
    assert not list((config.parent / "imports").glob("*.partial"))
