"""The state of a sandbox HubSpot portal: companies, deals, properties, associations, owners.

Records keep every property as a string (or null), as the HubSpot API returns them.
Writes are checked against the property definitions the way HubSpot does: unknown
properties, calculated (read-only) ones, enumeration options, numbers, booleans, dates.
Every write moves ``hs_lastmodifieddate`` / ``updatedAt`` (strictly increasing).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from icp_sync.sandbox.hubspot.properties import (
    STAGES,
    PropertyError,
    default_properties,
    derive_deal,
    iso_ms,
    parse_moment,
    stored_value,
)

__all__ = ["OBJECTS", "TASK_TO_DEAL", "HubSpotPortal", "Record", "record_json"]

OBJECTS = {"companies": "0-2", "deals": "0-3", "tasks": "0-27"}

TASK_TO_DEAL = 216
"""HubSpot's default association type id of a task to a deal."""


@dataclass(slots=True)
class Record:
    """A company or deal: id, property strings, created / updated times, archive state."""

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
        self.properties = default_properties()
        stamp = int(time.time() * 1000)
        for definitions in self.properties.values():
            for definition in definitions.values():
                definition.created_at = definition.updated_at = stamp
        self.groups: dict[str, dict[str, dict[str, Any]]] = {
            "companies": {
                "companyinformation": {"label": "Company information", "displayOrder": 0}
            },
            "deals": {"dealinformation": {"label": "Deal information", "displayOrder": 0}},
            "tasks": {"task_information": {"label": "Task information", "displayOrder": 0}},
        }
        self.records: dict[str, dict[str, Record]] = {"companies": {}, "deals": {}, "tasks": {}}
        self.deal_company: dict[str, str] = {}
        self.task_deals: dict[str, set[str]] = {}
        """Task id -> the deals it is associated with (type 216)."""
        self.company_deals: dict[str, set[str]] = {}
        self.owners: list[dict[str, Any]] = []
        self.counter = 1000
        self.clock = 0

    def now_ms(self) -> int:
        """The portal clock in epoch milliseconds: the wall clock, never going backwards."""
        with self.lock:
            self.clock = max(int(time.time() * 1000), self.clock)  # wall clock, never backwards
            return self.clock

    def new_id(self) -> str:
        """A fresh record or owner id."""
        self.counter += 1
        return str(self.counter)

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

    def record(self, kind: str, record_id: str, *, archived: bool = False) -> Record | None:
        """A record by id (archived ones only when asked)."""
        found = self.records[kind].get(record_id)
        if found is None or found.archived != archived:
            return None
        return found

    def find(self, kind: str, prop: str, value: str) -> Record | None:
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
            out[name] = stored_value(definition, value)
        return out

    def write(self, kind: str, record_id: str | None, values: Mapping[str, str | None]) -> Record:
        """Create (``record_id`` None) or update a record with checked values."""
        with self.lock:
            stamp = self.now_ms()
            if record_id is None:
                new_id = self.new_id()
                created = values.get("createdate")
                created_ms = parse_moment(created) if created else stamp
                record = Record(
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
                derive_deal(record.properties)
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
        return STAGES


def record_json(record: Record, properties: Iterable[str] | None) -> dict[str, Any]:
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
