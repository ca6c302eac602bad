"""The state of a sandbox HubSpot portal: companies, deals, properties, associations, owners.

Records keep every property as a string (or null), as the HubSpot API returns them.
Writes are checked against the property definitions the way HubSpot does: unknown
properties, calculated (read-only) ones, enumeration options, numbers, booleans, dates.
Every write moves ``hs_lastmodifieddate`` / ``updatedAt`` (strictly increasing).
"""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["HubSpotPortal", "PropertyDef", "PropertyError", "iso_ms", "parse_moment", "record_json"]

OBJECTS = {"companies": "0-2", "deals": "0-3"}
_STAGES = (
    ("appointmentscheduled", "Appointment Scheduled", 0.2, False),
    ("qualifiedtobuy", "Qualified To Buy", 0.4, False),
    ("presentationscheduled", "Presentation Scheduled", 0.6, False),
    ("decisionmakerboughtin", "Decision Maker Bought-In", 0.8, False),
    ("contractsent", "Contract Sent", 0.9, False),
    ("closedwon", "Closed Won", 1.0, True),
    ("closedlost", "Closed Lost", 0.0, True),
)
OPEN_STAGES = tuple(s[0] for s in _STAGES if not s[3])


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


def _default_properties() -> dict[str, dict[str, PropertyDef]]:
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
            options=_options(*((s[0], s[1]) for s in _STAGES)),
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
    return {"companies": {p.name: p for p in companies}, "deals": {p.name: p for p in deals}}


@dataclass(slots=True)
class _Record:
    id: str
    properties: dict[str, str | None]
    created: int
    updated: int
    archived: bool = False
    archived_at: int | None = None


class HubSpotPortal:
    """An in-memory portal. Thread-safe: every public method holds the portal lock."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.properties = _default_properties()
        stamp = int(time.time() * 1000)
        for definitions in self.properties.values():
            for definition in definitions.values():
                definition.created_at = definition.updated_at = stamp
        self.groups: dict[str, dict[str, dict[str, Any]]] = {
            "companies": {
                "companyinformation": {"label": "Company information", "displayOrder": 0}
            },
            "deals": {"dealinformation": {"label": "Deal information", "displayOrder": 0}},
        }
        self.records: dict[str, dict[str, _Record]] = {"companies": {}, "deals": {}}
        self.deal_company: dict[str, str] = {}
        self.company_deals: dict[str, set[str]] = {}
        self.owners: list[dict[str, Any]] = []
        self._counter = 1000
        self._clock = 0

    def now_ms(self) -> int:
        """The portal clock in epoch milliseconds: the wall clock, never going backwards."""
        with self.lock:
            self._clock = max(int(time.time() * 1000), self._clock)  # wall clock, never backwards
            return self._clock

    def _new_id(self) -> str:
        self._counter += 1
        return str(self._counter)

    @staticmethod
    def kind(object_type: str) -> str:
        """``companies`` / ``deals`` from either spelling (``0-2`` / ``0-3``).

        Raises:
            KeyError: Any other object type.
        """
        for name, code in OBJECTS.items():
            if object_type in (name, code):
                return name
        raise KeyError(object_type)

    def record(self, kind: str, record_id: str, *, archived: bool = False) -> _Record | None:
        """A record by id (archived ones only when asked)."""
        found = self.records[kind].get(record_id)
        if found is None or found.archived != archived:
            return None
        return found

    def find(self, kind: str, prop: str, value: str) -> _Record | None:
        """The live record whose ``prop`` equals ``value``."""
        for record in self.records[kind].values():
            if not record.archived and record.properties.get(prop) == value:
                return record
        return None

    def checked(
        self, kind: str, values: Mapping[str, Any], *, creating: bool = False
    ) -> dict[str, str | None]:
        """Property values as stored strings.

        Raises:
            PropertyError: The first value HubSpot would refuse.
        """
        definitions = self.properties[kind]
        out: dict[str, str | None] = {}
        for name, value in values.items():
            definition = definitions.get(name)
            if definition is None or definition.archived:
                raise PropertyError(
                    "PROPERTY_DOESNT_EXIST", name, f'Property "{name}" does not exist'
                )
            if definition.calculated and not (creating and name == "createdate"):
                raise PropertyError(
                    "READ_ONLY_VALUE",
                    name,
                    f'Property "{name}" is a read only property; its value cannot be set.',
                )
            out[name] = _stored(definition, value)
        return out

    def write(self, kind: str, record_id: str | None, values: Mapping[str, str | None]) -> _Record:
        """Create (``record_id`` None) or update a record with checked values."""
        with self.lock:
            stamp = self.now_ms()
            if record_id is None:
                new_id = self._new_id()
                created = values.get("createdate")
                created_ms = parse_moment(created) if created else stamp
                record = _Record(
                    id=new_id,
                    properties=dict.fromkeys(self.properties[kind]) | dict(values),
                    created=created_ms,
                    updated=stamp,
                )
                record.properties["hs_object_id"] = new_id
                record.properties["createdate"] = iso_ms(created_ms)
                self.records[kind][new_id] = record
            else:
                record = self.records[kind][record_id]
                record.properties.update(values)
                record.updated = stamp
            record.properties["hs_lastmodifieddate"] = iso_ms(stamp)
            if kind == "deals":
                _derive_deal(record.properties)
            return record

    def archive(self, kind: str, record_id: str) -> bool:
        """Archive a record; False when there is no live record with that id."""
        with self.lock:
            record = self.records[kind].get(record_id)
            if record is None or record.archived:
                return False
            record.archived = True
            record.archived_at = self.now_ms()
            return True

    def associate(self, deal_id: str, company_id: str) -> None:
        """The default deal -> company association (one company per deal)."""
        with self.lock:
            previous = self.deal_company.get(deal_id)
            if previous is not None:
                self.company_deals.get(previous, set()).discard(deal_id)
            self.deal_company[deal_id] = company_id
            self.company_deals.setdefault(company_id, set()).add(deal_id)

    def dissociate(self, deal_id: str, company_id: str) -> None:
        """Remove a deal -> company association."""
        with self.lock:
            if self.deal_company.get(deal_id) == company_id:
                del self.deal_company[deal_id]
                self.company_deals.get(company_id, set()).discard(deal_id)

    def associated(self, kind: str, record_id: str) -> list[str]:
        """Ids associated with a record (its company, or its deals)."""
        with self.lock:
            if kind == "deals":
                company = self.deal_company.get(record_id)
                return [company] if company else []
            return sorted(self.company_deals.get(record_id, set()), key=int)

    def stages(self) -> tuple[tuple[str, str, float, bool], ...]:
        """The default pipeline's stages: id, label, probability, closed."""
        return _STAGES

    def load_canonical(
        self,
        accounts: pd.DataFrame,
        opportunities: pd.DataFrame,
        owners: pd.DataFrame | None = None,
    ) -> dict[str, str]:
        """Load canonical frames as companies, deals (associated) and owners.

        Returns:
            Canonical id (account, opportunity, owner) -> HubSpot id.
        """
        from icp_sync.sandbox.hubspot.load import company_values, deal_values

        with self.lock:
            ids: dict[str, str] = {}
            stamp = int(time.time() * 1000)
            if owners is not None:
                for row in owners.itertuples(index=False):
                    owner_id = self._new_id()
                    first, _, last = str(row.name).partition(" ")
                    self.owners.append(
                        {
                            "id": owner_id,
                            "email": f"{str(row.owner_id).lower()}@sandbox.example",
                            "firstName": first,
                            "lastName": last,
                            "userId": int(owner_id),
                            "type": "PERSON",
                            "createdAt": iso_ms(stamp),
                            "updatedAt": iso_ms(stamp),
                            "archived": False,
                            "teams": [
                                {
                                    "id": str(abs(hash(row.team)) % 10_000),
                                    "name": str(row.team),
                                    "primary": True,
                                }
                            ],
                        }
                    )
                    ids[str(row.owner_id)] = owner_id
            self._load("companies", accounts, "account_id", ids, company_values(accounts, ids))
            self._load(
                "deals", opportunities, "opportunity_id", ids, deal_values(opportunities, ids)
            )
            for deal, account in zip(
                opportunities["opportunity_id"].astype(str),
                opportunities["account_id"].astype(str),
                strict=True,
            ):
                company = ids.get(account)
                if company is not None:
                    self.deal_company[ids[deal]] = company
                    self.company_deals.setdefault(company, set()).add(ids[deal])
            return ids

    def _load(
        self,
        kind: str,
        frame: pd.DataFrame,
        id_column: str,
        ids: dict[str, str],
        values: dict[str, Any],
    ) -> None:
        created = values.pop("_created")
        updated = values.pop("_updated")
        deleted = values.pop("_deleted")
        columns = {name: np.asarray(array).tolist() for name, array in values.items()}
        empty = dict.fromkeys(self.properties[kind])
        for position, source in enumerate(frame[id_column].astype(str)):
            new_id = self._new_id()
            ids[source] = new_id
            properties = empty | {n: column[position] for n, column in columns.items()}
            properties["hs_object_id"] = new_id
            record = _Record(
                id=new_id,
                properties=properties,
                created=int(created[position]),
                updated=int(updated[position]),
                archived=bool(deleted[position]),
                archived_at=int(updated[position]) if deleted[position] else None,
            )
            self.records[kind][new_id] = record
            self._clock = max(self._clock, record.updated)

    def save(self, path: Path) -> None:
        """Persist the portal to a gzipped JSON file."""
        with self.lock:
            document = {
                "counter": self._counter,
                "clock": self._clock,
                "properties": {
                    k: [asdict(p) for p in v.values()] for k, v in self.properties.items()
                },
                "groups": self.groups,
                "records": {k: [asdict(r) for r in v.values()] for k, v in self.records.items()},
                "deal_company": self.deal_company,
                "owners": self.owners,
            }
        temporary = path.with_suffix(path.suffix + ".tmp")
        with gzip.open(temporary, "wt", encoding="utf-8") as out:
            json.dump(document, out)
        temporary.replace(path)

    @classmethod
    def load(cls, path: Path) -> HubSpotPortal:
        """Read a portal saved with :meth:`save`."""
        with gzip.open(path, "rt", encoding="utf-8") as source:
            document = json.load(source)
        portal = cls()
        portal._counter = document["counter"]
        portal._clock = document["clock"]
        portal.properties = {
            k: {p["name"]: PropertyDef(**p) for p in v} for k, v in document["properties"].items()
        }
        portal.groups = document["groups"]
        portal.records = {
            k: {r["id"]: _Record(**r) for r in v} for k, v in document["records"].items()
        }
        portal.owners = document["owners"]
        for deal, company in document["deal_company"].items():
            portal.associate(deal, company)
        return portal


def _derive_deal(properties: dict[str, str | None]) -> None:
    stage = properties.get("dealstage") or ""
    closed = {s[0]: s[3] for s in _STAGES}.get(stage, False)
    properties["hs_is_closed"] = "true" if closed else "false"
    properties["hs_is_closed_won"] = "true" if stage == "closedwon" else "false"


def _stored(definition: PropertyDef, value: Any) -> str | None:  # noqa: PLR0911 (one return per type)
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


def record_json(record: _Record, properties: Iterable[str] | None) -> dict[str, Any]:
    """The API form of a record with the requested properties (missing ones omitted)."""
    wanted = list(properties) if properties is not None else _DEFAULT_SHOWN
    shown = {p: record.properties.get(p) for p in wanted if p in record.properties}
    shown.setdefault("hs_object_id", record.id)
    shown.setdefault("createdate", record.properties.get("createdate"))
    shown.setdefault("hs_lastmodifieddate", record.properties.get("hs_lastmodifieddate"))
    body: dict[str, Any] = {
        "id": record.id,
        "properties": shown,
        "createdAt": iso_ms(record.created),
        "updatedAt": iso_ms(record.updated),
        "archived": record.archived,
    }
    if record.archived:
        body["archivedAt"] = iso_ms(record.archived_at)
    return body


_DEFAULT_SHOWN = [
    "createdate",
    "hs_lastmodifieddate",
    "hs_object_id",
    "name",
    "domain",
    "dealname",
    "amount",
    "dealstage",
    "pipeline",
    "closedate",
]
