"""HubSpot metadata: which properties exist, deal stages as open / won / lost, setup-fields.

The property lists and the deal pipelines change rarely, and reading them every cycle would
cost calls a no-change cycle should not make: they are kept in the connector state and read
again after ``metadata_ttl_hours`` (or at once after ``setup-fields``). ``setup-fields``
creates the ``icp_sync`` property group and every owned property (from
:data:`icp_sync.model.OWNED_FIELDS`) that is missing, on companies and deals (the deals'
compliance properties the monitor writes, and the waiver properties it reads), each under
its configured name; it is idempotent and has a dry run.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.base import ConnectorState, FieldSetup
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.config import HubSpotConfig
from icp_sync.errors import FatalConnectorError
from icp_sync.model import OWNED_FIELDS, Access, CrmObject, FieldKind, OwnedField

__all__ = ["GROUP", "KIND", "NATIVE_TAL", "NATIVE_TIER", "Metadata", "property_spec"]

GROUP = "icp_sync"
KIND = {CrmObject.ACCOUNT: "companies", CrmObject.OPPORTUNITY: "deals"}
NATIVE_TIER = "hs_ideal_customer_profile"
NATIVE_TAL = "hs_is_target_account"
_CLOSED_WON = ("closedwon",)


def property_spec(field: OwnedField) -> dict[str, Any]:
    """The ``PropertyCreate`` fields (snake_case) of an owned field."""
    kinds = {
        FieldKind.PICKLIST: ("enumeration", "select"),
        FieldKind.NUMBER: ("number", "number"),
        FieldKind.TEXT: ("string", "text"),
        FieldKind.LONG_TEXT: ("string", "textarea"),
        FieldKind.CHECKBOX: ("bool", "booleancheckbox"),
        FieldKind.DATETIME: ("datetime", "date"),
    }
    kind, field_type = kinds[field.kind]
    spec: dict[str, Any] = {
        "name": field.hubspot,
        "label": field.label,
        "type": kind,
        "field_type": field_type,
        "group_name": GROUP,
        "description": field.description or f"{field.label} (managed by icp-sync)",
    }
    if field.kind is FieldKind.PICKLIST:
        spec["options"] = [
            {"label": v, "value": v, "display_order": i, "hidden": False}
            for i, v in enumerate(field.values)
        ]
    if field.kind is FieldKind.CHECKBOX:
        spec["options"] = [
            {"label": "Yes", "value": "true", "display_order": 0, "hidden": False},
            {"label": "No", "value": "false", "display_order": 1, "hidden": False},
        ]
    return spec


class Metadata:
    """Properties and deal stages of the portal, cached in the connector state."""

    def __init__(self, client: HubSpotClient, config: HubSpotConfig, state: ConnectorState):
        self._client = client
        self._config = config
        self._state = state

    def _cache(self) -> dict[str, Any]:
        cached: dict[str, Any] = self._state.load().get("metadata") or {}
        fetched = cached.get("fetched_at")
        ttl = timedelta(hours=self._config.metadata_ttl_hours)
        if fetched and datetime.fromisoformat(fetched) + ttl > datetime.now(UTC):
            return cached
        cached = {
            "fetched_at": datetime.now(UTC).isoformat(),
            "properties": {
                kind: sorted(str(p["name"]) for p in self._client.properties(kind))
                for kind in ("companies", "deals")
            },
            "stages": self._read_stages(),
        }
        state = self._state.load()
        state["metadata"] = cached
        self._state.save(state)
        return cached

    def forget(self) -> None:
        """Drop the cached metadata (read again on next use)."""
        state = self._state.load()
        state.pop("metadata", None)
        self._state.save(state)

    def existing(self, kind: str) -> set[str]:
        """Names of the object's properties."""
        return set(self._cache()["properties"].get(kind, []))

    def stages(self) -> dict[str, str]:
        """Deal stage id -> ``open`` / ``won`` / ``lost`` (config overrides the pipelines)."""
        return {**self._cache()["stages"], **self._config.stages}

    def _read_stages(self) -> dict[str, str]:
        stages: dict[str, str] = {}
        for pipeline in self._client.pipelines("deals"):
            for stage in pipeline.get("stages") or []:
                meta = stage.get("metadata") or {}
                closed = str(meta.get("isClosed", "false")).lower() == "true"
                probability = meta.get("probability")
                won = closed and (
                    str(stage.get("id")) in _CLOSED_WON
                    or (probability is not None and float(probability) >= 1.0)
                )
                stages[str(stage.get("id"))] = "won" if won else "lost" if closed else "open"
        return stages

    def mapping(self, obj: CrmObject) -> dict[str, str]:
        """Owned written field -> property name on ``obj`` (companies, or deals)."""
        fields = self._config.fields
        return fields.writeback if obj is CrmObject.ACCOUNT else fields.deal_writeback

    def writable(self, obj: CrmObject = CrmObject.ACCOUNT) -> dict[str, str]:
        """Owned field -> property name, for the owned properties of ``obj`` that exist."""
        existing = self.existing(KIND[obj])
        return {key: name for key, name in self.mapping(obj).items() if name in existing}

    def name(self, field: OwnedField) -> str:
        """The configured property name of an owned field (written or read only)."""
        if field.access is Access.READ_ONLY:
            fields = self._config.fields
            on_company = field.crm_object is CrmObject.ACCOUNT
            attributes = fields.company_attributes if on_company else fields.deal_attributes
            return attributes.get(field.attribute) or field.hubspot
        return self.mapping(field.crm_object).get(field.key, field.hubspot)

    def native(self) -> dict[str, str]:
        """The native ICP properties written along (when enabled and present)."""
        if not self._config.native_icp:
            return {}
        existing = self.existing("companies")
        wanted = {"tier": NATIVE_TIER, "tal": NATIVE_TAL}
        return {key: name for key, name in wanted.items() if name in existing}

    def ensure(self, *, dry_run: bool) -> FieldSetup:
        """Create the ``icp_sync`` group and the missing owned properties (idempotent)."""
        self.forget()
        result = FieldSetup(dry_run=dry_run)
        for obj, kind in KIND.items():
            existing = {str(p["name"]) for p in self._client.properties(kind)}
            wanted = [f for f in OWNED_FIELDS if f.crm_object is obj]
            missing = [f for f in wanted if self.name(f) not in existing]
            result.existing.extend(f"{kind}.{self.name(f)}" for f in wanted if f not in missing)
            if not missing:
                continue
            if dry_run:
                result.created.extend(f"{kind}.{self.name(f)}" for f in missing)
                continue
            if GROUP not in {str(g["name"]) for g in self._client.groups(kind)}:
                self._client.create_group(kind, GROUP, "icp-sync")
            for field in missing:
                spec = property_spec(field)
                spec["name"] = self.name(field)
                name = f"{kind}.{spec['name']}"
                try:
                    self._client.create_property(kind, spec)
                except FatalConnectorError as exc:
                    result.failed[name] = str(exc)
                    continue
                result.created.append(name)
        self.forget()
        return result
