"""The write-back planner: desired CRM field values against what the CRM holds -> a plan.

Pure. The desired values come from scoring (tier, score, segment, reasons, TAL membership and
rank, ICP version); the current values are what was last read back from the CRM or
successfully written to it. Only differences become :class:`FieldChange` s, so applying a plan
and planning again yields an empty plan, and unchanged values never cost an API call. The
scored-at stamp only moves on records that change for another reason.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from icp_sync.model import OWNED, OWNED_FIELDS, WRITTEN_ACCOUNT_FIELDS, CrmObject, FieldKind
from icp_sync.text import neutralize_list, safe_text

__all__ = [
    "ACCOUNT_FIELDS",
    "FieldChange",
    "Plan",
    "canonical_value",
    "canonical_values",
    "desired_account_values",
    "plan",
    "retry_due",
    "storable",
]

RETRY_BACKOFF: tuple[timedelta, ...] = (
    timedelta(0),
    timedelta(hours=1),
    timedelta(hours=6),
    timedelta(days=1),
)
"""How long a record refused n times in a row waits before it is tried again with the same
values: the next cycle after the first refusal, then 1 h, 6 h, and a day from then on (a
validation rule may be fixed at any time, but each try costs an API call)."""


ACCOUNT_FIELDS: tuple[str, ...] = WRITTEN_ACCOUNT_FIELDS
"""The owned Account fields the planner may change (see :data:`icp_sync.model.OWNED_FIELDS`)."""
_TIER = "tier"
_STAMP = "scored_at"
_SEGMENT_LENGTH = next(f.length for f in OWNED_FIELDS if f.key == "segment") or 255
_REASONS_LENGTH = next(f.length for f in OWNED_FIELDS if f.key == "reasons") or 32768


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldChange:
    """One field of one record to set.

    Attributes:
        crm_object: Which object.
        record_id: The CRM id of the record.
        field: The owned field's key (see :data:`icp_sync.model.OWNED_FIELDS`).
        old: The value the CRM holds (as last read or written), ``None`` when empty.
        new: The value to write, ``None`` to clear.
    """

    crm_object: CrmObject
    record_id: str
    field: str
    old: Any
    new: Any


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """Everything a write-back would change."""

    changes: tuple[FieldChange, ...] = ()
    tier_moves: dict[str, int] = field(default_factory=dict)

    @property
    def records(self) -> int:
        """How many records the plan touches."""
        return len({(c.crm_object, c.record_id) for c in self.changes})

    def by_record(self) -> dict[tuple[CrmObject, str], dict[str, Any]]:
        """Changes grouped per record: ``{(object, id): {field: new}}``, in plan order."""
        grouped: dict[tuple[CrmObject, str], dict[str, Any]] = {}
        for change in self.changes:
            grouped.setdefault((change.crm_object, change.record_id), {})[change.field] = change.new
        return grouped

    def summary(self) -> dict[str, Any]:
        """JSON-ready counts: records, field changes per field, tier moves."""
        per_field: dict[str, int] = {}
        for change in self.changes:
            per_field[change.field] = per_field.get(change.field, 0) + 1
        return {
            "records": self.records,
            "field_changes": len(self.changes),
            "by_field": dict(sorted(per_field.items())),
            "tier_moves": self.tier_moves,
        }


def canonical_value(value: Any) -> str:  # noqa: PLR0911 (one return per kind of value)
    """The text form two values are compared in (``57`` == ``57.0``, ``True`` == ``"true"``)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return ""
        return str(int(value)) if float(value).is_integer() else f"{float(value):.6g}"
    if isinstance(value, datetime | pd.Timestamp):
        stamp = pd.Timestamp(value)
        stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
        return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
    return _canonical_text(str(value).strip())


def canonical_values(frame: pd.DataFrame) -> pd.DataFrame:
    """:func:`canonical_value` of every cell, computed once per distinct value of a column."""
    return pd.DataFrame(
        {name: _canonical_column(frame[name]) for name in frame.columns}, index=frame.index
    ).reindex(columns=frame.columns)


def _canonical_column(column: pd.Series) -> np.ndarray:
    kind = pd.api.types.infer_dtype(column, skipna=True)
    if column.dtype == object and kind not in ("string", "empty"):
        # mixed kinds: 1 and True would share a code, but not a canonical text
        return column.map(canonical_value).to_numpy(dtype=object)
    codes, distinct = pd.factorize(column, use_na_sentinel=True)
    texts = np.array([canonical_value(v) for v in distinct] + [""], dtype=object)
    return texts[codes]


def _canonical_text(text: str) -> str:
    lowered = text.casefold()
    if lowered in ("true", "false"):
        return lowered
    if text[:1] in "-+.0123456789":
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if math.isfinite(number):
            return canonical_value(number)
        if "T" in text and text.endswith(("+0000", "Z", "+00:00")):
            try:
                return canonical_value(pd.Timestamp(text))
            except ValueError:
                return text
    return text


def desired_account_values(
    scores: pd.DataFrame,
    tal: pd.DataFrame | None,
    *,
    version: str,
    scored_at: datetime,
) -> pd.DataFrame:
    """Owned-field values every account should hold, indexed by account id.

    Args:
        scores: Scoring output (``account_id``, ``tier``, ``score``, ``segment``, ``reasons``).
        tal: Members of the TAL in force (``account_id``, ``rank``), if any.
        version: The ICP version the values come from.
        scored_at: When they were computed.
    """
    frame = pd.DataFrame(
        {
            "tier": scores["tier"].to_numpy(),
            "score": scores["score"].to_numpy(),
            "segment": scores["segment"].map(_crm_text(_SEGMENT_LENGTH, items=True)).to_numpy(),
            "reasons": scores["reasons"].map(_crm_text(_REASONS_LENGTH)).to_numpy(),
        },
        index=pd.Index(scores["account_id"].astype(str), name="record_id"),
    )
    ranks = pd.Series(dtype="float64")
    if tal is not None and len(tal):
        ranks = tal.set_index(tal["account_id"].astype(str))["rank"].astype("float64")
    rank = ranks.reindex(frame.index)
    frame["tal"] = rank.notna().to_numpy()
    frame["tal_rank"] = rank.to_numpy()
    frame["version"] = version
    frame["scored_at"] = scored_at
    return frame


def _crm_text(width: int, *, items: bool = False) -> Callable[[Any], Any]:
    """Text for a CRM field: formula-safe and cut at a word boundary to the field's length.

    ``items``: the text is a list of export values (a segment label), each neutralised.
    """

    def safe(value: Any) -> Any:
        if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
            return value
        text = neutralize_list(str(value)) if items else str(value)
        return safe_text(text, width)

    return safe


def plan(
    desired: pd.DataFrame,
    current: pd.DataFrame,
    *,
    crm_object: CrmObject = CrmObject.ACCOUNT,
    writable: Iterable[str] | None = None,
    skip: Mapping[str, str] | None = None,
) -> Plan:
    """The changes that bring ``current`` to ``desired``.

    Args:
        desired: Owned-field values per record (index: record id).
        current: What the CRM holds per record and field (same shape; missing cells or
            records mean empty).
        crm_object: The object the records belong to.
        writable: Owned fields that exist in the CRM (others are left out of the plan).
        skip: Records not to touch this time, with the reason (e.g. changed in the CRM since
            it was read, or rejected last time with the same values).
    """
    fields = [f for f in desired.columns if writable is None or f in set(writable)]
    if not fields or desired.empty:
        return Plan()
    desired = storable(desired[fields])
    wanted = canonical_values(desired[fields])
    held = canonical_values(current.reindex(index=desired.index, columns=fields))
    differs = wanted.ne(held)
    if _STAMP in differs.columns:
        # the stamp records when the values changed, so it alone never warrants a write
        others = differs.drop(columns=_STAMP).any(axis=1)
        differs[_STAMP] = others
    if skip:
        differs.loc[differs.index.isin(list(skip))] = False
    aligned = current.reindex(index=desired.index, columns=fields).to_numpy(dtype=object)
    target = desired[fields].to_numpy(dtype=object)
    rows, cols = np.nonzero(differs.to_numpy())
    # positions looked up in plain arrays: indexing a pandas Index per cell costs seconds
    ids = desired.index.astype(str).to_numpy(dtype=object)
    names = [str(f) for f in fields]
    changes = tuple(
        FieldChange(
            crm_object=crm_object,
            record_id=ids[r],
            field=names[c],
            old=_plain(aligned[r, c]),
            new=_plain(target[r, c]),
        )
        for r, c in zip(rows.tolist(), cols.tolist(), strict=True)
    )
    moves: dict[str, int] = {}
    if _TIER in differs.columns:
        moved = differs[_TIER].to_numpy()
        before = held[_TIER].to_numpy()[moved]
        after = wanted[_TIER].to_numpy()[moved]
        for old, new in zip(before.tolist(), after.tolist(), strict=True):
            key = f"{old or '(none)'} -> {new or '(none)'}"
            moves[key] = moves.get(key, 0) + 1
    return Plan(changes=changes, tier_moves=dict(sorted(moves.items())))


def retry_due(*, times: int, last_at: datetime, now: datetime) -> bool:
    """Whether a record refused ``times`` times in a row, last at ``last_at``, is tried again."""
    wait = RETRY_BACKOFF[min(max(times, 1), len(RETRY_BACKOFF)) - 1]
    return now - last_at >= wait


def storable(values: pd.DataFrame) -> pd.DataFrame:
    """``values`` as their CRM fields can hold them: text cut to the field's length.

    The CRM keeps only that much, so the planner must want (and compare) only that much, or
    an over-long value would differ from what was written, and be written, every cycle.
    """
    cut = values.copy()
    for name in cut.columns:
        spec = OWNED.get(str(name))
        if spec is None or spec.kind not in (FieldKind.TEXT, FieldKind.LONG_TEXT):
            continue
        if spec.length:
            cut[name] = cut[name].map(lambda v, n=spec.length: v[:n] if isinstance(v, str) else v)
    return cut


def _plain(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value
