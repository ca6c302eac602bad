"""Manual edits of owned fields: found on read-back, then kept as overrides or reverted.

Pure. A value read back from the CRM is a manual edit when it differs from what icp-sync
last knew the field to hold (what it wrote, or read before), and icp-sync cannot have put
it there: the record was last modified by someone else, or the connector can tell that no
write of icp-sync's is unrecorded on it (so a rep's edit made while icp-sync wrote *other*
fields of the record, which leaves icp-sync as the last modifier, is still seen); a value an
interrupted write of icp-sync's put there is its own. A value in a field icp-sync never knew
counts only on records someone else modified last, and not on a first sync (a fresh store
knows nothing, and claims nothing). Policy
``keep`` leaves such a value alone from then on (the human's value is the override);
``revert`` (the default) writes the ICP value again on the next write-back, and says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import pandas as pd

__all__ = ["ManualEdit", "ManualEditPolicy", "detect", "keep_overrides"]


class ManualEditPolicy(StrEnum):
    """What write-back does with a manual edit of an owned field."""

    KEEP = "keep"
    REVERT = "revert"


@dataclass(frozen=True, slots=True, kw_only=True)
class ManualEdit:
    """One owned field of one record changed by hand.

    Attributes:
        record_id: The CRM id.
        field: The owned field's key (e.g. ``tier``).
        before: What icp-sync last knew the field to hold (canonical text).
        after: What the CRM holds now (canonical text).
    """

    record_id: str
    field: str
    before: str
    after: str


def detect(
    known: Mapping[str, Mapping[str, str]],
    read: Mapping[str, Mapping[str, str]],
    edited_by_others: Iterable[str],
    unrecorded: Mapping[str, Mapping[str, str]] | None = None,
    *,
    fresh: bool = False,
) -> list[ManualEdit]:
    """The manual edits among values read back.

    Args:
        known: Record id -> owned field -> the value icp-sync last knew (canonical text).
        read: Record id -> owned field -> the value read now (canonical text), for the
            fields that differ from ``known`` (an unknown field counts as empty).
        edited_by_others: Records last modified by someone other than the integration user.
        unrecorded: Record id -> owned field -> value of writes icp-sync may have made
            without recording them yet (a write interrupted between the call and its
            record): such a value is icp-sync's own. ``None`` when the connector cannot
            tell, so only ``edited_by_others`` can hold manual edits.
        fresh: The store knows no value of any record yet (a first sync): a value in a field
            icp-sync never knew is then no evidence of a hand edit.
    """
    others = set(edited_by_others)
    edits = []
    for record_id in sorted(read):
        by_other = record_id in others
        if not by_other and unrecorded is None:
            continue
        before = known.get(record_id, {})
        in_flight = unrecorded.get(record_id, {}) if unrecorded is not None else {}
        for field, value in sorted(read[record_id].items()):
            if in_flight.get(field) == value:
                continue  # what an interrupted write of icp-sync's put there
            if field in before:
                changed, was = before[field] != value, before[field]
            else:  # never written nor read: a value someone else left there
                changed, was = by_other and value != "" and (bool(before) or not fresh), ""
            if changed:
                edits.append(ManualEdit(record_id=record_id, field=field, before=was, after=value))
    return edits


def keep_overrides(
    desired: pd.DataFrame, current: pd.DataFrame, overrides: Iterable[tuple[str, str]]
) -> pd.DataFrame:
    """``desired`` with every overridden (record, field) set to what the CRM holds, so the
    planner leaves it alone."""
    kept = desired.copy()
    for record_id, field in overrides:
        if record_id not in kept.index or field not in kept.columns:
            continue
        held: Any = None
        if record_id in current.index and field in current.columns:
            held = current.at[record_id, field]
        if kept[field].dtype != object:
            kept[field] = kept[field].astype(object)
        kept.at[record_id, field] = held
    return kept
