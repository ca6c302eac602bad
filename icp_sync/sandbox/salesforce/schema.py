"""Salesforce metadata for the sandbox: the standard objects, field types and validation.

What describe reports, and the checks a real org applies to a written value (restricted
picklists, text lengths, number ranges, dates and datetimes, required fields).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from icp_sync.sandbox.salesforce.soql import parse_datetime_ms

__all__ = [
    "OPEN_STAGES",
    "STAGES",
    "RecordError",
    "SfField",
    "derive_flags",
    "field_from_metadata",
    "standard_objects",
    "typed_value",
    "writable_value",
]


class RecordError(Exception):
    """A write the org refuses: a Salesforce status code, message and fields."""

    def __init__(self, code: str, message: str, fields: Iterable[str] = ()) -> None:
        self.code = code
        self.message = message
        self.fields = list(fields)
        super().__init__(f"{code}: {message}")

    def as_error(self) -> dict[str, Any]:
        """The per-record error object (``statusCode``, ``message``, ``fields``)."""
        return {"statusCode": self.code, "message": self.message, "fields": self.fields}


STAGES = (
    ("Prospecting", False, False),
    ("Qualification", False, False),
    ("Needs Analysis", False, False),
    ("Proposal/Price Quote", False, False),
    ("Negotiation/Review", False, False),
    ("Closed Won", True, True),
    ("Closed Lost", True, False),
)
OPEN_STAGES = tuple(name for name, closed, _ in STAGES if not closed)
_SOAP_TYPES = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "boolean": "xsd:boolean",
    "int": "xsd:int",
    "double": "xsd:double",
    "currency": "xsd:double",
    "percent": "xsd:double",
    "date": "xsd:date",
    "datetime": "xsd:dateTime",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class SfField:
    """Metadata of one field, as describe reports it."""

    name: str
    label: str
    type: str
    length: int = 0
    precision: int = 0
    scale: int = 0
    custom: bool = False
    updateable: bool = True
    nillable: bool = True
    values: tuple[str, ...] = ()
    restricted: bool = False
    reference_to: tuple[str, ...] = ()
    default: str | None = None
    """The value a create without the field gets (``defaultedOnCreate``)."""

    def describe(self) -> dict[str, Any]:
        """The describe entry of the field."""
        return {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "length": self.length,
            "precision": self.precision,
            "scale": self.scale,
            "custom": self.custom,
            "nillable": self.nillable,
            "createable": self.updateable,
            "updateable": self.updateable,
            "calculated": False,
            "defaultedOnCreate": self.default is not None,
            "externalId": False,
            "unique": self.name == "Id",
            "restrictedPicklist": self.restricted,
            "picklistValues": [
                {"value": v, "label": v, "active": True, "defaultValue": v == self.default}
                for v in self.values
            ],
            "referenceTo": list(self.reference_to),
            "soapType": _SOAP_TYPES.get(self.type, "xsd:string"),
        }


def _f(name: str, label: str, kind: str, **extra: Any) -> SfField:
    return SfField(name=name, label=label, type=kind, **extra)


def _system(prefix_label: str) -> list[SfField]:
    return [
        _f("Id", f"{prefix_label} ID", "id", length=18, updateable=False, nillable=False),
        _f("OwnerId", "Owner ID", "reference", length=18, reference_to=("User",)),
        _f("CreatedDate", "Created Date", "datetime", updateable=False, nillable=False),
        _f(
            "CreatedById",
            "Created By ID",
            "reference",
            length=18,
            updateable=False,
            reference_to=("User",),
        ),
        _f("LastModifiedDate", "Last Modified Date", "datetime", updateable=False, nillable=False),
        _f(
            "LastModifiedById",
            "Last Modified By ID",
            "reference",
            length=18,
            updateable=False,
            reference_to=("User",),
        ),
        _f("SystemModstamp", "System Modstamp", "datetime", updateable=False, nillable=False),
        _f("IsDeleted", "Deleted", "boolean", updateable=False, nillable=False),
    ]


def standard_objects() -> dict[str, tuple[str, dict[str, SfField]]]:
    account = [
        *_system("Account"),
        _f("Name", "Account Name", "string", length=255, nillable=False),
        _f("Website", "Website", "url", length=255),
        _f(
            "Industry",
            "Industry",
            "picklist",
            length=255,
            values=(
                "Agriculture",
                "Banking",
                "Education",
                "Energy",
                "Government",
                "Healthcare",
                "Manufacturing",
                "Media",
                "Retail",
                "Technology",
                "Telecommunications",
            ),
        ),
        _f("NumberOfEmployees", "Employees", "int", precision=8),
        _f("AnnualRevenue", "Annual Revenue", "currency", precision=18, scale=0),
        _f("BillingCountry", "Billing Country", "string", length=80),
        _f("Tech_Stack__c", "Tech Stack", "string", length=255, custom=True),
        _f("Customer_Since__c", "Customer Since", "date", custom=True),
        _f("Churn_Date__c", "Churn Date", "date", custom=True),
        _f("ARR__c", "ARR", "currency", precision=16, scale=2, custom=True),
        _f("NPS__c", "NPS", "double", precision=3, scale=0, custom=True),
        _f("Adoption__c", "Adoption", "percent", precision=5, scale=2, custom=True),
    ]
    opportunity = [
        *_system("Opportunity"),
        _f("AccountId", "Account ID", "reference", length=18, reference_to=("Account",)),
        _f("Name", "Name", "string", length=120, nillable=False),
        _f(
            "StageName",
            "Stage",
            "picklist",
            length=255,
            nillable=False,
            restricted=True,
            values=tuple(name for name, _, _ in STAGES),
        ),
        _f("Amount", "Amount", "currency", precision=18, scale=2),
        _f("CloseDate", "Close Date", "date", nillable=False),
        _f("IsClosed", "Closed", "boolean", updateable=False, nillable=False),
        _f("IsWon", "Won", "boolean", updateable=False, nillable=False),
        _f(
            "Type",
            "Opportunity Type",
            "picklist",
            length=255,
            values=("New Business", "Expansion", "Renewal"),
        ),
        _f(
            "LeadSource",
            "Lead Source",
            "picklist",
            length=255,
            values=("Web", "Outbound", "Partner Referral", "Other"),
        ),
    ]
    user = [
        *_system("User"),
        _f("Name", "Full Name", "string", length=121, updateable=False),
        _f("Username", "Username", "string", length=80),
        _f("IsActive", "Active", "boolean"),
        _f("Department", "Department", "string", length=80),
    ]
    task = [
        *_system("Task"),
        _f(
            "WhatId",
            "Related To ID",
            "reference",
            length=18,
            reference_to=("Account", "Opportunity"),
        ),
        _f("Subject", "Subject", "combobox", length=255),
        _f("Description", "Description", "textarea", length=32000),
        _f("ActivityDate", "Due Date Only", "date"),
        _f(
            "Status",
            "Status",
            "picklist",
            length=255,
            nillable=False,
            restricted=True,
            values=(
                "Not Started",
                "In Progress",
                "Completed",
                "Waiting on someone else",
                "Deferred",
            ),
            default="Not Started",
        ),
        _f(
            "Priority",
            "Priority",
            "picklist",
            length=40,
            nillable=False,
            restricted=True,
            values=("High", "Normal", "Low"),
            default="Normal",
        ),
    ]
    return {
        "Account": ("001", {f.name: f for f in account}),
        "Task": ("00T", {f.name: f for f in task}),
        "Opportunity": ("006", {f.name: f for f in opportunity}),
        "User": ("005", {f.name: f for f in user}),
    }


def typed_value(meta: SfField, value: Any) -> Any:  # noqa: PLR0911, PLR0912 (one branch per field type)
    if value is None or (isinstance(value, str) and value in ("", "#N/A")):
        if not meta.nillable:
            raise RecordError(
                "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{meta.name}]", [meta.name]
            )
        return False if meta.type == "boolean" else None
    kind = meta.type
    if kind in ("string", "combobox", "textarea", "url", "email", "phone", "picklist", "reference"):
        text = str(value)
        if kind == "picklist" and meta.restricted and text not in meta.values:
            raise RecordError(
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                f"{meta.label}: bad value for restricted picklist field: {text}",
                [meta.name],
            )
        if meta.length and len(text) > meta.length:
            raise RecordError(
                "STRING_TOO_LONG",
                f"{meta.label}: data value too large: {text[:40]}... (max length={meta.length})",
                [meta.name],
            )
        return text
    if kind in ("int", "double", "currency", "percent"):
        try:
            number = float(value) if not isinstance(value, bool) else float("nan")
        except (TypeError, ValueError):
            number = float("nan")
        if number != number:  # noqa: PLR0124 (NaN check)
            raise RecordError(
                "INVALID_TYPE_ON_FIELD_IN_RECORD",
                f"{meta.label}: value not of required type: {value}",
                [meta.name],
            )
        digits = meta.precision - meta.scale
        if meta.precision and abs(number) >= 10**digits:
            raise RecordError(
                "NUMBER_OUTSIDE_VALID_RANGE",
                f"{meta.label}: value outside of valid range on numeric field: {value}",
                [meta.name],
            )
        return int(number) if kind == "int" else number
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "false"):
            return text == "true"
        raise RecordError(
            "INVALID_TYPE_ON_FIELD_IN_RECORD",
            f"{meta.label}: value not of required type: {value}",
            [meta.name],
        )
    if kind == "date":
        text = str(value)[:10]
        try:
            datetime.strptime(text, "%Y-%m-%d")  # noqa: DTZ007 (a date, no time zone)
        except ValueError:
            raise RecordError(
                "INVALID_TYPE_ON_FIELD_IN_RECORD",
                f"{meta.label}: value not of required type: {value}",
                [meta.name],
            ) from None
        return text
    if kind == "datetime":
        try:
            return parse_datetime_ms(str(value))
        except ValueError:
            raise RecordError(
                "INVALID_TYPE_ON_FIELD_IN_RECORD",
                f"{meta.label}: value not of required type: {value}",
                [meta.name],
            ) from None
    return value


def field_from_metadata(api: str, metadata: Mapping[str, Any]) -> SfField:
    kind = str(metadata.get("type", ""))
    label = str(metadata.get("label") or api[:-3])
    mapping: dict[str, tuple[str, dict[str, Any]]] = {
        "Text": ("string", {"length": int(metadata.get("length") or 0)}),
        "LongTextArea": ("textarea", {"length": int(metadata.get("length") or 0)}),
        "TextArea": ("textarea", {"length": 255}),
        "Number": ("double", {}),
        "Percent": ("percent", {}),
        "Currency": ("currency", {}),
        "Checkbox": ("boolean", {"nillable": False}),
        "Date": ("date", {}),
        "DateTime": ("datetime", {}),
        "Picklist": ("picklist", {}),
        "Url": ("url", {"length": 255}),
    }
    if kind not in mapping:
        raise RecordError("FIELD_INTEGRITY_EXCEPTION", f"unsupported field type {kind!r}")
    sf_type, extra = mapping[kind]
    if kind in ("Text", "LongTextArea") and not extra["length"]:
        raise RecordError("FIELD_INTEGRITY_EXCEPTION", f"{kind} fields need a length")
    if kind in ("Number", "Percent", "Currency"):
        precision = int(metadata.get("precision") or 18)
        scale = int(metadata.get("scale") or 0)
        if scale > precision or precision > 18:
            raise RecordError("FIELD_INTEGRITY_EXCEPTION", "invalid precision or scale")
        extra = {"precision": precision, "scale": scale}
    if kind == "Picklist":
        definition = (metadata.get("valueSet") or {}).get("valueSetDefinition") or {}
        values = tuple(str(v.get("fullName")) for v in definition.get("value", []))
        if not values:
            raise RecordError("FIELD_INTEGRITY_EXCEPTION", "a picklist needs at least one value")
        extra = {
            "values": values,
            "restricted": bool((metadata.get("valueSet") or {}).get("restricted")),
        }
    return SfField(name=api, label=label, type=sf_type, custom=True, **extra)


def writable_value(fields: Mapping[str, SfField], sobject: str, name: str, value: Any) -> Any:
    """A value for a field that a write may set, typed; refused like a real org refuses it.

    Raises:
        RecordError: ``INVALID_FIELD`` (unknown), ``INVALID_FIELD_FOR_INSERT_UPDATE``
            (read-only) or the type check's code.
    """
    meta = fields.get(name)
    if meta is None:
        raise RecordError(
            "INVALID_FIELD", f"No such column '{name}' on sobject of type {sobject}", [name]
        )
    if not meta.updateable:
        raise RecordError(
            "INVALID_FIELD_FOR_INSERT_UPDATE",
            f"Unable to create/update fields: {name}. Please check the security settings of "
            "this field and verify that it is read/write for your profile or permission set.",
            [name],
        )
    return typed_value(meta, value)


def derive_flags(sobject: str, record: dict[str, Any]) -> None:
    """Set the fields an org derives on write (an Opportunity's IsClosed and IsWon)."""
    if sobject == "Opportunity":
        flags = {stage: (closed, won) for stage, closed, won in STAGES}
        record["IsClosed"], record["IsWon"] = flags.get(
            record.get("StageName") or "", (False, False)
        )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@lru_cache(maxsize=8192)
def _day(days: int) -> str:
    return (_EPOCH + timedelta(days=days)).strftime("%Y-%m-%dT")


def format_datetime(ms: int) -> str:
    """Epoch milliseconds as Salesforce writes datetimes: ``2024-01-05T10:00:00.000+0000``."""
    days, rest = divmod(int(ms), 86_400_000)
    seconds, millis = divmod(rest, 1000)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    return f"{_day(days)}{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}+0000"


OUTPUT: dict[str, Callable[[Any], Any]] = {"datetime": format_datetime, "int": int}
"""How a stored value of a field type is served (other types as stored)."""
