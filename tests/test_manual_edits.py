"""Pure manual-edit detection and the keep policy."""

from __future__ import annotations

import pandas as pd

from icp_sync.manual_edits import ManualEdit, detect, keep_overrides


def test_only_changed_values_on_records_others_edited_are_manual() -> None:
    """A differing value counts only on a record someone else modified, and only when known."""
    known = {"a": {"tier": "Green"}, "b": {"tier": "Green"}}
    read = {"a": {"tier": "Red"}, "b": {"tier": "Red"}, "c": {"tier": "Red"}}

    assert detect(known, read, {"a", "c"}) == [
        ManualEdit(record_id="a", field="tier", before="Green", after="Red")
    ]


def test_kept_overrides_take_the_crm_value_so_nothing_is_planned() -> None:
    """keep_overrides puts the CRM's value in place of the desired one for overridden cells."""
    desired = pd.DataFrame({"tier": ["Green", "Yellow"], "score": [90, 50]}, index=["a", "b"])
    current = pd.DataFrame({"tier": ["Red", "Yellow"], "score": [90, 40]}, index=["a", "b"])
    kept = keep_overrides(desired, current, {("a", "tier")})

    assert kept.loc["a", "tier"] == "Red"
    assert kept.loc["b", "score"] == 50
