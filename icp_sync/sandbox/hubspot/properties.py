"""HubSpot property definitions of the sandbox portal: defaults, deal stages, value checks.

A written value is checked against its definition and stored as a string, the way the API
returns it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "OPEN_STAGES",
    "STAGES",
    "PropertyDef",
    "PropertyError",
    "default_properties",
    "derive_deal",
    "iso_ms",
    "parse_moment",
    "stored_value",
]


STAGES = (
    ("appointmentscheduled", "Appointment Scheduled", 0.2, False),
    ("qualifiedtobuy", "Qualified To Buy", 0.4, False),
    ("presentationscheduled", "Presentation Scheduled", 0.6, False),
    ("decisionmakerboughtin", "Decision Maker Bought-In", 0.8, False),
    ("contractsent", "Contract Sent", 0.9, False),
    ("closedwon", "Closed Won", 1.0, True),
    ("closedlost", "Closed Lost", 0.0, True),
)


OPEN_STAGES = tuple(s[0] for s in STAGES if not s[3])


class PropertyError(Exception):
    """A property value HubSpot would refuse: its error code, property and message."""

    def __init__(self, code: str, name: str, message: str) -> None:
        self.code = code
        self.name = name
        self.message = message
        super().__init__(message)


@dataclass(slots=True)
class PropertyDef:
    """A property definition, as the properties API describes it."""

    name: str
    label: str
    type: str
    field_type: str
    group_name: str
    description: str = ""
    options: list[dict[str, Any]] = field(default_factory=list)
    calculated: bool = False
    has_unique_value: bool = False
    hidden: bool = False
    display_order: int = -1
    created_at: int = 0
    updated_at: int = 0
    archived: bool = False
    hubspot_defined: bool = False

    def describe(self) -> dict[str, Any]:
        """The API form (camelCase)."""
        return {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "fieldType": self.field_type,
            "groupName": self.group_name,
            "description": self.description,
            "options": [
                {
                    "label": o["label"],
                    "value": o["value"],
                    "hidden": bool(o.get("hidden", False)),
                    "displayOrder": o.get("displayOrder", i),
                    "description": o.get("description", ""),
                }
                for i, o in enumerate(self.options)
            ],
            "calculated": self.calculated,
            "hasUniqueValue": self.has_unique_value,
            "hidden": self.hidden,
            "displayOrder": self.display_order,
            "formField": False,
            "createdAt": iso_ms(self.created_at),
            "updatedAt": iso_ms(self.updated_at),
            "archived": self.archived,
            "hubspotDefined": self.hubspot_defined,
            "modificationMetadata": {
                "archivable": not self.hubspot_defined,
                "readOnlyDefinition": self.hubspot_defined,
                "readOnlyValue": self.calculated,
            },
        }


def iso_ms(ms: int | None) -> str | None:
    """Epoch milliseconds as ``2024-01-05T10:00:00.000Z``."""
    if ms is None:
        return None
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def parse_moment(value: str) -> int:
    """Epoch milliseconds from an epoch-ms string or an ISO date / datetime."""
    text = value.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    if len(text) == 10:
        text += "T00:00:00Z"
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _p(name: str, label: str, kind: str, field_type: str, group: str, **extra: Any) -> PropertyDef:
    return PropertyDef(
        name=name,
        label=label,
        type=kind,
        field_type=field_type,
        group_name=group,
        hubspot_defined=extra.pop("hubspot_defined", True),
        **extra,
    )


def _options(*values: tuple[str, str]) -> list[dict[str, Any]]:
    return [{"value": v, "label": label, "hidden": False} for v, label in values]


def default_properties() -> dict[str, dict[str, PropertyDef]]:
    """The properties a new portal has on companies, deals and tasks, by name."""
    company = "companyinformation"
    deal = "dealinformation"
    system = [
        ("createdate", "Create Date", "datetime", "date", False),
        ("hs_lastmodifieddate", "Last Modified Date", "datetime", "date", True),
        ("hs_object_id", "Record ID", "number", "number", True),
        ("hubspot_owner_id", "Owner", "string", "text", False),
    ]
    companies = [
        _p(n, label, t, ft, company, calculated=calc) for n, label, t, ft, calc in system
    ] + [
        _p("name", "Company name", "string", "text", company),
        _p("domain", "Company Domain Name", "string", "text", company),
        _p("industry", "Industry", "string", "text", company),
        _p("numberofemployees", "Number of Employees", "number", "number", company),
        _p("annualrevenue", "Annual Revenue", "number", "number", company),
        _p("country", "Country/Region", "string", "text", company),
        _p(
            "lifecyclestage",
            "Lifecycle Stage",
            "enumeration",
            "radio",
            company,
            options=_options(
                ("subscriber", "Subscriber"),
                ("lead", "Lead"),
                ("opportunity", "Opportunity"),
                ("customer", "Customer"),
                ("other", "Other"),
            ),
        ),
        _p(
            "hs_ideal_customer_profile",
            "Ideal Customer Profile Tier",
            "enumeration",
            "radio",
            company,
            options=_options(("tier_1", "Tier 1"), ("tier_2", "Tier 2"), ("tier_3", "Tier 3")),
        ),
        _p(
            "hs_is_target_account",
            "Target Account",
            "bool",
            "booleancheckbox",
            company,
            options=_options(("true", "True"), ("false", "False")),
        ),
        _p("salesforceaccountid", "Salesforce Account ID", "string", "text", company),
        _p("tech_stack", "Tech Stack", "string", "text", company, hubspot_defined=False),
        _p("customer_since", "Customer Since", "date", "date", company, hubspot_defined=False),
        _p("churn_date", "Churn Date", "date", "date", company, hubspot_defined=False),
        _p("arr", "ARR", "number", "number", company, hubspot_defined=False),
        _p("nps", "NPS", "number", "number", company, hubspot_defined=False),
        _p("adoption", "Adoption", "number", "number", company, hubspot_defined=False),
    ]
    deals = [_p(n, label, t, ft, deal, calculated=calc) for n, label, t, ft, calc in system] + [
        _p("dealname", "Deal Name", "string", "text", deal),
        _p(
            "dealstage",
            "Deal Stage",
            "enumeration",
            "radio",
            deal,
            options=_options(*((s[0], s[1]) for s in STAGES)),
        ),
        _p(
            "pipeline",
            "Pipeline",
            "enumeration",
            "select",
            deal,
            options=_options(("default", "Sales Pipeline")),
        ),
        _p("amount", "Amount", "number", "number", deal),
        _p("closedate", "Close Date", "datetime", "date", deal),
        _p(
            "dealtype",
            "Deal Type",
            "enumeration",
            "radio",
            deal,
            options=_options(
                ("newbusiness", "New Business"),
                ("existingbusiness", "Existing Business"),
                ("renewal", "Renewal"),
            ),
        ),
        _p(
            "hs_is_closed",
            "Is Closed",
            "bool",
            "booleancheckbox",
            deal,
            calculated=True,
            options=_options(("true", "True"), ("false", "False")),
        ),
        _p(
            "hs_is_closed_won",
            "Is Closed Won",
            "bool",
            "booleancheckbox",
            deal,
            calculated=True,
            options=_options(("true", "True"), ("false", "False")),
        ),
        _p(
            "deal_source",
            "Deal Source",
            "enumeration",
            "select",
            deal,
            hubspot_defined=False,
            options=_options(
                ("Inbound", "Inbound"),
                ("Outbound", "Outbound"),
                ("Partner", "Partner"),
                ("Other", "Other"),
            ),
        ),
    ]
    task = "task_information"
    tasks = [_p(n, label, t, ft, task, calculated=calc) for n, label, t, ft, calc in system] + [
        _p("hs_task_subject", "Task Title", "string", "text", task),
        _p("hs_task_body", "Task Notes", "string", "textarea", task),
        _p("hs_timestamp", "Due date", "datetime", "date", task),
        _p(
            "hs_task_status",
            "Task Status",
            "enumeration",
            "select",
            task,
            options=_options(
                ("NOT_STARTED", "Not started"),
                ("IN_PROGRESS", "In progress"),
                ("WAITING", "Waiting"),
                ("COMPLETED", "Completed"),
                ("DEFERRED", "Deferred"),
            ),
        ),
        _p(
            "hs_task_priority",
            "Priority",
            "enumeration",
            "select",
            task,
            options=_options(
                ("NONE", "None"), ("LOW", "Low"), ("MEDIUM", "Medium"), ("HIGH", "High")
            ),
        ),
    ]
    return {
        "companies": {p.name: p for p in companies},
        "deals": {p.name: p for p in deals},
        "tasks": {p.name: p for p in tasks},
    }


def derive_deal(properties: dict[str, str | None]) -> None:
    """Set the properties HubSpot derives from a deal's stage (closed, closed won)."""
    stage = properties.get("dealstage") or ""
    closed = {s[0]: s[3] for s in STAGES}.get(stage, False)
    properties["hs_is_closed"] = "true" if closed else "false"
    properties["hs_is_closed_won"] = "true" if stage == "closedwon" else "false"


def stored_value(definition: PropertyDef, value: Any) -> str | None:  # noqa: PLR0911 (one return per type)
    """A value as the portal stores it (a string or None), checked against its definition.

    Raises:
        PropertyError: ``INVALID_OPTION``, ``INVALID_INTEGER``, ``INVALID_BOOLEAN`` or
            ``INVALID_DATE``.
    """
    if value is None or value == "":
        return None
    text = str(value).strip() if not isinstance(value, bool) else ("true" if value else "false")
    kind = definition.type
    if kind == "enumeration" or (kind == "bool" and definition.options):
        allowed = [o["value"] for o in definition.options]
        if kind == "bool":
            text = text.lower()
        values = text.split(";") if definition.field_type == "checkbox" else [text]
        bad = [v for v in values if v not in allowed]
        if bad:
            raise PropertyError(
                "INVALID_OPTION",
                definition.name,
                f"{bad[0]} was not one of the allowed options: {allowed}",
            )
        return text
    if kind == "number":
        try:
            number = float(text)
        except ValueError:
            raise PropertyError(
                "INVALID_INTEGER", definition.name, f"{text} was not a valid number"
            ) from None
        return str(int(number)) if number.is_integer() else repr(number)
    if kind == "bool":
        if text.lower() not in ("true", "false"):
            raise PropertyError(
                "INVALID_BOOLEAN", definition.name, f"{text} was not a valid boolean"
            )
        return text.lower()
    if kind in ("date", "datetime"):
        try:
            ms = parse_moment(text)
        except ValueError:
            raise PropertyError(
                "INVALID_DATE", definition.name, f"{text} was not a valid date"
            ) from None
        if kind == "date":
            if ms % 86_400_000:
                raise PropertyError(
                    "INVALID_DATE", definition.name, f"{text} is not at midnight UTC"
                )
            return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d")
        return iso_ms(ms)
    return text
