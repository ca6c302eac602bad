"""The custom fields icp-sync owns in Salesforce, as Tooling API CustomField metadata.

ARCHITECTURE section 5 names them; the API names come from the config (these are the
defaults). ``setup-fields`` creates the ones missing; ``check`` reports them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["OWNED_ACCOUNT", "READ_ONLY", "FieldSpec", "tooling_metadata"]

_TIERS = ("Green", "Yellow", "Red")


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldSpec:
    """One custom field: its object, label, type and type parameters."""

    sobject: str
    label: str
    kind: str
    length: int | None = None
    precision: int | None = None
    scale: int | None = None
    values: tuple[str, ...] = ()
    description: str = ""


OWNED_ACCOUNT: dict[str, FieldSpec] = {
    "tier": FieldSpec(
        sobject="Account",
        label="ICP Tier",
        kind="Picklist",
        values=_TIERS,
        description="Green: core target; Yellow: periphery; Red: cannot serve. Set by icp-sync.",
    ),
    "score": FieldSpec(
        sobject="Account",
        label="ICP Score",
        kind="Number",
        precision=3,
        scale=0,
        description="0-100 fit with the best customers (icp-sync look-alike model).",
    ),
    "segment": FieldSpec(sobject="Account", label="ICP Segment", kind="Text", length=255),
    "reasons": FieldSpec(sobject="Account", label="ICP Reasons", kind="LongTextArea", length=32768),
    "tal": FieldSpec(sobject="Account", label="ICP Target Account", kind="Checkbox"),
    "tal_rank": FieldSpec(
        sobject="Account", label="ICP TAL Rank", kind="Number", precision=7, scale=0
    ),
    "version": FieldSpec(sobject="Account", label="ICP Version", kind="Text", length=32),
    "scored_at": FieldSpec(sobject="Account", label="ICP Scored At", kind="DateTime"),
}
"""Account fields icp-sync writes, by owned-field name."""

READ_ONLY: dict[str, FieldSpec] = {
    "ICP_Tier_Override__c": FieldSpec(
        sobject="Account",
        label="ICP Tier Override",
        kind="Picklist",
        values=_TIERS,
        description="A human decision icp-sync respects: it wins over the derived tier.",
    ),
    "ICP_Tier_At_Creation__c": FieldSpec(
        sobject="Opportunity", label="ICP Tier At Creation", kind="Picklist", values=_TIERS
    ),
    "ICP_Compliance__c": FieldSpec(
        sobject="Opportunity",
        label="ICP Compliance",
        kind="Picklist",
        values=("Compliant", "Out of ICP", "Waived"),
    ),
    "ICP_Compliance_Reason__c": FieldSpec(
        sobject="Opportunity", label="ICP Compliance Reason", kind="Text", length=255
    ),
    "ICP_Waiver_Reason__c": FieldSpec(
        sobject="Opportunity", label="ICP Waiver Reason", kind="Text", length=255
    ),
    "ICP_Waiver_Approved_By__c": FieldSpec(
        sobject="Opportunity", label="ICP Waiver Approved By", kind="Text", length=80
    ),
}
"""Further fields of the ICP method, created by setup-fields, by default API name."""


def tooling_metadata(spec: FieldSpec) -> dict[str, Any]:
    """The ``Metadata`` body of a Tooling API CustomField create for ``spec``."""
    metadata: dict[str, Any] = {"label": spec.label, "type": spec.kind}
    if spec.description:
        metadata["description"] = spec.description
        metadata["inlineHelpText"] = spec.description[:255]
    if spec.kind == "Picklist":
        metadata["valueSet"] = {
            "restricted": True,
            "valueSetDefinition": {
                "sorted": False,
                "value": [{"fullName": v, "label": v, "default": False} for v in spec.values],
            },
        }
    elif spec.kind == "Text":
        metadata["length"] = spec.length
    elif spec.kind == "LongTextArea":
        metadata["length"] = spec.length
        metadata["visibleLines"] = 5
    elif spec.kind == "Number":
        metadata["precision"] = spec.precision
        metadata["scale"] = spec.scale
    elif spec.kind == "Checkbox":
        metadata["defaultValue"] = False
    return metadata
