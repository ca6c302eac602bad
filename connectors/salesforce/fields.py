"""Salesforce field setup: which fields exist (describe), which owned ones to create (Tooling).

The owned fields are declared once in :data:`icp_sync.model.OWNED_FIELDS`; their API names
come from the config (the table's names are the defaults). ``setup-fields`` creates the ones
missing as Tooling API CustomFields; ``check`` and write-back ask which exist.
"""

from __future__ import annotations

from typing import Any

from connectors.base import FieldSetup
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.config import SalesforceFieldsConfig
from icp_sync.errors import FatalConnectorError
from icp_sync.model import OWNED, OWNED_FIELDS, Access, CrmObject, FieldKind, OwnedField

__all__ = ["SOBJECT", "Fields", "tooling_metadata", "wanted_fields"]

SOBJECT = {CrmObject.ACCOUNT: "Account", CrmObject.OPPORTUNITY: "Opportunity"}
"""The sObject each CRM object is read from."""

_TOOLING_TYPE = {
    FieldKind.PICKLIST: "Picklist",
    FieldKind.NUMBER: "Number",
    FieldKind.TEXT: "Text",
    FieldKind.LONG_TEXT: "LongTextArea",
    FieldKind.CHECKBOX: "Checkbox",
    FieldKind.DATETIME: "DateTime",
}


def wanted_fields(config: SalesforceFieldsConfig) -> dict[str, OwnedField]:
    """Every owned field setup-fields ensures, by full name (``Account.ICP_Tier__c``).

    The written Account fields under their configured names, then the read-only and reserved
    ones (the tier override under its configured attribute name, if renamed).
    """
    wanted = {f"Account.{api}": OWNED[key] for key, api in config.writeback.items()}
    for spec in OWNED_FIELDS:
        if spec.access is Access.WRITTEN:
            continue
        name = spec.salesforce
        if spec.crm_object is CrmObject.ACCOUNT:
            name = config.account_attributes.get(spec.attribute) or name
        wanted[f"{SOBJECT[spec.crm_object]}.{name}"] = spec
    return wanted


def tooling_metadata(spec: OwnedField) -> dict[str, Any]:
    """The ``Metadata`` body of a Tooling API CustomField create for ``spec``."""
    metadata: dict[str, Any] = {"label": spec.label, "type": _TOOLING_TYPE[spec.kind]}
    if spec.description:
        metadata["description"] = spec.description
        metadata["inlineHelpText"] = spec.description[:255]
    if spec.kind is FieldKind.PICKLIST:
        metadata["valueSet"] = {
            "restricted": True,
            "valueSetDefinition": {
                "sorted": False,
                "value": [{"fullName": v, "label": v, "default": False} for v in spec.values],
            },
        }
    elif spec.kind is FieldKind.TEXT:
        metadata["length"] = spec.length
    elif spec.kind is FieldKind.LONG_TEXT:
        metadata["length"] = spec.length
        metadata["visibleLines"] = 5
    elif spec.kind is FieldKind.NUMBER:
        metadata["precision"] = spec.precision
        metadata["scale"] = 0
    elif spec.kind is FieldKind.CHECKBOX:
        metadata["defaultValue"] = False
    return metadata


class Fields:
    """The org's fields as described once per connector, and owned-field setup.

    Args:
        client: The API client.
        config: The ``[salesforce.fields]`` section.
    """

    def __init__(self, client: SalesforceClient, config: SalesforceFieldsConfig) -> None:
        self._client = client
        self._config = config
        self._existing: dict[str, set[str]] = {}

    def existing(self, sobject: str) -> set[str]:
        """API names of the fields the integration user can see on ``sobject``."""
        if sobject not in self._existing:
            described = self._client.call(
                f"describe {sobject}", lambda sf: getattr(sf, sobject).describe()
            )
            self._existing[sobject] = {str(f["name"]) for f in described.get("fields", [])}
        return self._existing[sobject]

    def forget(self) -> None:
        """Describe again on next use (a field created or hidden since is then seen)."""
        self._existing.clear()

    def writable(self) -> dict[str, str]:
        """Owned field -> API name, for the written fields that exist on Account."""
        existing = self.existing("Account")
        return {k: v for k, v in self._config.writeback.items() if v in existing}

    def ensure(self, *, dry_run: bool) -> FieldSetup:
        """Create the missing owned fields through the Tooling API (idempotent)."""
        result = FieldSetup(dry_run=dry_run)
        for full_name, spec in wanted_fields(self._config).items():
            sobject, api = full_name.split(".", 1)
            if api in self.existing(sobject):
                result.existing.append(full_name)
                continue
            if dry_run:
                result.created.append(full_name)
                continue
            body = {"FullName": full_name, "Metadata": tooling_metadata(spec)}
            try:
                self._client.call(f"create {full_name}", _tooling_create(body))
            except FatalConnectorError as exc:
                result.failed[full_name] = str(exc)
                continue
            result.created.append(full_name)
        self._existing.clear()
        return result


def _tooling_create(body: dict[str, Any]) -> Any:
    def operation(sf: Any) -> Any:
        return sf.toolingexecute("sobjects/CustomField", method="POST", data=body)

    return operation
