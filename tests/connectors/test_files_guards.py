"""The file connector refuses exports it would read wrongly: mixed date orders, wrong encoding."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from connectors.files.connector import FileConnector
from icp_sync.config import NormalizeConfig, load_settings
from icp_sync.errors import ConfigError, ConnectorError
from icp_sync.model import CrmObject
from icp_sync.normalize import normalize

MAPPING = """
[files.accounts]
path = "a.csv"
{extra}
[files.accounts.columns]
account_id = "id"
customer_since = {since}
"""
# 13/02 only reads day-first, 02/13 only month-first: the column mixes both orders
MIXED = "id,since\n1,13/02/2024\n2,02/13/2024\n3,03/04/2024\n4,05/06/2024\n"


def _connector(
    tmp_path: Path, text: str, *, since: str = '"since"', extra: str = ""
) -> FileConnector:
    (tmp_path / "a.csv").write_bytes(text.encode("latin-1"))
    config = tmp_path / "icp-sync.toml"
    config.write_text(MAPPING.format(since=since, extra=extra))
    settings = load_settings(config)
    assert settings.files is not None
    return FileConnector(settings.files)


def test_mixed_day_and_month_first_dates_are_refused(tmp_path: Path, now: datetime) -> None:
    """A column mixing day- and month-first dates is refused, saying where and how to fix it."""
    connector = _connector(tmp_path, MIXED)

    with pytest.raises(ConfigError) as caught:
        list(connector.extract(CrmObject.ACCOUNT, since=None, now=now))
    checks = {item.name: item for item in connector.check()}

    [problem] = caught.value.problems
    assert problem.startswith("files.accounts.columns.customer_since: a.csv column 'since'")
    assert "'13/02/2024'" in problem
    assert "'02/13/2024'" in problem
    assert 'format = "%d/%m/%Y"' in problem
    assert not checks["accounts file"].ok


@pytest.mark.parametrize(
    ("text", "extra"),
    [
        pytest.param("id,since\n1,13/02/2024\n2,03/04/2024\n", "", id="day-first-read-month-first"),
        pytest.param(
            "id,since\n1,02/13/2024\n2,03/04/2024\n",
            "day_first = true",
            id="month-first-read-day-first",
        ),
    ],
)
def test_dates_contradicting_day_first_are_refused(
    tmp_path: Path, now: datetime, text: str, extra: str
) -> None:
    """One order evidenced while the file is read in the other: ambiguous values would be wrong."""
    connector = _connector(tmp_path, text, extra=extra)

    with pytest.raises(ConfigError, match="would be read wrongly"):
        list(connector.extract(CrmObject.ACCOUNT, since=None, now=now))


def test_a_format_on_the_column_reads_it_that_way(tmp_path: Path, now: datetime) -> None:
    """With ``format`` set the column is read as told; values in the other order are not dates."""
    connector = _connector(tmp_path, MIXED, since='{ column = "since", format = "%d/%m/%Y" }')

    [batch] = list(connector.extract(CrmObject.ACCOUNT, since=None, now=now))

    dates = batch.frame["customer_since"].tolist()
    assert str(dates[0])[:10] == "2024-02-13"
    assert dates[1] == "02/13/2024"  # left raw: normalisation drops it as not a date
    assert str(dates[2])[:10] == "2024-04-03"
    clean, report = normalize(batch.frame, CrmObject.ACCOUNT, NormalizeConfig(), now=now)
    assert clean["customer_since"].isna().tolist() == [False, True, False, False]
    assert report.columns["customer_since"].dropped == {"not a date": 1}


def test_unambiguous_iso_dates_pass(tmp_path: Path, now: datetime) -> None:
    """ISO dates and consistent day-first dates are not flagged."""
    connector = _connector(tmp_path, "id,since\n1,2024-02-13\n2,13/02/2024\n3,25/12/2023\n")

    [batch] = list(connector.extract(CrmObject.ACCOUNT, since=None, now=now))

    assert len(batch.frame) == 3


def test_wrong_encoding_names_file_offset_and_key(tmp_path: Path, now: datetime) -> None:
    """A latin-1 export read as UTF-8: the error names the file, the byte offset and the key."""
    connector = _connector(tmp_path, "id,since\n1,2024-01-01\nMünchen,2024-01-02\n")

    with pytest.raises(ConnectorError) as caught:
        list(connector.extract(CrmObject.ACCOUNT, since=None, now=now))

    message = str(caught.value)
    assert "a.csv" in message
    assert "byte 23 (0xfc)" in message
    assert 'files.accounts.encoding = "latin-1"' in message


def test_latin1_export_reads_with_the_encoding_key(tmp_path: Path, now: datetime) -> None:
    """With ``encoding = "latin-1"`` the same export is read."""
    connector = _connector(
        tmp_path, "id,since\n1,2024-01-01\nMünchen,2024-01-02\n", extra='encoding = "latin-1"'
    )

    [batch] = list(connector.extract(CrmObject.ACCOUNT, since=None, now=now))

    assert batch.frame["account_id"].tolist() == ["1", "München"]


def test_unknown_encoding_is_a_config_problem(tmp_path: Path) -> None:
    """An encoding Python does not know is reported with its TOML path, not at read time."""
    with pytest.raises(ConfigError, match=r"files\.accounts\.encoding: unknown encoding 'utf-9'"):
        _connector(tmp_path, "id,since\n", extra='encoding = "utf-9"')
