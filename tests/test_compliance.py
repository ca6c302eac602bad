"""The commitment record: periods, signatories, and a content hash that covers every field."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from icp_sync.compliance import make_commitment, parse_signatory, period_bounds


@pytest.mark.parametrize(
    ("period", "start", "end"),
    [
        ("2027", datetime(2027, 1, 1, tzinfo=UTC), datetime(2028, 1, 1, tzinfo=UTC)),
        ("FY2027", datetime(2027, 1, 1, tzinfo=UTC), datetime(2028, 1, 1, tzinfo=UTC)),
        ("2027-Q4", datetime(2027, 10, 1, tzinfo=UTC), datetime(2028, 1, 1, tzinfo=UTC)),
        ("2027-Q2", datetime(2027, 4, 1, tzinfo=UTC), datetime(2027, 7, 1, tzinfo=UTC)),
        (
            "2027-02-01..2028-02-01",
            datetime(2027, 2, 1, tzinfo=UTC),
            datetime(2028, 2, 1, tzinfo=UTC),
        ),
    ],
    ids=["year", "fiscal-year", "q4", "q2", "range"],
)
def test_period_bounds(period: str, start: datetime, end: datetime) -> None:
    """Years, quarters and date ranges map to their half-open UTC bounds."""
    assert period_bounds(period) == (start, end)


@pytest.mark.parametrize("period", ["next year", "2027-Q5", "2028-01-01..2027-01-01", ""])
def test_bad_periods_are_refused(period: str) -> None:
    """Anything but a year, quarter or forward range is a ValueError."""
    with pytest.raises(ValueError, match="period"):
        period_bounds(period)


def test_signatories_need_a_function_and_a_name() -> None:
    """'Sales:  Dana  Lee' is tidied; a bare name is refused."""
    assert parse_signatory(" Sales:  Dana  Lee ") == "Sales: Dana Lee"
    with pytest.raises(ValueError, match="Function: Name"):
        parse_signatory("Dana Lee")


def test_the_hash_covers_every_field(now: datetime) -> None:
    """Changing any one field of a commitment makes it no longer intact."""
    made = make_commitment(
        period="2027",
        icp_version="v1",
        definition="x",
        tal_name="TAL",
        tal_account_ids=["A", "B"],
        target_green_share=0.7,
        targets={"max_red_share": 0.05},
        signatories=["Sales: Dana"],
        created_at=now,
        created_by="me",
    )
    changes = {
        "period": "2028",
        "icp_version": "v2",
        "definition": "y",
        "tal_name": "Other",
        "tal_account_ids": ("B", "A"),
        "target_green_share": 0.6,
        "targets": {"max_red_share": 0.1},
        "signatories": ("Sales: Eve",),
        "created_at": datetime(2020, 1, 1, tzinfo=UTC),
        "created_by": "you",
        "supersedes": "a" * 64,
    }

    assert made.intact
    for name, value in changes.items():
        assert not dataclasses.replace(made, **{name: value}).intact, name
