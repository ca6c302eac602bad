"""Canonical columns, closed sets, the fields icp-sync owns, and the small shared records.

Connectors map CRM fields onto these columns; the core reads nothing else. A frame is
*canonical* when it has every column of its object with the dtype given here (extra
attributes ride along as ``attr_<name>`` columns). :data:`OWNED_FIELDS` declares, once, the
CRM fields icp-sync owns: config defaults, the write-back allow-list,
field setup and read-back are all derived from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

import numpy as np
import pandas as pd

STRING: Final = "string"
NUMBER: Final = "float64"
BOOLEAN: Final = "bool"
DATETIME: Final = "datetime64[ns, UTC]"

ATTR_PREFIX: Final = "attr_"


class CrmObject(StrEnum):
    """The CRM objects icp-sync reads."""

    ACCOUNT = "account"
    OPPORTUNITY = "opportunity"


class Tier(StrEnum):
    """ICP tier of an account: core target, periphery, or cannot serve."""

    GREEN = "Green"
    YELLOW = "Yellow"
    RED = "Red"


class Stage(StrEnum):
    """Where an opportunity stands, whatever the CRM calls its stages."""

    OPEN = "open"
    WON = "won"
    LOST = "lost"


class DealType(StrEnum):
    """Why an opportunity exists."""

    NEW_BUSINESS = "new_business"
    EXPANSION = "expansion"
    RENEWAL = "renewal"


class Motion(StrEnum):
    """How an opportunity was sourced."""

    INBOUND = "inbound"
    OUTBOUND = "outbound"
    PARTNER = "partner"
    OTHER = "other"


class FieldKind(StrEnum):
    """The type of an owned CRM field."""

    PICKLIST = "picklist"
    NUMBER = "number"
    TEXT = "text"
    LONG_TEXT = "long_text"
    CHECKBOX = "checkbox"
    DATETIME = "datetime"


class Access(StrEnum):
    """What icp-sync does with an owned field."""

    WRITTEN = "written"
    """In the write-back allow-list: set by every sync."""
    READ_ONLY = "read_only"
    """Created by setup-fields and read, never written (a human decision icp-sync respects)."""
    RESERVED = "reserved"
    """Created by setup-fields for a later feature (deal compliance); nothing writes it yet."""


@dataclass(frozen=True, slots=True, kw_only=True)
class OwnedField:
    """One CRM field icp-sync owns, with its default name in each CRM.

    Attributes:
        key: The name icp-sync uses (``tier``); the config maps it to a CRM field name.
        crm_object: The object the field lives on.
        kind: Its type.
        label: The label setup-fields gives it.
        salesforce: Default Salesforce API name.
        hubspot: Default HubSpot property name.
        access: Written, read only, or reserved for a later feature.
        length: Most characters (text kinds).
        precision: Most digits (numbers).
        values: The allowed values (picklists).
        description: Help text shown in the CRM.
    """

    key: str
    crm_object: CrmObject
    kind: FieldKind
    label: str
    salesforce: str
    hubspot: str
    access: Access = Access.WRITTEN
    length: int | None = None
    precision: int | None = None
    values: tuple[str, ...] = ()
    description: str = ""

    @property
    def attribute(self) -> str:
        """The extra attribute a read-only field is read into (``attr_`` + this)."""
        return f"icp_{self.key}"


_TIERS = tuple(Tier)

OWNED_FIELDS: Final[tuple[OwnedField, ...]] = (
    OwnedField(
        key="tier",
        crm_object=CrmObject.ACCOUNT,
        kind=FieldKind.PICKLIST,
        label="ICP Tier",
        salesforce="ICP_Tier__c",
        hubspot="icp_tier",
        values=_TIERS,
        description="Green: core target; Yellow: periphery; Red: cannot serve. Set by icp-sync.",
    ),
    OwnedField(
        key="score",
        crm_object=CrmObject.ACCOUNT,
        kind=FieldKind.NUMBER,
        label="ICP Score",
        salesforce="ICP_Score__c",
        hubspot="icp_score",
        precision=3,
        description="0-100 fit with the best customers (icp-sync look-alike model).",
    ),
    OwnedField(
        key="segment",
        crm_object=CrmObject.ACCOUNT,
        kind=FieldKind.TEXT,
        label="ICP Segment",
        salesforce="ICP_Segment__c",
        hubspot="icp_segment",
        length=255,
    ),
    OwnedField(
        key="reasons",
        crm_object=CrmObject.ACCOUNT,
        kind=FieldKind.LONG_TEXT,
        label="ICP Reasons",
        salesforce="ICP_Reasons__c",
        hubspot="icp_reasons",
        length=32768,
    ),
    OwnedField(
        key="tal",
        crm_object=CrmObject.ACCOUNT,
        kind=FieldKind.CHECKBOX,
        label="ICP Target Account",
        salesforce="ICP_TAL__c",
        hubspot="icp_tal",
    ),
    OwnedField(
        key="tal_rank",
        crm_object=CrmObject.ACCOUNT,
        kind=FieldKind.NUMBER,
        label="ICP TAL Rank",
        salesforce="ICP_TAL_Rank__c",
        hubspot="icp_tal_rank",
        precision=7,
    ),
    OwnedField(
        key="version",
        crm_object=CrmObject.ACCOUNT,
        kind=FieldKind.TEXT,
        label="ICP Version",
        salesforce="ICP_Version__c",
        hubspot="icp_version",
        length=32,
    ),
    OwnedField(
        key="scored_at",
        crm_object=CrmObject.ACCOUNT,
        kind=FieldKind.DATETIME,
        label="ICP Scored At",
        salesforce="ICP_Scored_At__c",
        hubspot="icp_scored_at",
    ),
    OwnedField(
        key="tier_override",
        crm_object=CrmObject.ACCOUNT,
        kind=FieldKind.PICKLIST,
        label="ICP Tier Override",
        salesforce="ICP_Tier_Override__c",
        hubspot="icp_tier_override",
        access=Access.READ_ONLY,
        values=_TIERS,
        description="A human decision icp-sync respects: it wins over the derived tier.",
    ),
    OwnedField(
        key="tier_at_creation",
        crm_object=CrmObject.OPPORTUNITY,
        kind=FieldKind.PICKLIST,
        label="ICP Tier At Creation",
        salesforce="ICP_Tier_At_Creation__c",
        hubspot="icp_tier_at_creation",
        description="The account's ICP tier when the deal was first seen; never changed after.",
        values=_TIERS,
    ),
    OwnedField(
        key="compliance",
        crm_object=CrmObject.OPPORTUNITY,
        kind=FieldKind.PICKLIST,
        label="ICP Compliance",
        salesforce="ICP_Compliance__c",
        hubspot="icp_compliance",
        values=("Compliant", "Out of ICP", "Waived"),
    ),
    OwnedField(
        key="compliance_reason",
        crm_object=CrmObject.OPPORTUNITY,
        kind=FieldKind.TEXT,
        label="ICP Compliance Reason",
        salesforce="ICP_Compliance_Reason__c",
        hubspot="icp_compliance_reason",
        length=255,
    ),
    OwnedField(
        key="waiver_reason",
        crm_object=CrmObject.OPPORTUNITY,
        kind=FieldKind.TEXT,
        label="ICP Waiver Reason",
        salesforce="ICP_Waiver_Reason__c",
        hubspot="icp_waiver_reason",
        access=Access.READ_ONLY,
        length=255,
    ),
    OwnedField(
        key="waiver_approved_by",
        crm_object=CrmObject.OPPORTUNITY,
        kind=FieldKind.TEXT,
        label="ICP Waiver Approved By",
        salesforce="ICP_Waiver_Approved_By__c",
        hubspot="icp_waiver_approved_by",
        access=Access.READ_ONLY,
        length=80,
    ),
)
"""Every CRM field icp-sync owns, in the order setup-fields creates them."""

OWNED: Final[dict[str, OwnedField]] = {f.key: f for f in OWNED_FIELDS}
"""The owned fields by key."""

WRITTEN_ACCOUNT_FIELDS: Final[tuple[str, ...]] = tuple(
    f.key for f in OWNED_FIELDS if f.crm_object is CrmObject.ACCOUNT and f.access is Access.WRITTEN
)
"""The Account fields write-back may set: the allow-list, by key."""

WRITTEN_OPPORTUNITY_FIELDS: Final[tuple[str, ...]] = tuple(
    f.key
    for f in OWNED_FIELDS
    if f.crm_object is CrmObject.OPPORTUNITY and f.access is Access.WRITTEN
)
"""The Opportunity fields the compliance monitor may set (tier at creation, compliance and
its reason): the allow-list, by key."""


ACCOUNT_COLUMNS: Final[dict[str, str]] = {
    "account_id": STRING,
    "name": STRING,
    "domain": STRING,
    "industry": STRING,
    "employees": NUMBER,
    "annual_revenue": NUMBER,
    "country": STRING,
    "region": STRING,
    "tech_stack": STRING,
    "owner_id": STRING,
    "created_at": DATETIME,
    "modified_at": DATETIME,
    "is_deleted": BOOLEAN,
    "customer_since": DATETIME,
    "churned_at": DATETIME,
    "arr": NUMBER,
    "nps": NUMBER,
    "adoption": NUMBER,
}

OPPORTUNITY_COLUMNS: Final[dict[str, str]] = {
    "opportunity_id": STRING,
    "account_id": STRING,
    "name": STRING,
    "stage": STRING,
    "amount": NUMBER,
    "created_at": DATETIME,
    "close_date": DATETIME,
    "is_closed": BOOLEAN,
    "is_won": BOOLEAN,
    "deal_type": STRING,
    "motion": STRING,
    "owner_id": STRING,
    "modified_at": DATETIME,
    "is_deleted": BOOLEAN,
}

COLUMNS: Final[dict[CrmObject, dict[str, str]]] = {
    CrmObject.ACCOUNT: ACCOUNT_COLUMNS,
    CrmObject.OPPORTUNITY: OPPORTUNITY_COLUMNS,
}

ID_COLUMN: Final[dict[CrmObject, str]] = {
    CrmObject.ACCOUNT: "account_id",
    CrmObject.OPPORTUNITY: "opportunity_id",
}


def attr_columns(frame: pd.DataFrame) -> list[str]:
    """Names of the extra ``attr_<name>`` columns a frame carries, sorted."""
    return sorted(c for c in frame.columns if str(c).startswith(ATTR_PREFIX))


def empty_frame(obj: CrmObject) -> pd.DataFrame:
    """A canonical frame with no rows."""
    return conform(pd.DataFrame(), obj)


def conform(frame: pd.DataFrame, obj: CrmObject) -> pd.DataFrame:
    """Return ``frame`` with every canonical column of ``obj``, in order and with its dtype.

    Missing columns are added as nulls (``False`` for flags); ``attr_`` columns are kept
    after the canonical ones; anything else is dropped. Values must already be clean:
    this casts, it does not repair.
    """
    columns = COLUMNS[obj]
    out: dict[str, pd.Series] = {}
    for name, dtype in columns.items():
        if name in frame.columns:
            series = frame[name]
        elif dtype == BOOLEAN:
            series = pd.Series(False, index=frame.index)
        else:
            series = pd.Series(np.nan, index=frame.index)
        out[name] = _cast(series, dtype)
    for name in attr_columns(frame):
        out[name] = frame[name]
    return pd.DataFrame(out, index=frame.index).reset_index(drop=True)


def _cast(series: pd.Series, dtype: str) -> pd.Series:
    if dtype == DATETIME:
        if isinstance(series.dtype, pd.DatetimeTZDtype):
            converted: pd.Series = series.dt.tz_convert("UTC")
            return converted.astype(DATETIME)
        parsed: pd.Series = pd.to_datetime(series, utc=True, errors="coerce")
        return parsed.astype(DATETIME)
    if dtype == BOOLEAN:
        return series.fillna(False).astype(bool)
    if dtype == NUMBER:
        return pd.to_numeric(series, errors="coerce").astype(NUMBER)
    return series.astype(STRING)


@dataclass(frozen=True, slots=True, kw_only=True)
class Reject:
    """One CRM record that could not be used, and why.

    Attributes:
        crm_object: Which CRM object the record belongs to.
        record_id: Its id in the CRM (or a row locator when it has none).
        reason: What was wrong, in words a RevOps user can act on.
    """

    crm_object: CrmObject
    record_id: str
    reason: str


@dataclass(slots=True)
class ColumnRepairs:
    """What normalisation did to one column: counts of values repaired or dropped, by reason."""

    repaired: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str, reason: str, count: int) -> None:
        """Count ``count`` values as ``kind`` (``"repaired"`` or ``"dropped"``) for ``reason``."""
        if count <= 0:
            return
        bucket = self.repaired if kind == "repaired" else self.dropped
        bucket[reason] = bucket.get(reason, 0) + count

    @property
    def total_repaired(self) -> int:
        """Values changed into a usable form."""
        return sum(self.repaired.values())

    @property
    def total_dropped(self) -> int:
        """Values discarded (set to null) because they could not be trusted."""
        return sum(self.dropped.values())


@dataclass(slots=True)
class NormalizeReport:
    """Per-object account of normalisation: rows in and out, rejects, and per-column repairs."""

    crm_object: CrmObject
    rows_in: int = 0
    rows_out: int = 0
    rejects: list[Reject] = field(default_factory=list)
    columns: dict[str, ColumnRepairs] = field(default_factory=dict)

    def column(self, name: str) -> ColumnRepairs:
        """The repair counters of one column, created on first use."""
        return self.columns.setdefault(name, ColumnRepairs())

    def merge(self, other: NormalizeReport) -> None:
        """Add ``other`` (a later batch of the same object) into this report."""
        self.rows_in += other.rows_in
        self.rows_out += other.rows_out
        self.rejects.extend(other.rejects)
        for name, repairs in other.columns.items():
            mine = self.column(name)
            for reason, count in repairs.repaired.items():
                mine.add("repaired", reason, count)
            for reason, count in repairs.dropped.items():
                mine.add("dropped", reason, count)

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready summary (reject reasons counted, not listed one by one)."""
        reasons: dict[str, int] = {}
        for reject in self.rejects:
            reasons[reject.reason] = reasons.get(reject.reason, 0) + 1
        return {
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "rejected": len(self.rejects),
            "reject_reasons": reasons,
            "columns": {
                name: {"repaired": dict(c.repaired), "dropped": dict(c.dropped)}
                for name, c in sorted(self.columns.items())
                if c.repaired or c.dropped
            },
        }
