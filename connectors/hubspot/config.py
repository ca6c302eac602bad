"""The ``[hubspot]`` config section: auth, limits, property mapping and write-back choices.

The owned-property names default from :data:`icp_sync.model.OWNED_FIELDS`; the other
defaults fit a standard portal (company and deal properties HubSpot defines, plus the
custom ones a RevOps team usually adds: tech stack, customer since, churn date, ARR, NPS).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from icp_sync.model import (
    ACCOUNT_COLUMNS,
    COLUMNS,
    OWNED,
    OWNED_FIELDS,
    WRITTEN_ACCOUNT_FIELDS,
    WRITTEN_OPPORTUNITY_FIELDS,
    Access,
    CrmObject,
)
from icp_sync.sections import Secret, Section

__all__ = ["HubSpotConfig", "HubSpotFieldsConfig"]

_HS_COMPANY_PROPERTIES = {
    "account_id": "hs_object_id",
    "name": "name",
    "domain": "domain",
    "industry": "industry",
    "employees": "numberofemployees",
    "annual_revenue": "annualrevenue",
    "country": "country",
    "tech_stack": "tech_stack",
    "owner_id": "hubspot_owner_id",
    "created_at": "createdate",
    "modified_at": "hs_lastmodifieddate",
    "customer_since": "customer_since",
    "churned_at": "churn_date",
    "arr": "arr",
    "nps": "nps",
    "adoption": "adoption",
}
_HS_DEAL_PROPERTIES = {
    "opportunity_id": "hs_object_id",
    "name": "dealname",
    "stage": "dealstage",
    "amount": "amount",
    "created_at": "createdate",
    "close_date": "closedate",
    "deal_type": "dealtype",
    "motion": "deal_source",
    "owner_id": "hubspot_owner_id",
    "modified_at": "hs_lastmodifieddate",
}
_HS_WRITE_PROPERTIES = {f: OWNED[f].hubspot for f in WRITTEN_ACCOUNT_FIELDS}
_HS_DEAL_WRITE_PROPERTIES = {f: OWNED[f].hubspot for f in WRITTEN_OPPORTUNITY_FIELDS}
_HS_READ_ATTRIBUTES = {
    f.attribute: f.hubspot
    for f in OWNED_FIELDS
    if f.crm_object is CrmObject.ACCOUNT and f.access is Access.READ_ONLY
}
_HS_DEAL_READ_ATTRIBUTES = {
    f.attribute: f.hubspot
    for f in OWNED_FIELDS
    if f.crm_object is CrmObject.OPPORTUNITY and f.access is Access.READ_ONLY
}
_REQUIRED = {"account_id", "name", "modified_at", "opportunity_id"}
_NOT_PROPERTIES = {"account_id"}  # deals get their company from associations, not a property


class HubSpotFieldsConfig(Section):
    """HubSpot property names: canonical column -> property (defaults fit a standard portal)."""

    company: dict[str, str] = Field(default_factory=lambda: dict(_HS_COMPANY_PROPERTIES))
    deal: dict[str, str] = Field(default_factory=lambda: dict(_HS_DEAL_PROPERTIES))
    company_attributes: dict[str, str] = Field(default_factory=lambda: dict(_HS_READ_ATTRIBUTES))
    """Extra company properties kept as attr_<name> (the tier override is read, never written)."""
    deal_attributes: dict[str, str] = Field(default_factory=lambda: dict(_HS_DEAL_READ_ATTRIBUTES))
    """Extra deal properties kept as attr_<name> (the waiver reason and approver are read,
    never written)."""
    writeback: dict[str, str] = Field(default_factory=lambda: dict(_HS_WRITE_PROPERTIES))
    """Owned company fields -> property name. Only these (and, when enabled, HubSpot's
    native ICP properties) are ever written."""
    deal_writeback: dict[str, str] = Field(default_factory=lambda: dict(_HS_DEAL_WRITE_PROPERTIES))
    """Owned deal fields (tier_at_creation, compliance, compliance_reason) -> property name,
    written by the compliance monitor. Only these are ever written on deals."""
    salesforce_id: str = "salesforceaccountid"
    """The property HubSpot's Salesforce integration keeps the Account id in (dual mode
    matches on it first)."""

    @model_validator(mode="after")
    def _known(self) -> HubSpotFieldsConfig:
        problems = [
            f"hubspot.fields.{section}.{name}: not a canonical column"
            for section, mapping, canonical in (
                ("company", self.company, ACCOUNT_COLUMNS),
                ("deal", self.deal, COLUMNS[CrmObject.OPPORTUNITY]),
            )
            for name in mapping
            if name not in canonical
        ]
        problems += [
            f"hubspot.fields.deal.{name}: comes from the deal's company association, not a property"
            for name in self.deal
            if name in _NOT_PROPERTIES
        ]
        problems += [
            f"hubspot.fields.writeback.{name}: not an owned field "
            f"({', '.join(_HS_WRITE_PROPERTIES)})"
            for name in self.writeback
            if name not in _HS_WRITE_PROPERTIES
        ]
        problems += [
            f"hubspot.fields.deal_writeback.{name}: not an owned deal field "
            f"({', '.join(_HS_DEAL_WRITE_PROPERTIES)})"
            for name in self.deal_writeback
            if name not in _HS_DEAL_WRITE_PROPERTIES
        ]
        for section, mapping, obj in (
            ("company", self.company, CrmObject.ACCOUNT),
            ("deal", self.deal, CrmObject.OPPORTUNITY),
        ):
            problems += [
                f"hubspot.fields.{section}.{name}: required value missing"
                for name in sorted((_REQUIRED & set(COLUMNS[obj])) - _NOT_PROPERTIES)
                if name not in mapping
            ]
        if problems:
            raise ValueError("\n".join(problems))
        return self


class HubSpotConfig(Section):
    """The HubSpot connector: authentication, limits, mapping and write-back choices."""

    base_url: str = "https://api.hubapi.com"
    auth: Literal["private_app", "oauth"] = "private_app"
    access_token: Secret | None = None
    """The private app's access token (auth = "private_app")."""
    client_id: Secret | None = None
    client_secret: Secret | None = None
    refresh_token: Secret | None = None
    """The OAuth app's refresh token (auth = "oauth"); a rotated one is kept in the state
    store and used from then on, until this reference names a different one."""
    timeout_s: float = Field(default=60, gt=0)
    max_attempts: int = Field(default=6, ge=1, le=20)
    """Tries per call on 429, 5xx and network errors (every HTTP method)."""
    search_per_second: float = Field(default=4, gt=0, le=5)
    """Search calls per second (HubSpot allows about 5 per token, apart from the burst)."""
    burst_reserve: int = Field(default=2, ge=0, le=50)
    """Calls of the ten-second burst allowance left unused (for other apps of the portal)."""
    budget_share: float = Field(default=0.2, gt=0, le=1)
    """A cycle stops cleanly once it used this share of the portal's daily limit."""
    search_result_cap: int = Field(default=10_000, ge=200)
    """Most results one search query returns (HubSpot: 10,000); the window is re-anchored
    before a page would pass it."""
    lookback_seconds: int = Field(default=300, ge=0, le=86_400)
    """Each incremental search starts this long before the cursor (search results lag
    writes by seconds; re-read records are deduplicated)."""
    archived_every_minutes: float = Field(default=0, ge=0)
    """How often incremental cycles list archived records (the deletes; the search API does
    not return them): 0 = every cycle (one call per object and 100 archived); more saves those
    calls on frequent cycles, at the price of deletes arriving that much later."""
    metadata_ttl_hours: float = Field(default=24, gt=0)
    """How long the pipelines and property list read from HubSpot are reused."""
    stages: dict[str, Literal["open", "won", "lost"]] = Field(default_factory=dict)
    """Deal stage id -> open / won / lost, overriding what the pipelines API says."""
    native_icp: bool = False
    """Also write HubSpot's own ``hs_ideal_customer_profile`` (Green -> tier_1, Yellow ->
    tier_2, Red -> tier_3) and ``hs_is_target_account`` (TAL membership)."""
    fields: HubSpotFieldsConfig = HubSpotFieldsConfig()

    @model_validator(mode="after")
    def _credentials(self) -> HubSpotConfig:
        needed = {
            "private_app": ("access_token",),
            "oauth": ("client_id", "client_secret", "refresh_token"),
        }[self.auth]
        missing = [
            f"hubspot.{name}: required value missing (auth = {self.auth!r})"
            for name in needed
            if getattr(self, name) is None
        ]
        if missing:
            raise ValueError("\n".join(missing))
        return self
