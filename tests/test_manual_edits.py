"""Pure manual-edit detection and the keep policy."""

from __future__ import annotations

import pandas as pd

from icp_sync.manual_edits import ManualEdit, detect, keep_overrides


def test_a_change_on_a_record_others_edited_is_manual_known_or_not() -> None:
    """A differing value on a record someone else modified last is manual; so is a value left
    in a field icp-sync never knew, except on a first sync (a fresh store claims nothing);
    without more, the integration user's records hold none."""
    known = {"a": {"tier": "Green"}, "b": {"tier": "Green"}}
    read = {
        "a": {"tier": "Red", "reasons": "set by hand"},
        "b": {"tier": "Red"},
        "c": {"tier": "Red"},
    }

    assert detect(known, read, {"a", "c"}) == [
        ManualEdit(record_id="a", field="reasons", before="", after="set by hand"),
        ManualEdit(record_id="a", field="tier", before="Green", after="Red"),
        ManualEdit(record_id="c", field="tier", before="", after="Red"),
    ]
    assert detect({}, {"c": {"tier": "Red"}}, {"c"}, fresh=True) == []


def test_an_edit_hidden_by_icp_syncs_own_later_write_is_still_manual() -> None:
    """A rep's edit followed by icp-sync writing other fields leaves icp-sync as the last
    modifier: the change is still manual; only the very values of a write interrupted before
    it was recorded are icp-sync's own, not the record's other fields."""
    known = {"b": {"tier": "Green", "score": "80"}, "d": {"tier": "Green"}}
    read = {"b": {"score": "1"}, "d": {"tier": "Red"}}
    edit_b = ManualEdit(record_id="b", field="score", before="80", after="1")
    edit_d = ManualEdit(record_id="d", field="tier", before="Green", after="Red")

    assert detect(known, read, set(), unrecorded={}) == [edit_b, edit_d]
    assert detect(known, read, set(), unrecorded={"d": {"tier": "Red"}}) == [edit_b]
    assert detect(known, read, set(), unrecorded={"b": {"tier": "Yellow"}}) == [edit_b, edit_d]
    assert detect(known, read, set(), unrecorded=None) == []


def test_kept_overrides_take_the_crm_value_so_nothing_is_planned() -> None:
    """keep_overrides puts the CRM's value in place of the desired one for overridden cells."""
    desired = pd.DataFrame({"tier": ["Green", "Yellow"], "score": [90, 50]}, index=["a", "b"])
    current = pd.DataFrame({"tier": ["Red", "Yellow"], "score": [90, 40]}, index=["a", "b"])
    kept = keep_overrides(desired, current, {("a", "tier")})

    assert kept.loc["a", "tier"] == "Red"
    assert kept.loc["b", "score"] == 50
