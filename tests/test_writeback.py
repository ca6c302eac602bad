"""The write-back planner: only differences become changes; plans are idempotent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from icp_sync.model import CrmObject
from icp_sync.writeback import (
    FieldChange,
    Plan,
    canonical_value,
    desired_account_values,
    plan,
    retry_due,
)

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def _scores() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "account_id": ["a", "b", "c"],
            "tier": ["Green", "Yellow", "Red"],
            "score": [91, 40, 5],
            "segment": ["Healthcare, 200-999 employees", "Retail", "Government"],
            "reasons": ["r-a", "r-b", "r-c"],
        }
    )


def _desired() -> pd.DataFrame:
    tal = pd.DataFrame({"account_id": ["a"], "rank": [1]})
    return desired_account_values(_scores(), tal, version="v2", scored_at=NOW)


def test_empty_crm_gets_every_value() -> None:
    """Records with nothing written yet receive every owned field (rank only when listed)."""
    result = plan(_desired(), pd.DataFrame())

    assert result.records == 3
    assert len(result.changes) == 3 * 8 - 2
    assert result.tier_moves == {"(none) -> Green": 1, "(none) -> Red": 1, "(none) -> Yellow": 1}


def test_applying_a_plan_makes_the_next_plan_empty() -> None:
    """Once the CRM holds the desired values, planning again changes nothing."""
    desired = _desired()

    current = desired.copy()

    assert plan(desired, current).changes == ()


def test_equal_values_in_other_shapes_are_not_changes() -> None:
    """57 vs '57.0', True vs 'true', datetimes in CRM format: equal, so not written."""
    desired = _desired()
    current = desired.astype(object).copy()
    current["score"] = ["91.0", "40", 5.0]
    current["tal"] = ["true", False, "false"]
    current["scored_at"] = "2026-11-01T00:00:00.000+0000"

    assert plan(desired, current).changes == ()


def test_only_changed_fields_are_written_and_the_stamp_follows() -> None:
    """A tier move writes the tier and the scored-at stamp of that record only."""
    desired = _desired()
    current = desired.copy()
    current.loc["b", "tier"] = "Green"
    current["scored_at"] = datetime(2026, 1, 1, tzinfo=UTC)

    result = plan(desired, current)

    assert {(c.record_id, c.field) for c in result.changes} == {
        ("b", "tier"),
        ("b", "scored_at"),
    }
    assert result.tier_moves == {"Green -> Yellow": 1}
    assert result.by_record() == {
        (result.changes[0].crm_object, "b"): {"tier": "Yellow", "scored_at": NOW}
    }


def test_missing_fields_and_skipped_records_are_left_out() -> None:
    """Fields the CRM lacks are not planned; skipped records are not touched."""
    result = plan(
        _desired(),
        pd.DataFrame(),
        writable=["tier", "score"],
        skip={"c": "changed in the CRM since it was read"},
    )

    assert {c.field for c in result.changes} == {"tier", "score"}
    assert {c.record_id for c in result.changes} == {"a", "b"}


def test_a_plan_groups_and_counts_as_its_field_changes_do() -> None:
    """A planned plan and one built from the same FieldChanges: same changes, records, groups."""
    planned = plan(_desired(), pd.DataFrame(), writable=["tier", "score", "tal"])
    rebuilt = Plan(changes=tuple(planned.changes), tier_moves=planned.tier_moves)

    assert planned == rebuilt
    assert planned.by_record() == rebuilt.by_record()
    assert planned.summary() == rebuilt.summary()
    assert planned.summary()["by_field"] == {"score": 3, "tal": 3, "tier": 3}
    assert planned.changes[-1] == FieldChange(
        crm_object=CrmObject.ACCOUNT, record_id="c", field="tal", old=None, new=False
    )
    assert list(planned.changes[:2]) == list(planned.changes)[:2]


def test_an_empty_plan_touches_nothing() -> None:
    """A plan without changes has no records, groups or field counts."""
    desired = _desired()
    for empty in (plan(desired, desired.copy()), Plan()):
        assert not empty.changes
        assert empty.records == 0
        assert empty.by_record() == {}
        assert empty.summary()["field_changes"] == 0


@pytest.mark.parametrize(
    ("left", "right"),
    [(1, "1.0"), (None, ""), (float("nan"), None), ("Green", " Green "), (0.5, "0.5")],
    ids=["int-float", "none-empty", "nan-none", "whitespace", "fraction"],
)
def test_canonical_values_compare_equal(left: object, right: object) -> None:
    """Values that mean the same compare equal."""
    assert canonical_value(left) == canonical_value(right)


def test_a_value_longer_than_its_field_is_planned_and_compared_as_stored() -> None:
    """An over-long segment is planned truncated to its field length, so re-planning is empty."""
    scores = _scores()
    scores.loc[0, "segment"] = "S" * 300
    desired = desired_account_values(scores, None, version="v2", scored_at=NOW)

    first = plan(desired, pd.DataFrame())
    held = pd.DataFrame.from_dict(
        {rid: values for (_, rid), values in first.by_record().items()}, orient="index"
    ).map(canonical_value)

    segment = first.by_record()[(CrmObject.ACCOUNT, "a")]["segment"]
    assert len(segment) <= 255
    assert segment.startswith("S" * 200)
    assert segment.endswith("…")
    assert plan(desired, held).changes == ()


@pytest.mark.parametrize(
    ("times", "after", "due"),
    [
        pytest.param(1, timedelta(0), True, id="refused-once-retried-next-cycle"),
        pytest.param(2, timedelta(minutes=59), False, id="twice-waits-59min"),
        pytest.param(2, timedelta(hours=1), True, id="twice-retried-after-1h"),
        pytest.param(3, timedelta(hours=5), False, id="three-times-waits-5h"),
        pytest.param(3, timedelta(hours=6), True, id="three-times-retried-after-6h"),
        pytest.param(9, timedelta(hours=23), False, id="nine-times-waits-23h"),
        pytest.param(9, timedelta(days=1), True, id="nine-times-retried-daily"),
    ],
)
def test_a_refused_record_is_retried_next_cycle_then_after_1h_6h_and_daily(
    times: int, after: timedelta, due: bool
) -> None:
    """The retry backoff of refused records: next cycle, then 1 h, 6 h, then once a day."""
    assert retry_due(times=times, last_at=NOW, now=NOW + after) is due
