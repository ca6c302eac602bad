"""The write-back planner: desired CRM field values against what the CRM holds -> a plan.

Pure. The desired values come from scoring (tier, score, segment, reasons, TAL membership and
rank, ICP version); the current values are what was last read back from the CRM or
successfully written to it. Only differences become :class:`FieldChange` s, so applying a plan
and planning again yields an empty plan, and unchanged values never cost an API call. The
scored-at stamp only moves on records that change for another reason.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, overload

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


class Plan:
    """Everything a write-back would change.

    Held column-wise (one entry per field change: object, record id, field, old, new), since
    a first write-back plans some 650,000 changes; :attr:`changes` gives them as
    :class:`FieldChange` s on demand.
    """

    __slots__ = ("_built", "_fields", "_ids", "_new", "_objects", "_old", "_starts", "tier_moves")

    def __init__(
        self, changes: Iterable[FieldChange] = (), tier_moves: dict[str, int] | None = None
    ) -> None:
        items = tuple(changes)
        self._objects: list[CrmObject] = [c.crm_object for c in items]
        self._ids: list[str] = [c.record_id for c in items]
        self._fields: list[str] = [c.field for c in items]
        self._old: list[Any] = [c.old for c in items]
        self._new: list[Any] = [c.new for c in items]
        self._starts: list[int] | None = None
        """Where each record's changes begin, when every record's changes are contiguous."""
        self._built: tuple[FieldChange, ...] | None = items
        """The changes as objects, once built."""
        self.tier_moves: dict[str, int] = {} if tier_moves is None else tier_moves

    @classmethod
    def _grouped(
        cls,
        crm_object: CrmObject,
        columns: tuple[list[str], list[str], list[Any], list[Any]],
        starts: list[int],
        tier_moves: dict[str, int],
    ) -> Plan:
        """A plan of distinct records whose changes are contiguous, from its columns."""
        planned = cls(tier_moves=tier_moves)
        planned._ids, planned._fields, planned._old, planned._new = columns
        planned._objects = [crm_object] * len(planned._ids)
        planned._starts = starts
        planned._built = None
        return planned

    @property
    def changes(self) -> Sequence[FieldChange]:
        """The changes, in plan order (record by record)."""
        return _Changes(self)

    @property
    def objects(self) -> frozenset[CrmObject]:
        """The objects the plan changes."""
        return frozenset(self._objects)

    @property
    def records(self) -> int:
        """How many records the plan touches."""
        if self._starts is not None:
            return len(self._starts)
        return len(set(zip(self._objects, self._ids, strict=True)))

    def by_record(self) -> dict[tuple[CrmObject, str], dict[str, Any]]:
        """Changes grouped per record: ``{(object, id): {field: new}}``, in plan order."""
        objects, ids, fields, new = self._objects, self._ids, self._fields, self._new
        if self._starts is not None:
            ends = [*self._starts[1:], len(ids)] if self._starts else []
            return {
                (objects[s], ids[s]): dict(zip(fields[s:e], new[s:e], strict=True))
                for s, e in zip(self._starts, ends, strict=True)
            }
        grouped: dict[tuple[CrmObject, str], dict[str, Any]] = {}
        for obj, record_id, name, value in zip(objects, ids, fields, new, strict=True):
            grouped.setdefault((obj, record_id), {})[name] = value
        return grouped

    def summary(self) -> dict[str, Any]:
        """JSON-ready counts: records, field changes per field, tier moves."""
        per_field = Counter(self._fields)
        return {
            "records": self.records,
            "field_changes": len(self._fields),
            "by_field": dict(sorted(per_field.items())),
            "tier_moves": self.tier_moves,
        }

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Plan):
            return NotImplemented
        return tuple(self.changes) == tuple(other.changes) and self.tier_moves == other.tier_moves

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Plan(changes={len(self._ids)} field changes, tier_moves={self.tier_moves!r})"


class _Changes(Sequence[FieldChange]):
    """A plan's changes as :class:`FieldChange` s, built as they are read."""

    __slots__ = ("_plan",)

    def __init__(self, plan: Plan) -> None:
        self._plan = plan

    def __len__(self) -> int:
        return len(self._plan._ids)

    @overload
    def __getitem__(self, index: int) -> FieldChange: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[FieldChange, ...]: ...

    def __getitem__(self, index: int | slice) -> FieldChange | tuple[FieldChange, ...]:
        if isinstance(index, slice):
            return tuple(self._at(i) for i in range(*index.indices(len(self))))
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return self._at(index)

    def _at(self, i: int) -> FieldChange:
        p = self._plan
        return FieldChange(
            crm_object=p._objects[i],
            record_id=p._ids[i],
            field=p._fields[i],
            old=p._old[i],
            new=p._new[i],
        )

    def __iter__(self) -> Iterator[FieldChange]:
        p = self._plan
        if p._built is None:
            # built once and kept: a preview reads the changes several times
            p._built = tuple(
                FieldChange(crm_object=obj, record_id=record_id, field=name, old=old, new=new)
                for obj, record_id, name, old, new in zip(
                    p._objects, p._ids, p._fields, p._old, p._new, strict=True
                )
            )
        return iter(p._built)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(tuple(self))


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
            "segment": _per_value(scores["segment"], _crm_text(_SEGMENT_LENGTH, items=True)),
            "reasons": _per_value(scores["reasons"], _crm_text(_REASONS_LENGTH)),
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


def _per_value(column: pd.Series, convert: Callable[[Any], Any]) -> np.ndarray:
    """``convert`` of every cell of a text column, computed once per distinct text."""
    values = column.to_numpy(dtype=object)
    if pd.api.types.infer_dtype(values, skipna=True) != "string":
        return column.map(convert).to_numpy()
    codes, distinct = pd.factorize(values, use_na_sentinel=True)
    converted = np.empty(len(distinct), dtype=object)
    converted[:] = [convert(v) for v in distinct]
    out = converted[np.maximum(codes, 0)]
    missing = codes < 0
    out[missing] = [convert(v) for v in values[missing]]
    return out


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
    rows, cols = np.nonzero(differs.to_numpy())
    # whole columns at once: a FieldChange (or a pandas lookup) per cell costs seconds
    aligned = current.reindex(index=desired.index, columns=fields).to_numpy(dtype=object)
    ids = desired.index.astype(str).to_numpy(dtype=object)
    names = np.array([str(f) for f in fields], dtype=object)
    target = [_plain_column(desired[name]) for name in fields]
    columns = (
        ids[rows].tolist(),
        names[cols].tolist(),
        _plain_values(aligned[rows, cols].tolist()),
        [target[c][r] for r, c in zip(rows.tolist(), cols.tolist(), strict=True)],
    )
    moves: dict[str, int] = {}
    if _TIER in differs.columns:
        moved = differs[_TIER].to_numpy()
        before = held[_TIER].to_numpy()[moved]
        after = wanted[_TIER].to_numpy()[moved]
        for old, new in zip(before.tolist(), after.tolist(), strict=True):
            key = f"{old or '(none)'} -> {new or '(none)'}"
            moves[key] = moves.get(key, 0) + 1
    tier_moves = dict(sorted(moves.items()))
    if not desired.index.is_unique:
        changes = (
            FieldChange(crm_object=crm_object, record_id=r, field=f, old=o, new=n)
            for r, f, o, n in zip(*columns, strict=True)
        )
        return Plan(changes=changes, tier_moves=tier_moves)
    starts = np.flatnonzero(np.diff(rows, prepend=-1)).tolist() if len(rows) else []
    return Plan._grouped(crm_object, columns, starts, tier_moves)


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
        if spec.length and _longest(cut[name]) > spec.length:
            cut[name] = cut[name].map(lambda v, n=spec.length: v[:n] if isinstance(v, str) else v)
    return cut


def _longest(column: pd.Series) -> int:
    """The length of the longest text in ``column`` (0 when it holds none)."""
    if column.dtype != object and not isinstance(column.dtype, pd.StringDtype):
        return 0
    try:
        lengths = column.str.len()  # not a text: missing (or the length of other sequences)
    except AttributeError:  # kinds of values the accessor refuses: measured one by one
        lengths = column.map(lambda v: len(v) if isinstance(v, str) else 0)
    longest = lengths.max()
    return 0 if pd.isna(longest) else int(longest)


_PLAIN_TYPES = frozenset({str, int, bool})


def _plain_values(values: list[Any]) -> list[Any]:
    """:func:`_plain` of each value (the common kinds passed through without a call)."""
    return [
        v
        if (t := type(v)) in _PLAIN_TYPES
        else ((v if v == v else None) if t is float else _plain(v))  # noqa: PLR0124
        for v in values
    ]


def _plain_column(column: pd.Series) -> list[Any]:
    """:func:`_plain` of every cell of ``column`` (a timestamp converted once per value)."""
    if isinstance(column.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(column):
        codes, distinct = pd.factorize(column, use_na_sentinel=True)
        plain = [_plain(v) for v in distinct] + [None]
        return [plain[c] for c in codes.tolist()]
    return _plain_values(column.to_numpy(dtype=object).tolist())


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
