"""Turn raw CRM values into clean canonical frames, and say what was repaired or dropped.

Connectors hand over frames with canonical column names but raw values (strings as exported,
odd cases, typos, impossible numbers). :func:`normalize` repairs what can be repaired, drops
(sets to null) values that cannot be trusted, rejects records that cannot be used at all (no
id, no account), and reports every decision per column. It never raises on bad data.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from icp_sync.countries import COUNTRY_ALIASES, REGION_ALIASES, REGION_OF
from icp_sync.model import (
    BOOLEAN,
    COLUMNS,
    DATETIME,
    ID_COLUMN,
    NUMBER,
    CrmObject,
    DealType,
    Motion,
    NormalizeReport,
    Reject,
    Stage,
    attr_columns,
    conform,
)

if TYPE_CHECKING:
    from icp_sync.config import NormalizeConfig

__all__ = ["normalize"]

_CATEGORICAL = ("industry", "country", "region")
_EARLIEST = pd.Timestamp("1900-01-01", tz="UTC")
_TRUE = {"true", "t", "yes", "y", "1", "1.0", "x", "checked"}
_FALSE = {"false", "f", "no", "n", "0", "0.0", "unchecked"}

_STAGES: dict[str, str] = {
    "won": Stage.WON,
    "closed won": Stage.WON,
    "closedwon": Stage.WON,
    "closed/won": Stage.WON,
    "lost": Stage.LOST,
    "closed lost": Stage.LOST,
    "closedlost": Stage.LOST,
    "closed/lost": Stage.LOST,
    "open": Stage.OPEN,
}
_DEAL_TYPES: dict[str, str] = {
    "new_business": DealType.NEW_BUSINESS,
    "new business": DealType.NEW_BUSINESS,
    "newbusiness": DealType.NEW_BUSINESS,
    "new": DealType.NEW_BUSINESS,
    "new customer": DealType.NEW_BUSINESS,
    "new logo": DealType.NEW_BUSINESS,
    "expansion": DealType.EXPANSION,
    "upsell": DealType.EXPANSION,
    "upgrade": DealType.EXPANSION,
    "cross-sell": DealType.EXPANSION,
    "existing business": DealType.EXPANSION,
    "existingbusiness": DealType.EXPANSION,
    "existing customer - upgrade": DealType.EXPANSION,
    "add-on": DealType.EXPANSION,
    "renewal": DealType.RENEWAL,
    "existing customer - replacement": DealType.RENEWAL,
    "existing customer - renewal": DealType.RENEWAL,
}
_MOTIONS: dict[str, str] = {
    "inbound": Motion.INBOUND,
    "web": Motion.INBOUND,
    "website": Motion.INBOUND,
    "organic": Motion.INBOUND,
    "ads": Motion.INBOUND,
    "marketing": Motion.INBOUND,
    "phone inquiry": Motion.INBOUND,
    "content": Motion.INBOUND,
    "outbound": Motion.OUTBOUND,
    "cold call": Motion.OUTBOUND,
    "purchased list": Motion.OUTBOUND,
    "sdr": Motion.OUTBOUND,
    "event": Motion.OUTBOUND,
    "partner": Motion.PARTNER,
    "partner referral": Motion.PARTNER,
    "channel": Motion.PARTNER,
    "reseller": Motion.PARTNER,
    "other": Motion.OTHER,
}
_NUMBER_JUNK = re.compile(r"[\s,$€£¥]|(?<=\d)'(?=\d)")
_WHITESPACE = "".join(chr(c) for c in range(0x3001) if chr(c).isspace())
"""The characters of the regex ``\\s`` and of ``str.strip()``/``split()`` (none above U+3000)."""
_JUNK_CLASS = f"[{_WHITESPACE},$€£¥']"
"""Any character :data:`_NUMBER_JUNK` can match."""
_SPACE = f"[{_WHITESPACE}]"
_UNTIDY = f"^$|^{_SPACE}|{_SPACE}$|{_SPACE}{_SPACE}|[{_WHITESPACE.replace(' ', '')}]"
"""Text that whitespace cleaning changes: empty, padded, a run of whitespace, or whitespace
other than a plain space."""


def normalize(
    raw: pd.DataFrame,
    obj: CrmObject,
    config: NormalizeConfig,
    *,
    now: datetime,
) -> tuple[pd.DataFrame, NormalizeReport]:
    """Clean one batch of raw records of ``obj``.

    Args:
        raw: Canonical column names (any subset, plus ``attr_`` columns), raw values.
        obj: Which object the rows are.
        config: Aliases and plausibility bounds.
        now: The current time; dates far beyond it are impossible.

    Returns:
        The canonical frame of usable records and the report of what was done.
    """
    report = NormalizeReport(crm_object=obj, rows_in=len(raw))
    frame = raw.copy()
    for name in COLUMNS[obj]:
        if name not in frame.columns:
            frame[name] = pd.NA
    for name, dtype in COLUMNS[obj].items():
        frame[name] = _typed(frame[name], name, dtype, config, report, now=now)
    for name in attr_columns(frame):
        if frame[name].dtype == object or pd.api.types.is_string_dtype(frame[name]):
            frame[name] = _text(frame[name], name, report)
    for name in (*_CATEGORICAL, *attr_columns(frame)):
        if name in frame.columns and pd.api.types.is_string_dtype(frame[name]):
            frame[name] = _categorical(frame[name], name, config.aliases.get(name, {}), report)
    if obj is CrmObject.ACCOUNT:
        _accounts(frame, report)
    else:
        _opportunities(frame, report)
    frame = _reject_unusable(frame, obj, report)
    report.rows_out = len(frame)
    return conform(frame, obj), report


def _typed(
    series: pd.Series,
    name: str,
    dtype: str,
    config: NormalizeConfig,
    report: NormalizeReport,
    *,
    now: datetime,
) -> pd.Series:
    if dtype == NUMBER:
        return _numbers(series, name, config, report)
    if dtype == DATETIME:
        return _dates(series, name, report, now=now)
    if dtype == BOOLEAN:
        return _booleans(series, name, report)
    return _text(series, name, report)


def _text(series: pd.Series, name: str, report: NormalizeReport) -> pd.Series:
    original = series.astype("string")
    # only the untidy values (a vectorised test) are cleaned one by one: split() drops leading
    # and trailing whitespace and splits on runs of it, the same characters as str.strip()
    # and the regex \s, so joining with " " is the strip and collapse in one C call
    untidy = original.str.contains(_UNTIDY, regex=True).fillna(False).to_numpy(dtype=bool)
    cleaned = original.copy()
    changed = 0
    if untidy.any():
        values = _objects(original)
        before = values[untidy]
        after = [" ".join(v.split()) or None for v in before]
        changed = sum(1 for v, c in zip(before, after, strict=True) if c is not None and c != v)
        values[untidy] = after
        cleaned = pd.Series(values, index=original.index, dtype=original.dtype, name=original.name)
    report.column(name).add("repaired", "extra whitespace removed", changed)
    return cleaned


def _objects(series: pd.Series) -> np.ndarray:
    """The values of a string series as Python objects, ``None`` where missing."""
    return series.to_numpy(dtype=object, na_value=cast(Any, None))


def _categorical(
    series: pd.Series, name: str, aliases: Mapping[str, str], report: NormalizeReport
) -> pd.Series:
    table = {k.casefold(): v for k, v in aliases.items()}
    if name == "country":
        table = {**COUNTRY_ALIASES, **table}
    elif name == "region":
        table = {**REGION_ALIASES, **table}
    # each distinct value is folded and looked up once (a column holds few of them)
    codes, distinct = pd.factorize(series, use_na_sentinel=True)
    texts = [str(text) for text in distinct]
    per_value = np.bincount(codes[codes >= 0], minlength=len(texts))
    aliased = [table.get(text.casefold()) for text in texts]
    hits = [a is not None and a != text for a, text in zip(aliased, texts, strict=True)]
    report.column(name).add(
        "repaired", "mapped to the standard spelling", int(per_value[np.array(hits, bool)].sum())
    )
    spelled = [text if a is None else a for a, text in zip(aliased, texts, strict=True)]
    out = _coded(spelled, codes, series)
    # one spelling per value: the most frequent variant wins ("healthcare" -> "Healthcare")
    counts = out.value_counts()
    canonical: dict[str, str] = {}
    for value in counts.index:
        canonical.setdefault(str(value).casefold(), str(value))
    unified = [canonical[text.casefold()] for text in spelled]
    recased = [u != text for u, text in zip(unified, spelled, strict=True)]
    report.column(name).add(
        "repaired", "letter case unified", int(per_value[np.array(recased, bool)].sum())
    )
    return _coded(unified, codes, series)


def _coded(texts: list[str], codes: np.ndarray, like: pd.Series) -> pd.Series:
    """A ``string`` series (index and name of ``like``) holding ``texts[code]`` per row,
    missing where the code is -1."""
    values = np.array([*texts, None], dtype=object)[codes]
    return pd.Series(values, index=like.index, dtype="string", name=like.name)


def _numbers(
    series: pd.Series, name: str, config: NormalizeConfig, report: NormalizeReport
) -> pd.Series:
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        values = series.astype("float64")
    else:
        text = series.astype("string").str.strip()
        stripped = _without_junk(text)
        values = pd.to_numeric(stripped, errors="coerce").astype("float64")
        reformatted = (stripped != text).fillna(False) & values.notna()
        report.column(name).add(
            "repaired", "currency sign or separators removed", int(reformatted.sum())
        )
        bad = text.notna() & (text != "") & values.isna()
        report.column(name).add("dropped", "not a number", int(bad.sum()))
    infinite = np.isinf(values)
    values = values.mask(infinite)
    report.column(name).add("dropped", "not a number", int(infinite.sum()))
    if name == "nps":
        impossible = (values < -100) | (values > 100)
        reason = "outside -100..100"
    elif name == "adoption":
        percent = (values > 1) & (values <= 100)
        values = values.mask(percent, values / 100)
        report.column(name).add("repaired", "percentage scaled to 0..1", int(percent.sum()))
        impossible = (values < 0) | (values > 1)
        reason = "outside 0..1"
    elif name == "employees":
        impossible = (values < 0) | (values > config.max_employees)
        reason = f"negative or above {config.max_employees:,.0f}"
    elif name == "annual_revenue":
        impossible = (values < 0) | (values > config.max_annual_revenue)
        reason = f"negative or above {config.max_annual_revenue:,.0f}"
    else:
        impossible = (values < 0) | (values > config.max_amount)
        reason = f"negative or above {config.max_amount:,.0f}"
    report.column(name).add("dropped", reason, int(impossible.sum()))
    return values.mask(impossible)


def _without_junk(text: pd.Series) -> pd.Series:
    """``text`` with :data:`_NUMBER_JUNK` removed; the regex runs only on the values holding
    one of the characters it can match (most numbers hold none)."""
    junk = text.str.contains(_JUNK_CLASS, regex=True).fillna(False).to_numpy(dtype=bool)
    if not junk.any():
        return text.copy()
    values = _objects(text)
    values[junk] = [_NUMBER_JUNK.sub("", v) for v in values[junk]]
    return pd.Series(values, index=text.index, dtype=text.dtype, name=text.name)


def _dates(series: pd.Series, name: str, report: NormalizeReport, *, now: datetime) -> pd.Series:
    parsed: pd.Series
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        parsed = series.dt.tz_convert("UTC")
    elif pd.api.types.is_datetime64_dtype(series):
        parsed = series.dt.tz_localize("UTC")
    else:
        text = series.astype("string").str.strip()
        text = text.mask(text == "")
        # ISO 8601 (what CRMs export) parses several times faster than a per-value guess and
        # gives the same result; any other text sends the whole column to the guess
        parsed = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
        # a connector that read the column with a declared format hands over datetimes and
        # leaves what did not match that format as text: not a date, so no guess for it
        if (text.notna() & parsed.isna()).any() and not _read_with_a_format(series):
            parsed = pd.to_datetime(text, utc=True, errors="coerce", format="mixed")
        bad = text.notna() & parsed.isna()
        report.column(name).add("dropped", "not a date", int(bad.sum()))
    # open deals close in the future; nothing else should be more than a day ahead
    horizon = timedelta(days=3650) if name == "close_date" else timedelta(days=1)
    latest = pd.Timestamp(now) + horizon
    impossible = (parsed < _EARLIEST) | (parsed > latest)
    report.column(name).add("dropped", "impossible date", int(impossible.sum()))
    cleaned: pd.Series = parsed.mask(impossible)
    return cleaned.astype(DATETIME)


def _read_with_a_format(series: pd.Series) -> bool:
    return bool(series.map(lambda value: isinstance(value, datetime)).any())


def _booleans(series: pd.Series, name: str, report: NormalizeReport) -> pd.Series:
    if pd.api.types.is_bool_dtype(series):
        return series.fillna(False).astype(bool)
    text = series.astype("string").str.strip().str.casefold()
    truthy = text.isin(_TRUE).fillna(False)
    falsy = text.isin(_FALSE).fillna(False)
    unknown = text.notna() & (text != "") & ~truthy & ~falsy
    report.column(name).add("dropped", "not a yes/no value", int(unknown.sum()))
    return truthy.astype(bool)


def _accounts(frame: pd.DataFrame, report: NormalizeReport) -> None:
    domain = frame["domain"]
    cleaned = (
        domain.str.casefold()
        .str.replace(r"^[a-z]+://", "", regex=True)
        .str.replace(r"^www\.", "", regex=True)
        .str.replace(r"[/?#].*$", "", regex=True)
    )
    report.column("domain").add(
        "repaired", "reduced to the bare domain", int((cleaned != domain).fillna(False).sum())
    )
    frame["domain"] = cleaned.mask(cleaned == "", pd.NA)
    missing_region = frame["region"].isna() & frame["country"].notna()
    derived = frame.loc[missing_region, "country"].map(REGION_OF)
    frame.loc[missing_region, "region"] = derived
    report.column("region").add("repaired", "derived from country", int(derived.notna().sum()))
    churn_before_start = frame["churned_at"] < frame["customer_since"]
    frame.loc[churn_before_start, "churned_at"] = pd.NaT
    report.column("churned_at").add(
        "dropped", "before customer_since", int(churn_before_start.sum())
    )


def _opportunities(frame: pd.DataFrame, report: NormalizeReport) -> None:
    stage = _closed_set(frame["stage"], _STAGES, "stage", report, default=None)
    derived = pd.Series(
        np.where(frame["is_won"], Stage.WON, np.where(frame["is_closed"], Stage.LOST, Stage.OPEN)),
        index=frame.index,
        dtype="string",
    )
    unknown = stage.isna()
    report.column("stage").add(
        "repaired", "derived from is_closed/is_won", int((unknown & frame["stage"].notna()).sum())
    )
    stage = stage.fillna(derived)
    frame["stage"] = stage
    frame["is_closed"] = (stage != Stage.OPEN).to_numpy(dtype=bool)
    frame["is_won"] = (stage == Stage.WON).to_numpy(dtype=bool)
    frame["deal_type"] = _closed_set(
        frame["deal_type"], _DEAL_TYPES, "deal_type", report, default=DealType.NEW_BUSINESS
    )
    frame["motion"] = _closed_set(frame["motion"], _MOTIONS, "motion", report, default=Motion.OTHER)
    backwards = frame["close_date"] < frame["created_at"]
    frame.loc[backwards, "created_at"] = pd.NaT
    report.column("created_at").add("dropped", "after close_date", int(backwards.sum()))


def _closed_set(
    series: pd.Series,
    table: Mapping[str, str],
    name: str,
    report: NormalizeReport,
    *,
    default: str | None,
) -> pd.Series:
    folded = series.str.casefold().str.replace("_", " ")
    mapped = folded.map({k.replace("_", " "): str(v) for k, v in table.items()}).astype("string")
    unknown = series.notna() & mapped.isna()
    if default is not None:
        report.column(name).add(
            "repaired", f"unrecognised value, set to {default}", int(unknown.sum())
        )
        blank = series.isna()
        report.column(name).add("repaired", f"blank, set to {default}", int(blank.sum()))
        return mapped.fillna(default)
    return mapped


def _reject_unusable(frame: pd.DataFrame, obj: CrmObject, report: NormalizeReport) -> pd.DataFrame:
    id_col = ID_COLUMN[obj]
    keep = pd.Series(True, index=frame.index)
    missing_id = frame[id_col].isna()
    _reject(frame, missing_id, obj, f"missing {id_col}", report)
    keep &= ~missing_id
    if obj is CrmObject.OPPORTUNITY:
        orphan = keep & frame["account_id"].isna()
        _reject(frame, orphan, obj, "missing account_id: the deal cannot be attributed", report)
        keep &= ~orphan
    order = frame["modified_at"].fillna(_EARLIEST)
    ranked = frame.assign(_order=order, _pos=np.arange(len(frame)))
    latest = ranked[keep].sort_values(["_order", "_pos"]).drop_duplicates(id_col, keep="last")
    duplicate = keep & ~frame.index.isin(latest.index)
    _reject(frame, duplicate, obj, "duplicate id: kept the most recently modified copy", report)
    keep &= ~duplicate
    return frame[keep]


def _reject(
    frame: pd.DataFrame, mask: pd.Series, obj: CrmObject, reason: str, report: NormalizeReport
) -> None:
    if not mask.any():
        return
    ids = frame.loc[mask, ID_COLUMN[obj]]
    rows = np.flatnonzero(mask.to_numpy())
    for row, record_id in zip(rows, ids, strict=True):
        label = str(record_id) if not pd.isna(record_id) else f"row {row + 1}"
        report.rejects.append(Reject(crm_object=obj, record_id=label, reason=reason))
