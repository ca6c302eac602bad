"""The state of a sandbox Salesforce org: objects, field metadata, records, users, usage.

Records are plain dicts keyed by API field name. Datetimes are stored as epoch
milliseconds (formatted as ``2024-01-05T10:00:00.000+0000`` on the way out), dates as
``YYYY-MM-DD``. Every write is validated against the field metadata the way a real org
does (unknown or read-only fields, restricted picklists, lengths, types) and stamps
``LastModifiedDate``, ``SystemModstamp`` (wall clock, never decreasing) and ``LastModifiedById``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from icp_sync.sandbox.salesforce.replication import Replication
from icp_sync.sandbox.salesforce.schema import (
    OUTPUT,
    RecordError,
    SfField,
    derive_flags,
    field_from_metadata,
    format_datetime,
    standard_objects,
    writable_value,
)
from icp_sync.sandbox.salesforce.soql import Query, SoqlError, columns, evaluate, parse

__all__ = ["RecordError", "SObject", "SalesforceOrg", "SfField", "format_datetime", "make_id"]

_CHECKSUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def make_id(prefix: str, number: int) -> str:
    """An 18-character Salesforce id with its case-safe checksum suffix."""
    body = ""
    value = number
    for _ in range(9):
        body = _BASE62[value % 62] + body
        value //= 62
    base = f"{prefix}5g0{body[-9:]}"[:15]
    suffix = ""
    for chunk in range(3):
        bits = sum(
            1 << i for i, char in enumerate(base[chunk * 5 : chunk * 5 + 5]) if char.isupper()
        )
        suffix += _CHECKSUM[bits]
    return base + suffix


@dataclass(slots=True)
class SObject:
    """One object of the org: key prefix, field metadata, records and recycle-bin log."""

    prefix: str
    fields: dict[str, SfField]
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    custom_ids: dict[str, str] = field(default_factory=dict)
    deleted: list[tuple[str, int]] = field(default_factory=list)


class SalesforceOrg(Replication):
    """An in-memory org. Thread-safe: every public method holds the org lock.

    Args:
        api_version: The newest API version served.
        daily_api_limit: ``DailyApiRequests`` Max.
    """

    def __init__(self, *, api_version: str = "59.0", daily_api_limit: int = 100_000) -> None:
        self.api_version = api_version
        self.daily_api_limit = daily_api_limit
        self.api_used = 0
        self.lock = threading.RLock()
        self.objects = {
            name: SObject(prefix=prefix, fields=fields)
            for name, (prefix, fields) in standard_objects().items()
        }
        self.counter = 0
        self.clock = 0
        self.offset_ms = 0
        """How far the org's clock runs ahead of the wall clock (tests move time forward)."""
        self.retention_days = 15.0
        """How far back getDeleted reaches (``earliestDateAvailable`` = now minus this)."""
        self.integration_user = self.new_user("Integration User", "integration@sandbox.example")
        self.loader_user = self.new_user("Data Migration", "loader@sandbox.example")

    def next_number(self) -> int:
        """A fresh number for an id (ids are unique across the org)."""
        self.counter += 1
        return self.counter

    def now_ms(self) -> int:
        """The org clock in epoch milliseconds: wall time, never going backwards.

        Like a real org's, it does not run ahead of the wall clock: records written in the
        same millisecond share a ``SystemModstamp`` (clients must page with ties in mind).
        """
        with self.lock:
            self.clock = max(int(time.time() * 1000) + self.offset_ms, self.clock)
            return self.clock

    def advance(self, seconds: float) -> int:
        """Move the org's clock forward (as if that much time passed); returns it in ms."""
        with self.lock:
            self.offset_ms += int(seconds * 1000)
        return self.now_ms()

    def new_user(self, name: str, username: str) -> str:
        """Create an active user; returns its id."""
        obj = self.objects["User"]
        user_id = make_id(obj.prefix, self.next_number())
        stamp = int(time.time() * 1000)
        obj.records[user_id] = {
            "Id": user_id,
            "Name": name,
            "Username": username,
            "IsActive": True,
            "Department": None,
            "OwnerId": user_id,
            "CreatedDate": stamp,
            "CreatedById": user_id,
            "LastModifiedDate": stamp,
            "LastModifiedById": user_id,
            "SystemModstamp": stamp,
            "IsDeleted": False,
        }
        return user_id

    def sobjects(self) -> list[str]:
        """Names of the objects the org holds."""
        return list(self.objects)

    def object_fields(self, sobject: str) -> dict[str, SfField]:
        """Field metadata of an object.

        Raises:
            SoqlError: ``INVALID_TYPE`` for an unknown object.
        """
        obj = self.objects.get(sobject) or self._by_casefold(sobject)
        if obj is None:
            raise SoqlError("INVALID_TYPE", f"sObject type '{sobject}' is not supported.")
        return obj.fields

    def _by_casefold(self, sobject: str) -> SObject | None:
        for name, obj in self.objects.items():
            if name.casefold() == sobject.casefold():
                return obj
        return None

    def canonical_name(self, sobject: str) -> str:
        """The object's name as the org spells it."""
        for name in self.objects:
            if name.casefold() == sobject.casefold():
                return name
        raise SoqlError("INVALID_TYPE", f"sObject type '{sobject}' is not supported.")

    def prefix(self, sobject: str) -> str:
        """The 3-character key prefix of an object."""
        return self.objects[self.canonical_name(sobject)].prefix

    def object_of_id(self, record_id: str) -> str | None:
        """Which object an id belongs to (by its prefix)."""
        for name, obj in self.objects.items():
            if record_id.startswith(obj.prefix):
                return name
        return None

    def describe(self, sobject: str) -> dict[str, Any]:
        """The describe document of an object."""
        name = self.canonical_name(sobject)
        with self.lock:
            obj = self.objects[name]
            return {
                "name": name,
                "label": name,
                "keyPrefix": obj.prefix,
                "custom": False,
                "queryable": True,
                "createable": name != "User",
                "updateable": True,
                "deletable": name != "User",
                "fields": [f.describe() for f in obj.fields.values()],
                "childRelationships": [],
                "recordTypeInfos": [],
                "urls": {
                    "sobject": f"/services/data/v{self.api_version}/sobjects/{name}",
                    "describe": f"/services/data/v{self.api_version}/sobjects/{name}/describe",
                },
            }

    def check_query(self, soql: str) -> Query:
        """Parse a query and check its object and fields exist (names as the org spells them).

        Raises:
            SoqlError: ``MALFORMED_QUERY``, ``INVALID_TYPE`` or ``INVALID_FIELD``.
        """
        parsed = parse(soql)
        name = self.canonical_name(parsed.sobject)
        fields = self.object_fields(name)
        lookup = {k.casefold(): k for k in fields}
        for column in columns(parsed):
            if column.casefold() not in lookup:
                raise SoqlError(
                    "INVALID_FIELD",
                    f"\n{soql[:200]}\nERROR at Row:1:Column:1\nNo such column '{column}' on "
                    f"entity '{name}'. If you are attempting to use a custom field, be sure to "
                    "append the '__c' after the custom field name. Please reference your WSDL "
                    "or the describe call for the appropriate names.",
                )
        parsed.sobject = name
        parsed.fields = [lookup[f.casefold()] for f in parsed.fields]
        parsed.order = [(lookup[c.casefold()], d, n) for c, d, n in parsed.order]
        return _renamed(parsed, lookup)

    def query(self, soql: str, *, include_deleted: bool) -> tuple[Query, list[dict[str, Any]]]:
        """Run a query; returns it parsed and the matching records, projected and formatted.

        Raises:
            SoqlError: ``MALFORMED_QUERY``, ``INVALID_TYPE`` or ``INVALID_FIELD``.
        """
        parsed = self.check_query(soql)
        fields = self.object_fields(parsed.sobject)

        def kind_of(column: str) -> str:
            return fields[column].type

        with self.lock:
            records = self.objects[parsed.sobject].records.values()
            pool = [r for r in records if include_deleted or not r["IsDeleted"]]
            rows = evaluate(parsed, pool, kind_of)
            # a conversion only for the few column types that need one, not a call per cell
            out = [(f, OUTPUT.get(fields[f].type)) for f in parsed.fields]
            projected = [
                {f: v if (v := r.get(f)) is None or c is None else c(v) for f, c in out}
                for r in rows
            ]
        return parsed, projected

    def find(self, sobject: str, field_name: str, value: str) -> str | None:
        """The id of the live record whose ``field_name`` equals ``value`` (upsert keys)."""
        name = self.canonical_name(sobject)
        with self.lock:
            for record in self.objects[name].records.values():
                if not record["IsDeleted"] and str(record.get(field_name)) == value:
                    return str(record["Id"])
        return None

    def snapshot(self, sobject: str, record_id: str) -> dict[str, Any] | None:
        """A copy of a record as it is now (for rolling back an all-or-none call)."""
        name = self.canonical_name(sobject)
        with self.lock:
            record = self.objects[name].records.get(record_id)
            return dict(record) if record is not None else None

    def restore(self, undo: list[tuple[str, str, dict[str, Any] | None]]) -> None:
        """Roll back writes: put snapshots back, remove records created (newest first)."""
        with self.lock:
            for sobject, record_id, before in reversed(undo):
                records = self.objects[self.canonical_name(sobject)].records
                if before is None:
                    records.pop(record_id, None)
                else:
                    records[record_id] = before

    def get(
        self, sobject: str, record_id: str, select: Iterable[str] | None = None
    ) -> dict[str, Any]:
        """One record, formatted.

        Raises:
            RecordError: ``NOT_FOUND``.
        """
        name = self.canonical_name(sobject)
        with self.lock:
            obj = self.objects[name]
            record = obj.records.get(record_id) or obj.records.get(_to18(record_id, obj))
            if record is None:
                raise RecordError("NOT_FOUND", "The requested resource does not exist")
            wanted = list(select) if select else list(obj.fields)
            return {f: _out(obj.fields[f], record.get(f)) for f in wanted if f in obj.fields}

    def update(
        self,
        sobject: str,
        record_id: str,
        values: Mapping[str, Any],
        *,
        user: str,
        stamp: int | None = None,
    ) -> None:
        """Validate and apply field values to an existing record.

        ``stamp`` (epoch ms) back-dates the ``SystemModstamp``, as a transaction that
        commits long after it started appears to readers.

        Raises:
            RecordError: ``ENTITY_IS_DELETED``, ``INVALID_CROSS_REFERENCE_KEY`` (unknown id) or a
                field validation code.
        """
        name = self.canonical_name(sobject)
        with self.lock:
            obj = self.objects[name]
            record = obj.records.get(record_id)
            if record is None:
                raise RecordError(
                    "INVALID_CROSS_REFERENCE_KEY",
                    f"invalid cross reference id: {record_id}",
                    ["Id"],
                )
            if record["IsDeleted"]:
                raise RecordError("ENTITY_IS_DELETED", "entity is deleted")
            clean = {
                k: writable_value(obj.fields, name, k, v)
                for k, v in values.items()
                if k not in ("Id", "attributes")
            }
            record.update(clean)
            derive_flags(name, record)
            self._stamp(record, user, stamp)

    def insert(self, sobject: str, values: Mapping[str, Any], *, user: str) -> str:
        """Validate and create a record; returns its id.

        Raises:
            RecordError: A field validation code or ``REQUIRED_FIELD_MISSING``.
        """
        name = self.canonical_name(sobject)
        with self.lock:
            obj = self.objects[name]
            clean = {
                k: writable_value(obj.fields, name, k, v)
                for k, v in values.items()
                if k != "attributes"
            }
            for meta in obj.fields.values():
                if meta.default is not None and clean.get(meta.name) is None:
                    clean[meta.name] = meta.default
            missing = [
                f.name
                for f in obj.fields.values()
                if not f.nillable and f.updateable and clean.get(f.name) is None
            ]
            if missing:
                raise RecordError(
                    "REQUIRED_FIELD_MISSING",
                    f"Required fields are missing: [{', '.join(missing)}]",
                    missing,
                )
            record_id = make_id(obj.prefix, self.next_number())
            stamp = self.now_ms()
            record = dict.fromkeys(obj.fields) | clean
            record |= {
                "Id": record_id,
                "CreatedDate": stamp,
                "CreatedById": user,
                "IsDeleted": False,
            }
            record.setdefault("OwnerId", user)
            if record.get("OwnerId") is None:
                record["OwnerId"] = user
            derive_flags(name, record)
            self._stamp(record, user, stamp)
            obj.records[record_id] = record
            return record_id

    def delete(self, sobject: str, record_id: str, *, user: str) -> None:
        """Move a record to the recycle bin (``IsDeleted``; logged for getDeleted).

        Raises:
            RecordError: ``ENTITY_IS_DELETED`` or ``NOT_FOUND``.
        """
        name = self.canonical_name(sobject)
        with self.lock:
            obj = self.objects[name]
            record = obj.records.get(record_id)
            if record is None:
                raise RecordError("NOT_FOUND", "The requested resource does not exist")
            if record["IsDeleted"]:
                raise RecordError("ENTITY_IS_DELETED", "entity is deleted")
            record["IsDeleted"] = True
            self._stamp(record, user)
            obj.deleted.append((record_id, record["SystemModstamp"]))

    def _stamp(self, record: dict[str, Any], user: str, stamp: int | None = None) -> None:
        moment = stamp if stamp is not None else self.now_ms()
        record["LastModifiedDate"] = moment
        record["SystemModstamp"] = moment
        record["LastModifiedById"] = user

    def add_field(self, full_name: str, metadata: Mapping[str, Any]) -> str:
        """Create a custom field from Tooling API ``CustomField`` metadata; returns its id.

        Raises:
            RecordError: ``DUPLICATE_DEVELOPER_NAME``, ``FIELD_INTEGRITY_EXCEPTION`` (bad
                metadata) or ``INVALID_TYPE``.
        """
        sobject, _, api = full_name.partition(".")
        if not api.endswith("__c") or not api[:-3].replace("_", "").isalnum():
            raise RecordError(
                "FIELD_INTEGRITY_EXCEPTION", f"invalid custom field name {full_name!r}"
            )
        try:
            name = self.canonical_name(sobject)
        except SoqlError as exc:
            raise RecordError("INVALID_TYPE", str(exc)) from None
        with self.lock:
            obj = self.objects[name]
            if api in obj.fields:
                raise RecordError(
                    "DUPLICATE_DEVELOPER_NAME",
                    f"There is already a field named {api[:-3]} on {name}.",
                )
            meta = field_from_metadata(api, metadata)
            obj.fields[api] = meta
            for record in obj.records.values():
                record.setdefault(api, False if meta.type == "boolean" else None)
            field_id = make_id("00N", self.next_number())
            obj.custom_ids[api] = field_id
            return field_id

    def custom_fields(self, sobject: str | None = None) -> list[dict[str, Any]]:
        """Tooling ``CustomField`` rows: Id, DeveloperName, TableEnumOrId, FullName."""
        rows = []
        with self.lock:
            for name, obj in self.objects.items():
                if sobject and name.casefold() != sobject.casefold():
                    continue
                for api, meta in obj.fields.items():
                    if meta.custom:
                        field_id = obj.custom_ids.setdefault(
                            api, make_id("00N", self.next_number())
                        )
                        rows.append(
                            {
                                "Id": field_id,
                                "DeveloperName": api[:-3],
                                "TableEnumOrId": name,
                                "FullName": f"{name}.{api}",
                            }
                        )
        return rows

    def limits(self) -> dict[str, Any]:
        """The ``/limits`` document."""
        used = min(self.api_used, self.daily_api_limit)
        return {
            "DailyApiRequests": {
                "Max": self.daily_api_limit,
                "Remaining": self.daily_api_limit - used,
            },
            "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
            "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000},
            "DailyBulkV2QueryFileStorageMB": {"Max": 976562, "Remaining": 976562},
            "ConcurrentAsyncGetReportInstances": {"Max": 200, "Remaining": 200},
            "DataStorageMB": {"Max": 5120, "Remaining": 5000},
        }


def _renamed(query: Query, lookup: Mapping[str, str]) -> Query:
    def walk(node: Any) -> Any:
        if node is None:
            return None
        if node[0] in ("and", "or"):
            return (node[0], walk(node[1]), walk(node[2]))
        if node[0] == "not":
            return ("not", walk(node[1]))
        return (node[0], lookup[node[1].casefold()], *node[2:])

    return replace(query, where=walk(query.where))


def _to18(record_id: str, obj: SObject) -> str:
    if len(record_id) != 15:
        return record_id
    for key in obj.records:
        if key.startswith(record_id):
            return key
    return record_id


def _out(meta: SfField, value: Any) -> Any:
    convert = OUTPUT.get(meta.type)
    return value if value is None or convert is None else convert(value)
