"""Manual edits of owned fields: found on read-back, then kept as overrides or reverted.

Pure. A value read back from the CRM is a manual edit when it differs from what icp-sync
last knew the field to hold (what it wrote, or read before) and someone other than the
integration user last modified the record. Policy ``keep`` leaves such a value alone from
then on (the human's value is the override); ``revert`` (the default) writes the ICP value
again on the next write-back, and says so.
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
) -> list[ManualEdit]:
    """The manual edits among values read back.

    Args:
        known: Record id -> owned field -> the value icp-sync last knew (canonical text).
        read: Record id -> owned field -> the value read now (canonical text).
        edited_by_others: Records last modified by someone other than the integration user.
    """
    edits = []
    for record_id in sorted(set(edited_by_others) & set(read) & set(known)):
        before, after = known[record_id], read[record_id]
        for field, value in sorted(after.items()):
            if field in before and before[field] != value:
                edits.append(
                    ManualEdit(record_id=record_id, field=field, before=before[field], after=value)
                )
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
