"""The ``[salesforce]`` config section: login, limits, paging and field names, with defaults.

The owned-field names default from :data:`icp_sync.model.OWNED_FIELDS`; the other field
defaults fit a standard org.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

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
from icp_sync.sections import Secret, Section, existing_file

__all__ = ["SalesforceConfig", "SalesforceFieldsConfig"]


_SF_ACCOUNT_FIELDS = {
    "account_id": "Id",
    "name": "Name",
    "domain": "Website",
    "industry": "Industry",
    "employees": "NumberOfEmployees",
    "annual_revenue": "AnnualRevenue",
    "country": "BillingCountry",
    "tech_stack": "Tech_Stack__c",
    "owner_id": "OwnerId",
    "created_at": "CreatedDate",
    "modified_at": "SystemModstamp",
    "is_deleted": "IsDeleted",
    "customer_since": "Customer_Since__c",
    "churned_at": "Churn_Date__c",
    "arr": "ARR__c",
    "nps": "NPS__c",
    "adoption": "Adoption__c",
}
_SF_OPPORTUNITY_FIELDS = {
    "opportunity_id": "Id",
    "account_id": "AccountId",
    "name": "Name",
    "stage": "StageName",
    "amount": "Amount",
    "created_at": "CreatedDate",
    "close_date": "CloseDate",
    "is_closed": "IsClosed",
    "is_won": "IsWon",
    "deal_type": "Type",
    "motion": "LeadSource",
    "owner_id": "OwnerId",
    "modified_at": "SystemModstamp",
    "is_deleted": "IsDeleted",
}
_SF_WRITE_FIELDS = {f: OWNED[f].salesforce for f in WRITTEN_ACCOUNT_FIELDS}
_SF_OPPORTUNITY_WRITE_FIELDS = {f: OWNED[f].salesforce for f in WRITTEN_OPPORTUNITY_FIELDS}
_SF_READ_ATTRIBUTES = {
    f.attribute: f.salesforce
    for f in OWNED_FIELDS
    if f.crm_object is CrmObject.ACCOUNT and f.access is Access.READ_ONLY
}
_SF_OPPORTUNITY_READ_ATTRIBUTES = {
    f.attribute: f.salesforce
    for f in OWNED_FIELDS
    if f.crm_object is CrmObject.OPPORTUNITY and f.access is Access.READ_ONLY
}
_SF_REQUIRED = {"account_id", "name", "modified_at", "opportunity_id"}


class SalesforceFieldsConfig(Section):
    """Salesforce field names: canonical column -> API name (defaults fit a standard org)."""

    account: dict[str, str] = Field(default_factory=lambda: dict(_SF_ACCOUNT_FIELDS))
    opportunity: dict[str, str] = Field(default_factory=lambda: dict(_SF_OPPORTUNITY_FIELDS))
    account_attributes: dict[str, str] = Field(default_factory=lambda: dict(_SF_READ_ATTRIBUTES))
    """Extra Account fields kept as attr_<name> (the tier override is read, never written)."""
    opportunity_attributes: dict[str, str] = Field(
        default_factory=lambda: dict(_SF_OPPORTUNITY_READ_ATTRIBUTES)
    )
    """Extra Opportunity fields kept as attr_<name> (the waiver reason and approver are read,
    never written)."""
    writeback: dict[str, str] = Field(default_factory=lambda: dict(_SF_WRITE_FIELDS))
    """Owned Account fields (tier, score, segment, reasons, tal, tal_rank, version,
    scored_at) -> API name. Only these are ever written."""
    opportunity_writeback: dict[str, str] = Field(
        default_factory=lambda: dict(_SF_OPPORTUNITY_WRITE_FIELDS)
    )
    """Owned Opportunity fields (tier_at_creation, compliance, compliance_reason) -> API
    name, written by the compliance monitor. Only these are ever written on Opportunity."""

    @model_validator(mode="after")
    def _known(self) -> SalesforceFieldsConfig:
        problems = [
            f"salesforce.fields.{section}.{name}: not a canonical column"
            for section, mapping, canonical in (
                ("account", self.account, ACCOUNT_COLUMNS),
                ("opportunity", self.opportunity, COLUMNS[CrmObject.OPPORTUNITY]),
            )
            for name in mapping
            if name not in canonical
        ]
        problems += [
            f"salesforce.fields.writeback.{name}: not an owned field "
            f"({', '.join(_SF_WRITE_FIELDS)})"
            for name in self.writeback
            if name not in _SF_WRITE_FIELDS
        ]
        problems += [
            f"salesforce.fields.opportunity_writeback.{name}: not an owned Opportunity field "
            f"({', '.join(_SF_OPPORTUNITY_WRITE_FIELDS)})"
            for name in self.opportunity_writeback
            if name not in _SF_OPPORTUNITY_WRITE_FIELDS
        ]
        for section, mapping in (("account", self.account), ("opportunity", self.opportunity)):
            problems += [
                f"salesforce.fields.{section}.{name}: required value missing"
                for name in _SF_REQUIRED & set(COLUMNS[_OBJECT_OF[section]])
                if name not in mapping
            ]
        if problems:
            raise ValueError("\n".join(problems))
        return self


_OBJECT_OF = {"account": CrmObject.ACCOUNT, "opportunity": CrmObject.OPPORTUNITY}


class SalesforceConfig(Section):
    """The Salesforce connector: authentication, limits, paging and write-back choices."""

    instance_url: str | None = None
    """https://yourdomain.my.salesforce.com (required for auth = "session" and
    "client_credentials"; otherwise taken from the login response)."""
    login_url: str = "https://login.salesforce.com"
    """OAuth server for "password" and "jwt" (https://test.salesforce.com for sandboxes)."""
    auth: Literal["client_credentials", "password", "jwt", "session"] = "client_credentials"
    client_id: Secret | None = None
    client_secret: Secret | None = None
    username: str | None = None
    password: Secret | None = None
    security_token: Secret | None = None
    private_key: Secret | None = None
    """PEM private key of the connected app's certificate (auth = "jwt")."""
    session_id: Secret | None = None
    """An access token obtained elsewhere (auth = "session"); re-read from its reference
    when it expires, so a rotated file or variable is picked up."""
    api_version: str = "59.0"
    ca_file: Path | None = None
    """CA bundle to verify TLS with (proxies, private CAs). REQUESTS_CA_BUNDLE never overrides."""
    proxy: str | None = None
    """HTTPS proxy URL; environment proxy variables are ignored."""
    timeout_s: float = Field(default=60, gt=0)
    page_size: int = Field(default=2000, ge=200, le=2000)
    """Records per REST query page (Sforce-Query-Options batchSize)."""
    bulk_query_threshold: int = Field(default=50_000, ge=0)
    """Above this many matching records, extraction switches to a Bulk API 2.0 query."""
    bulk_page_records: int = Field(default=50_000, ge=100, le=1_000_000)
    """Records per Bulk API 2.0 query result page (each page is mirrored as it arrives)."""
    bulk_write_threshold: int = Field(default=2_000, ge=0)
    """Above this many changed records, write-back uses a Bulk API 2.0 ingest job."""
    bulk_upload_max_bytes: int = Field(default=90_000_000, ge=1_000, le=100_000_000)
    """Most CSV bytes one ingest job uploads (Salesforce: 100 MB, 150 M characters base64;
    about 300 bytes a record); more records are split into more jobs."""
    budget_share: float = Field(default=0.2, gt=0, le=1)
    """A cycle stops cleanly once it has used this share of the daily API limit."""
    max_org_share: float = Field(default=0.9, gt=0, le=1)
    """A cycle does not start (or stops) once the org as a whole has used this share."""
    max_attempts: int = Field(default=6, ge=1, le=20)
    """Tries per call on 5xx, timeouts, row locks and concurrency limits."""
    deleted_window_days: int = Field(default=15, ge=0, le=15)
    """Hard deletes are looked up with getDeleted when the cursor is at most this old."""
    reconcile_every_hours: float = Field(default=24, gt=0)
    """How often the live ids are listed to find deletes getDeleted cannot report
    (purged, out of its retention window, or hidden from the integration user)."""
    lookback_seconds: int = Field(default=300, ge=0, le=86_400)
    """Each incremental read starts this long before the cursor, so a commit stamped before
    it became visible (or a skewed clock) never hides a change."""
    fields: SalesforceFieldsConfig = SalesforceFieldsConfig()

    @field_validator("ca_file")
    @classmethod
    def _ca_exists(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return None if value is None else existing_file(value, info)

    @model_validator(mode="after")
    def _credentials(self) -> SalesforceConfig:
        needed = {
            "client_credentials": ("client_id", "client_secret", "instance_url"),
            "password": ("client_id", "client_secret", "username", "password"),
            "jwt": ("client_id", "username", "private_key"),
            "session": ("session_id", "instance_url"),
        }[self.auth]
        missing = [
            f"salesforce.{name}: required value missing (auth = {self.auth!r})"
            for name in needed
            if getattr(self, name) is None
        ]
        if missing:
            raise ValueError("\n".join(missing))
        return self
