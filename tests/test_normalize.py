"""Normalisation repairs messy CRM values, drops impossible ones and reports every decision."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from icp_sync.config import NormalizeConfig
from icp_sync.model import ACCOUNT_COLUMNS, OPPORTUNITY_COLUMNS, CrmObject
from icp_sync.normalize import normalize


def _accounts(**columns: list[object]) -> pd.DataFrame:
    n = len(next(iter(columns.values())))
    base: dict[str, list[object]] = {"account_id": [f"A{i}" for i in range(n)]}
    return pd.DataFrame({**base, **columns})


def _opps(**columns: list[object]) -> pd.DataFrame:
    n = len(next(iter(columns.values())))
    base: dict[str, list[object]] = {
        "opportunity_id": [f"O{i}" for i in range(n)],
        "account_id": ["A0"] * n,
    }
    return pd.DataFrame({**base, **columns})


def test_output_is_canonical_for_any_input_shape(now: datetime) -> None:
    """Whatever subset of columns comes in, every canonical column comes out with its dtype."""
    accounts, _ = normalize(_accounts(name=["Acme"]), CrmObject.ACCOUNT, NormalizeConfig(), now=now)
    opps, _ = normalize(_opps(amount=["10"]), CrmObject.OPPORTUNITY, NormalizeConfig(), now=now)

    assert list(accounts.columns) == list(ACCOUNT_COLUMNS)
    assert list(opps.columns) == list(OPPORTUNITY_COLUMNS)
    assert str(accounts["created_at"].dtype) == "datetime64[ns, UTC]"


def test_text_is_trimmed_and_categories_share_one_spelling(now: datetime) -> None:
    """Whitespace goes, and case variants of a category collapse onto the most common one."""
    frame = _accounts(
        name=["  Acme   Corp ", "Globex", "Initech", "Umbrella"],
        industry=["Healthcare", "healthcare ", "HEALTHCARE", "Retail"],
    )

    clean, report = normalize(frame, CrmObject.ACCOUNT, NormalizeConfig(), now=now)

    assert clean["name"].tolist()[0] == "Acme Corp"
    assert clean["industry"].tolist() == ["Healthcare"] * 3 + ["Retail"]
    assert report.columns["industry"].repaired["letter case unified"] == 2
    assert report.columns["name"].repaired["extra whitespace removed"] == 1


def test_aliases_fix_typos_and_countries_get_regions(now: datetime) -> None:
    """Configured aliases fix typos; country codes become names and derive the region."""
    frame = _accounts(
        industry=["technolgy", "technology"],
        country=["US", "Philipines"],
    )
    config = NormalizeConfig(aliases={"industry": {"technolgy": "technology"}})

    clean, report = normalize(frame, CrmObject.ACCOUNT, config, now=now)

    assert clean["industry"].tolist() == ["technology", "technology"]
    assert clean["country"].tolist() == ["United States", "Philippines"]
    assert clean["region"].tolist() == ["North America", "APAC"]
    assert report.columns["region"].repaired["derived from country"] == 2


@pytest.mark.parametrize(
    ("column", "raw", "expected", "reason"),
    [
        ("employees", "-5", np.nan, "negative or above 5,000,000"),
        ("employees", "12,500", 12500.0, None),
        ("annual_revenue", "$1,200,000", 1_200_000.0, None),
        ("annual_revenue", "lots", np.nan, "not a number"),
        ("nps", "250", np.nan, "outside -100..100"),
        ("adoption", "85", 0.85, None),
        ("adoption", "-0.2", np.nan, "outside 0..1"),
    ],
    ids=[
        "negative-employees",
        "thousands-separator",
        "currency",
        "text",
        "nps-range",
        "adoption-percent",
        "adoption-negative",
    ],
)
def test_numbers_are_parsed_or_dropped(
    now: datetime, column: str, raw: str, expected: float, reason: str | None
) -> None:
    """Numbers lose their formatting; impossible ones are dropped with a reason."""
    clean, report = normalize(
        _accounts(**{column: [raw]}), CrmObject.ACCOUNT, NormalizeConfig(), now=now
    )

    value = clean[column].iloc[0]
    assert (np.isnan(value) and np.isnan(expected)) or value == expected
    if reason:
        assert report.columns[column].dropped[reason] == 1


def test_dates_are_parsed_and_impossible_ones_dropped(now: datetime) -> None:
    """Mixed date formats parse; garbage and far-future dates are dropped and counted."""
    frame = _accounts(created_at=["2024-03-05", "2024-03-05T10:00:00+02:00", "soon", "2999-01-01"])

    clean, report = normalize(frame, CrmObject.ACCOUNT, NormalizeConfig(), now=now)

    assert clean["created_at"].iloc[1] == pd.Timestamp("2024-03-05T08:00:00Z")
    assert clean["created_at"].iloc[2:].isna().all()
    assert report.columns["created_at"].dropped == {"not a date": 1, "impossible date": 1}


def test_text_left_beside_dates_read_with_a_format_is_not_a_date(now: datetime) -> None:
    """Dates a connector read with a declared format stay; text it could not read with that
    format is dropped and counted, not guessed in the other day/month order."""
    read = pd.Timestamp("2024-02-13", tz="UTC")
    frame = _accounts(created_at=[read, "02/13/2024", None])

    clean, report = normalize(frame, CrmObject.ACCOUNT, NormalizeConfig(), now=now)

    assert clean["created_at"].iloc[0] == read
    assert clean["created_at"].iloc[1:].isna().all()
    assert report.columns["created_at"].dropped == {"not a date": 1}


def test_stages_deal_types_and_motions_map_to_closed_sets(now: datetime) -> None:
    """CRM vocabularies map onto open/won/lost, deal types and motions; flags follow the stage."""
    frame = _opps(
        stage=["Closed Won", "closed lost", "open", None],
        is_closed=[None, None, None, "true"],
        is_won=[None, None, None, "false"],
        deal_type=["New Business", "existingbusiness", "Renewal", "mystery"],
        motion=["Web", "Partner Referral", "Cold Call", None],
    )

    clean, report = normalize(frame, CrmObject.OPPORTUNITY, NormalizeConfig(), now=now)

    assert clean["stage"].tolist() == ["won", "lost", "open", "lost"]
    assert clean["is_closed"].tolist() == [True, True, False, True]
    assert clean["is_won"].tolist() == [True, False, False, False]
    assert clean["deal_type"].tolist() == ["new_business", "expansion", "renewal", "new_business"]
    assert clean["motion"].tolist() == ["inbound", "partner", "outbound", "other"]
    assert report.columns["deal_type"].repaired["unrecognised value, set to new_business"] == 1


def test_unusable_records_are_rejected_with_reasons(now: datetime) -> None:
    """No id, no account, or a duplicate id: the record is skipped and reported."""
    frame = pd.DataFrame(
        {
            "opportunity_id": ["O1", None, "O3", "O1"],
            "account_id": ["A1", "A1", None, "A1"],
            "amount": ["1", "2", "3", "4"],
            "modified_at": ["2024-01-01", "2024-01-01", "2024-01-01", "2024-06-01"],
        }
    )

    clean, report = normalize(frame, CrmObject.OPPORTUNITY, NormalizeConfig(), now=now)

    assert clean["opportunity_id"].tolist() == ["O1"]
    assert clean["amount"].tolist() == [4.0]
    reasons = sorted((r.record_id, r.reason.split(":")[0]) for r in report.rejects)
    assert reasons == [
        ("O1", "duplicate id"),
        ("O3", "missing account_id"),
        ("row 2", "missing opportunity_id"),
    ]
    assert (report.rows_in, report.rows_out) == (4, 1)


def test_garbage_never_raises(now: datetime) -> None:
    """A frame of nonsense in every column normalises without an exception."""
    rng = np.random.default_rng(0)
    junk = ["", " ", "nan", "-1e400", "∞", "NULL", "🙂", "1/2/3", "TRUE", "0x1F", "1e999"]
    frame = pd.DataFrame({name: rng.choice(junk, size=50) for name in OPPORTUNITY_COLUMNS})
    frame["opportunity_id"] = [f"O{i}" for i in range(50)]
    frame["account_id"] = "A1"

    clean, report = normalize(frame, CrmObject.OPPORTUNITY, NormalizeConfig(), now=now)

    assert len(clean) == 50
    assert report.rows_out == 50
