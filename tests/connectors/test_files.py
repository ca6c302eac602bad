"""The file connector: column mapping features, snapshots and fingerprints."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from connectors.files.connector import FileConnector
from icp_sync.config import load_settings
from icp_sync.errors import ConfigError
from icp_sync.model import CrmObject


def _setup(tmp_path: Path, mapping: str, files: dict[str, str]) -> FileConnector:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    config = tmp_path / "icp-sync.toml"
    config.write_text(mapping)
    settings = load_settings(config)
    assert settings.files is not None
    return FileConnector(settings.files)


ACCOUNTS = "id,company,rev_m,signup,flag\n1,Acme,1.5,03/04/2024,yes\n2,Globex,,15/04/2024,no\n"
CHURN = "account,date,kind\n1,2025-01-01,churn\n1,2025-06-01,churn\n1,2025-09-01,reactivation\n"


def test_mapping_features_shape_the_rows(tmp_path: Path, now: datetime) -> None:
    """Columns, constants, scales, day-first dates, lookups with aggregation and conditions."""
    connector = _setup(
        tmp_path,
        """
[files.accounts]
path = "accounts.csv"
day_first = true
[files.accounts.columns]
account_id = "id"
name = "company"
annual_revenue = { column = "rev_m", scale = 1000000 }
created_at = "signup"
industry = { const = "Software" }
churned_at = { lookup = "churn", column = "date", agg = "max", when = { flag = ["Yes"] } }
[files.accounts.attributes]
churn_events = { lookup = "churn", column = "date", agg = "count" }
[files.accounts.lookups.churn]
path = "churn.csv"
key = "account"
on = "id"
where = { kind = ["churn"] }
""",
        {"accounts.csv": ACCOUNTS, "churn.csv": CHURN},
    )

    (batch,) = connector.extract(CrmObject.ACCOUNT, since=None, now=now)
    frame = batch.frame

    assert frame["annual_revenue"].tolist()[0] == 1_500_000.0
    assert pd.isna(frame["annual_revenue"].tolist()[1])
    assert frame["industry"].tolist() == ["Software", "Software"]
    assert pd.Timestamp(frame["created_at"].iloc[0]) == pd.Timestamp("2024-04-03", tz="UTC")
    assert pd.Timestamp(frame["churned_at"].iloc[0]) == pd.Timestamp("2025-06-01", tz="UTC")
    assert pd.isna(frame["churned_at"].iloc[1])
    assert frame["attr_churn_events"].tolist()[0] == 2
    assert batch.snapshot


def test_value_maps_and_row_filters(tmp_path: Path, now: datetime) -> None:
    """Value maps translate CRM vocabularies (with a default); ``where`` filters rows."""
    connector = _setup(
        tmp_path,
        """
[files.accounts]
path = "accounts.csv"
[files.accounts.columns]
account_id = "id"
[files.opportunities]
path = "deals.csv"
where = { test = ["no"] }
[files.opportunities.columns]
opportunity_id = "id"
account_id = "acct"
stage = { column = "status", values = { "Signed" = "won", "Dead" = "lost" }, default = "open" }
""",
        {
            "accounts.csv": "id\n1\n",
            "deals.csv": "id,acct,status,test\nD1,1,signed,no\nD2,1,dead,no\nD3,1,talking,no\n"
            "D4,1,signed,yes\n",
        },
    )

    (batch,) = connector.extract(CrmObject.OPPORTUNITY, since=None, now=now)

    assert batch.frame["stage"].tolist() == ["won", "lost", "open"]


def test_unchanged_export_yields_nothing(tmp_path: Path, now: datetime) -> None:
    """The cursor is the export's fingerprint: same files and mapping, nothing to read."""
    connector = _setup(
        tmp_path,
        '[files.accounts]\npath = "a.csv"\n[files.accounts.columns]\naccount_id = "id"\n',
        {"a.csv": "id\n1\n2\n"},
    )
    (first,) = connector.extract(CrmObject.ACCOUNT, since=None, now=now)

    assert list(connector.extract(CrmObject.ACCOUNT, since=first.cursor, now=now)) == []
    (tmp_path / "a.csv").write_text("id\n1\n2\n3\n")
    connector.close()
    (second,) = connector.extract(CrmObject.ACCOUNT, since=first.cursor, now=now)
    assert second.cursor != first.cursor
    assert len(second.frame) == 3


def test_missing_source_columns_are_config_errors(tmp_path: Path, now: datetime) -> None:
    """A mapping naming columns the export lacks lists every one, with its TOML path."""
    connector = _setup(
        tmp_path,
        """
[files.accounts]
path = "a.csv"
[files.accounts.columns]
account_id = "id"
name = "company_name"
industry = "sector"
""",
        {"a.csv": "id,company\n1,Acme\n"},
    )

    with pytest.raises(ConfigError) as caught:
        list(connector.extract(CrmObject.ACCOUNT, since=None, now=now))
    checks = {item.name: item for item in connector.check()}

    assert [p.split(":")[0] for p in caught.value.problems] == [
        "files.accounts.columns.name",
        "files.accounts.columns.industry",
    ]
    assert not checks["accounts file"].ok
    assert "company_name" in checks["accounts file"].detail
    assert not checks["opportunities file"].required


def test_parquet_exports_are_read(tmp_path: Path, now: datetime) -> None:
    """Parquet files work like CSV, keeping their native types."""
    pd.DataFrame({"id": ["1", "2"], "staff": [10, 20]}).to_parquet(tmp_path / "a.parquet")
    connector = _setup(
        tmp_path,
        '[files.accounts]\npath = "a.parquet"\n[files.accounts.columns]\n'
        'account_id = "id"\nemployees = "staff"\n',
        {},
    )

    (batch,) = connector.extract(CrmObject.ACCOUNT, since=None, now=now)

    assert batch.frame["employees"].tolist() == [10, 20]
