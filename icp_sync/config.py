"""TOML configuration -> validated, frozen settings.

Every problem is reported at once, each with its TOML path (``files.accounts.path: file not
found``), as one :class:`~icp_sync.errors.ConfigError`; the CLI then exits 2. Secrets never
live in the file: secret values are ``env:NAME`` or ``file:PATH`` references, resolved at load
time and held as :class:`pydantic.SecretStr`. Relative paths (files, SQLite databases) are
resolved against the directory of the config file, so a config works from any directory.
"""

from __future__ import annotations

import itertools
import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from icp_sync.errors import ConfigError
from icp_sync.model import ACCOUNT_COLUMNS, COLUMNS, ID_COLUMN, CrmObject

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_CONFIG",
    "ColumnSpec",
    "FileObjectConfig",
    "FilesConfig",
    "LookupConfig",
    "Secret",
    "SecretRef",
    "Settings",
    "load_settings",
    "resolve_secret",
]

DEFAULT_CONFIG = "icp-sync.toml"
CONFIG_ENV = "ICP_SYNC_CONFIG"

_SECRET_PREFIXES = ("env:", "file:")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def resolve_secret(reference: str) -> str:
    """Resolve an ``env:NAME`` or ``file:PATH`` reference to the secret it names.

    Raises:
        ValueError: If the reference is not one of those forms or cannot be resolved.
    """
    kind, _, target = reference.partition(":")
    if kind == "env" and target:
        value = os.environ.get(target)
        if value is None:
            raise ValueError(f"environment variable {target} is not set")
        return value
    if kind == "file" and target:
        try:
            return Path(target).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ValueError(f"cannot read secret file {target}: {exc.strerror}") from None
    raise ValueError(
        "must be a reference, env:NAME or file:PATH; the secret itself never goes in the file"
    )


def _base_dir(info: ValidationInfo) -> Path:
    context = info.context or {}
    return Path(context.get("base_dir", "."))


class SecretRef(SecretStr):
    """A secret resolved from its ``env:`` / ``file:`` reference, which it remembers.

    :meth:`reload` resolves the reference again, so a rotated secret file or variable is
    picked up without a restart.
    """

    def __init__(self, secret_value: str, reference: str = "") -> None:
        super().__init__(secret_value)
        self.reference = reference

    def reload(self) -> str:
        """Resolve the reference again and return the current secret."""
        return resolve_secret(self.reference) if self.reference else self.get_secret_value()


def _secret(value: object) -> SecretStr:
    if isinstance(value, SecretStr):
        return value
    if not isinstance(value, str):
        raise ValueError("must be a string reference, env:NAME or file:PATH")
    return SecretRef(resolve_secret(value), reference=value)


Secret = Annotated[SecretStr, BeforeValidator(_secret)]
"""A secret given as an ``env:NAME`` or ``file:PATH`` reference, resolved at load time."""


class StoreConfig(_Section):
    """Where icp-sync keeps its state (SQLAlchemy URL)."""

    url: str = "sqlite:///icp-sync.db"
    """``sqlite:///relative/or/absolute.db`` or ``postgresql+psycopg://user@host/db``.
    May be an ``env:``/``file:`` reference when it carries a password."""

    @field_validator("url", mode="before")
    @classmethod
    def _resolve_url(cls, value: object, info: ValidationInfo) -> object:
        if not isinstance(value, str):
            return value
        if value.startswith(_SECRET_PREFIXES):
            value = resolve_secret(value)
        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError(f"not a SQLAlchemy URL: {value!r}") from None
        if url.get_backend_name() not in ("sqlite", "postgresql"):
            raise ValueError("only sqlite:/// and postgresql+psycopg:// stores are supported")
        database = url.database or ""
        if url.get_backend_name() == "sqlite" and database and database != ":memory:":
            path = Path(database)
            if not path.is_absolute():
                path = _base_dir(info) / path
            value = url.set(database=str(path.resolve())).render_as_string(hide_password=False)
        return value


class LoggingConfig(_Section):
    """Log level and format (logs go to stderr)."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"
    """``auto``: pretty on a terminal, JSON lines otherwise."""


class CrmConfig(_Section):
    """Which CRM this installation talks to."""

    connector: Literal["files", "salesforce", "hubspot"] = "files"


class ColumnSpec(_Section):
    """How one canonical column is read from an export.

    Written in TOML either as a plain source column name (``name = "account_name"``) or as a
    table: ``{ column = "revenue", scale = 1000000 }``, ``{ const = "new_business" }``,
    ``{ column = "deal_stage", values = { Won = "won" } }``,
    ``{ lookup = "churn", column = "churn_date", agg = "max" }``.
    """

    column: str | None = None
    """Source column (in the object's file, or in the lookup's file with ``lookup``)."""
    const: str | float | bool | None = None
    """A constant for every row instead of a column."""
    values: dict[str, str] = Field(default_factory=dict)
    """Value map applied after trimming, matched case-insensitively (source -> canonical)."""
    default: str | None = None
    """Value for source values the map does not list (default: keep them as they are)."""
    scale: float | None = None
    """Multiply numbers by this (e.g. revenue in millions -> 1000000)."""
    format: str | None = None
    """strptime format for dates when automatic parsing is ambiguous (e.g. ``%d/%m/%Y``)."""
    lookup: str | None = None
    """Name of a lookup table of this object to take ``column`` from."""
    agg: Literal["first", "last", "min", "max", "sum", "mean", "count"] = "first"
    """How to reduce several lookup rows per key."""
    when: dict[str, list[str]] = Field(default_factory=dict)
    """Keep the value only on rows whose (primary file) columns hold one of these values."""

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: object) -> object:
        return {"column": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_source(self) -> ColumnSpec:
        if (self.column is None) == (self.const is None):
            raise ValueError("give exactly one of 'column' or 'const'")
        if self.lookup is not None and self.column is None:
            raise ValueError("'lookup' needs 'column' (the column of the lookup file)")
        return self


class LookupConfig(_Section):
    """A second export joined onto an object's rows (e.g. churn events onto accounts)."""

    path: Path
    """The lookup file (CSV or Parquet)."""
    key: str
    """Join column in the lookup file."""
    on: str | None = None
    """Join column in the object's file (default: same name as ``key``)."""
    where: dict[str, list[str]] = Field(default_factory=dict)
    """Keep only lookup rows whose columns hold one of these values."""

    @field_validator("path")
    @classmethod
    def _resolve(cls, value: Path, info: ValidationInfo) -> Path:
        return _existing_file(value, info)


def _existing_file(value: Path, info: ValidationInfo) -> Path:
    path = value if value.is_absolute() else _base_dir(info) / value
    if not path.is_file():
        raise ValueError(f"file not found: {path}")
    return path.resolve()


class FileObjectConfig(_Section):
    """One exported object (accounts or opportunities): file, format and column mapping."""

    _object: ClassVar[CrmObject] = CrmObject.ACCOUNT
    _section: ClassVar[str] = "accounts"

    path: Path
    """The export (CSV or Parquet)."""
    format: Literal["auto", "csv", "parquet"] = "auto"
    delimiter: str = ","
    encoding: str = "utf-8"
    day_first: bool = False
    """Read ambiguous dates such as 03/04/2024 as 3 April (default: 4 March)."""
    where: dict[str, list[str]] = Field(default_factory=dict)
    """Keep only rows whose columns hold one of these values (e.g. leave out trials)."""
    lookups: dict[str, LookupConfig] = Field(default_factory=dict)
    columns: dict[str, ColumnSpec] = Field(default_factory=dict, validate_default=True)
    """Canonical column -> source. Unmapped canonical columns are derived or left empty."""
    attributes: dict[str, ColumnSpec] = Field(default_factory=dict)
    """Extra columns kept as ``attr_<name>`` (usable as segment dimensions)."""

    @field_validator("path")
    @classmethod
    def _resolve(cls, value: Path, info: ValidationInfo) -> Path:
        return _existing_file(value, info)

    @field_validator("columns")
    @classmethod
    def _columns_known(
        cls, value: dict[str, ColumnSpec], info: ValidationInfo
    ) -> dict[str, ColumnSpec]:
        canonical = COLUMNS[cls._object]
        where = f"files.{cls._section}.columns"
        problems = [
            f"{where}.{name}: not a canonical {cls._object} column (known: "
            f"{', '.join(canonical)}); map extra columns under files.{cls._section}.attributes"
            for name in value
            if name not in canonical
        ]
        id_column = ID_COLUMN[cls._object]
        if id_column not in value:
            problems.append(f"{where}.{id_column}: required value missing")
        lookups = info.data.get("lookups", {})
        problems += [
            f"{where}.{name}.lookup: no lookup named {spec.lookup!r} under "
            f"files.{cls._section}.lookups"
            for name, spec in value.items()
            if spec.lookup is not None and spec.lookup not in lookups
        ]
        if problems:
            raise ValueError("\n".join(problems))
        return value


class OpportunityFileConfig(FileObjectConfig):
    """The opportunities export."""

    _object: ClassVar[CrmObject] = CrmObject.OPPORTUNITY
    _section: ClassVar[str] = "opportunities"


class FilesConfig(_Section):
    """The file connector: CRM exports on disk."""

    accounts: FileObjectConfig
    opportunities: OpportunityFileConfig | None = None


class NormalizeConfig(_Section):
    """How messy values are repaired, for every connector."""

    aliases: dict[str, dict[str, str]] = Field(default_factory=dict)
    """Per canonical (or ``attr_``) column: variant -> canonical spelling, e.g. typos."""
    max_employees: float = 5_000_000
    """Employee counts above this are impossible and dropped."""
    max_amount: float = 1e10
    """Deal amounts and ARR above this are impossible and dropped."""
    max_annual_revenue: float = 2e12
    """Annual revenues above this (more than the largest company's) are impossible."""


class SegmentsConfig(_Section):
    """Which dimensions segment the customer base, and how numbers are banded."""

    dimensions: list[str] = Field(default_factory=lambda: ["industry", "employees_band", "region"])
    """Canonical columns, derived bands (``employees_band``, ``revenue_band``) or ``attr_``."""
    employee_bands: list[int] = Field(default_factory=lambda: [1, 50, 200, 1000, 5000])
    """Lower bounds of the employee bands: 1, 50, 200 -> "1-49", "50-199", "200+"."""
    revenue_bands: list[float] = Field(default_factory=lambda: [0.0, 1e6, 1e7, 1e8, 1e9])
    """Lower bounds of the annual revenue bands in the CRM's currency."""
    max_depth: int = Field(default=2, ge=1, le=4)
    """Most dimensions combined in one segment (2: "Healthcare, 200-999 employees")."""
    min_accounts: int = Field(default=30, ge=5)
    """Segments with fewer accounts with outcomes are reported but never tiered."""

    @field_validator("employee_bands", "revenue_bands")
    @classmethod
    def _increasing(cls, value: list[Any]) -> list[Any]:
        if len(value) < 2 or any(b <= a for a, b in itertools.pairwise(value)):
            raise ValueError("needs at least two strictly increasing lower bounds")
        return value

    @field_validator("dimensions")
    @classmethod
    def _known_dimensions(cls, value: list[str]) -> list[str]:
        derived = {"employees_band", "revenue_band"}
        unknown = [
            d
            for d in value
            if d not in ACCOUNT_COLUMNS and d not in derived and not d.startswith("attr_")
        ]
        if unknown:
            raise ValueError(
                f"unknown dimension(s) {', '.join(unknown)}: use account columns, "
                "employees_band, revenue_band or attr_<name>"
            )
        if not value:
            raise ValueError("needs at least one dimension")
        return value


_METRICS = ("win_rate", "retention", "nrr", "clv", "sales_cycle_days", "acv", "nps", "adoption")


class LifecycleConfig(_Section):
    """Assumptions behind the lifecycle metrics."""

    window_months: int = Field(default=12, ge=1, le=60)
    """Logo retention and NRR are measured over windows of this length."""
    windows: int = Field(default=3, ge=1, le=10)
    """How many consecutive NRR windows (ending at the end of the history) are pooled."""
    gross_margin: float = Field(default=0.8, gt=0, le=1)
    """Share of ARR kept as gross profit, for CLV = ARR x margin / churn."""
    min_churn: float = Field(default=0.02, gt=0, lt=1)
    """Floor of the annual churn rate in CLV, so lifetimes stay finite."""


class IcpConfig(_Section):
    """How the ICP is derived from the evidence, and where it is written."""

    fdr: float = Field(default=0.05, gt=0, lt=0.5)
    """False discovery rate controlled across all tested segments."""
    min_lift: float = Field(default=0.15, ge=0, lt=1)
    """Green needs a composite lift of at least 1 + this; Red at most 1 - this."""
    weights: dict[str, float] = Field(
        default_factory=lambda: {
            "retention": 0.3,
            "nrr": 0.25,
            "win_rate": 0.25,
            "nps": 0.1,
            "adoption": 0.1,
        }
    )
    """Weight of each metric in the composite outcome: win_rate, retention, nrr, clv,
    sales_cycle_days, acv, nps, adoption (missing ones weigh 0)."""
    exclusions: list[dict[str, str | list[str]]] = Field(default_factory=list)
    """Segments you cannot serve, Red whatever the data say: [{ industry = "Gambling" }]."""
    definition: Path | None = None
    """Use this (edited) ICP definition file instead of the latest derived one."""
    output_dir: Path = Path("icp")
    """Where derive writes the definition and evidence report (relative to this file)."""

    @field_validator("weights")
    @classmethod
    def _known_metrics(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(_METRICS))
        if unknown:
            raise ValueError(
                f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(_METRICS)}"
            )
        if any(w < 0 for w in value.values()) or not any(w > 0 for w in value.values()):
            raise ValueError("weights must be non-negative with at least one above zero")
        return value

    @field_validator("definition")
    @classmethod
    def _definition_exists(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return None if value is None else _existing_file(value, info)


class LookalikeConfig(_Section):
    """The look-alike model."""

    best_fit_share: float = Field(default=0.5, gt=0, lt=1)
    """Share of customers (by composite outcome) that form the best-fit archetype."""
    min_class: int = Field(default=30, ge=5)
    """Fewest best-fit (and other) accounts needed to train; below, scores use segments."""
    cv_folds: int = Field(default=5, ge=2, le=20)
    regularization: float = Field(default=0.5, gt=0)
    """Inverse L2 strength of the logistic regression (smaller: simpler model)."""
    min_auc: float = Field(default=0.6, ge=0.5, lt=1)
    """Below this cross-validated AUC the model ranks nothing and segment lifts rank the TAL."""


class TalConfig(_Section):
    """The Target Account List."""

    name: str = "Target Account List"
    size: int = Field(default=500, ge=1)


class TiersConfig(_Section):
    """How tiers follow from rules and scores."""

    green_min_score: float = Field(default=0, ge=0, le=100)
    """An account in a Green segment whose fit score is below this is Yellow instead."""


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
_SF_WRITE_FIELDS = {
    "tier": "ICP_Tier__c",
    "score": "ICP_Score__c",
    "segment": "ICP_Segment__c",
    "reasons": "ICP_Reasons__c",
    "tal": "ICP_TAL__c",
    "tal_rank": "ICP_TAL_Rank__c",
    "version": "ICP_Version__c",
    "scored_at": "ICP_Scored_At__c",
}
_SF_REQUIRED = {"account_id", "name", "modified_at", "opportunity_id"}


class SalesforceFieldsConfig(_Section):
    """Salesforce field names: canonical column -> API name (defaults fit a standard org)."""

    account: dict[str, str] = Field(default_factory=lambda: dict(_SF_ACCOUNT_FIELDS))
    opportunity: dict[str, str] = Field(default_factory=lambda: dict(_SF_OPPORTUNITY_FIELDS))
    account_attributes: dict[str, str] = Field(
        default_factory=lambda: {"icp_tier_override": "ICP_Tier_Override__c"}
    )
    """Extra Account fields kept as attr_<name> (the tier override is read, never written)."""
    opportunity_attributes: dict[str, str] = Field(default_factory=dict)
    """Extra Opportunity fields kept as attr_<name>."""
    writeback: dict[str, str] = Field(default_factory=lambda: dict(_SF_WRITE_FIELDS))
    """Owned Account fields (tier, score, segment, reasons, tal, tal_rank, version,
    scored_at) -> API name. Only these are ever written."""

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


class SalesforceConfig(_Section):
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
    bulk_write_threshold: int = Field(default=2_000, ge=0)
    """Above this many changed records, write-back uses a Bulk API 2.0 ingest job."""
    budget_share: float = Field(default=0.2, gt=0, le=1)
    """A cycle stops cleanly once it has used this share of the daily API limit."""
    max_org_share: float = Field(default=0.9, gt=0, le=1)
    """A cycle does not start (or stops) once the org as a whole has used this share."""
    max_attempts: int = Field(default=6, ge=1, le=20)
    """Tries per call on 5xx, timeouts, row locks and concurrency limits."""
    deleted_window_days: int = Field(default=15, ge=0, le=15)
    """Hard deletes are looked up with getDeleted when the cursor is at most this old."""
    fields: SalesforceFieldsConfig = SalesforceFieldsConfig()

    @field_validator("ca_file")
    @classmethod
    def _ca_exists(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return None if value is None else _existing_file(value, info)

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


class WritebackConfig(_Section):
    """Writing tier, score, reasons and TAL membership back to the CRM."""

    enabled: bool = True
    """When false, sync reads and scores but never writes (like a permanent --dry-run)."""


class Settings(_Section):
    """The whole configuration."""

    crm: CrmConfig = CrmConfig()
    store: StoreConfig = StoreConfig()
    logging: LoggingConfig = LoggingConfig()
    files: FilesConfig | None = None
    salesforce: SalesforceConfig | None = None
    writeback: WritebackConfig = WritebackConfig()
    normalize: NormalizeConfig = NormalizeConfig()
    segments: SegmentsConfig = SegmentsConfig()
    lifecycle: LifecycleConfig = LifecycleConfig()
    icp: IcpConfig = IcpConfig()
    lookalike: LookalikeConfig = LookalikeConfig()
    tal: TalConfig = TalConfig()
    tiers: TiersConfig = TiersConfig()
    source: Path | None = Field(default=None, exclude=True)
    """The file these settings came from (set by :func:`load_settings`)."""

    @model_validator(mode="after")
    def _connector_section(self) -> Settings:
        if self.crm.connector == "files" and self.files is None:
            raise ValueError("files: section required when crm.connector = 'files'")
        if self.crm.connector == "salesforce" and self.salesforce is None:
            raise ValueError("salesforce: section required when crm.connector = 'salesforce'")
        if self.crm.connector == "hubspot":
            raise ValueError(
                "crm.connector: the hubspot connector is not available in this version; "
                "use 'salesforce', or 'files' with CRM exports"
            )
        return self

    def resolve(self, path: Path) -> Path:
        """``path`` made absolute against the folder of the config file."""
        if path.is_absolute():
            return path
        base = self.source.resolve().parent if self.source else Path.cwd()
        return (base / path).resolve()

    def secrets(self) -> list[str]:
        """Every resolved secret value, so that logging can mask them wherever they appear."""
        found: list[str] = []

        def walk(node: object) -> None:
            if isinstance(node, SecretStr):
                found.append(node.get_secret_value())
            elif isinstance(node, BaseModel):
                for name in type(node).model_fields:
                    walk(getattr(node, name))
            elif isinstance(node, dict):
                for item in node.values():
                    walk(item)

        walk(self)
        url = make_url(self.store.url)
        if url.password:
            found.append(str(url.password))
        return [s for s in found if s]


def config_path(explicit: str | Path | None) -> Path:
    """The config file to use: ``--config``, else ``./icp-sync.toml``, else ``$ICP_SYNC_CONFIG``."""
    if explicit:
        return Path(explicit)
    default = Path(DEFAULT_CONFIG)
    if default.exists() or CONFIG_ENV not in os.environ:
        return default
    return Path(os.environ[CONFIG_ENV])


def load_settings(path: str | Path) -> Settings:
    """Read and validate a TOML config file.

    Raises:
        ConfigError: Listing every problem found, each prefixed with its TOML path.
    """
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            [f"{path}: config file not found (pass --config PATH or set {CONFIG_ENV})"]
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from None
    return parse_settings(raw, base_dir=path.resolve().parent, source=path)


def parse_settings(raw: dict[str, Any], *, base_dir: Path, source: Path | None = None) -> Settings:
    """Validate an already-parsed TOML document (see :func:`load_settings`)."""
    try:
        settings = Settings.model_validate(raw, context={"base_dir": base_dir})
    except ValidationError as exc:
        raise ConfigError(_problems(exc), source=str(source) if source else None) from None
    return settings.model_copy(update={"source": source})


def _problems(exc: ValidationError) -> list[str]:
    problems: list[str] = []
    for error in exc.errors():
        path = _toml_path(error["loc"])
        kind = error["type"]
        if kind == "extra_forbidden":
            message = "unknown key"
        elif kind == "missing":
            message = "required value missing"
        else:
            message = str(error["msg"]).removeprefix("Value error, ")
        lines = message.split("\n")
        for line in lines:
            head = line.split(": ", 1)[0]
            # cross-field checks name their own TOML path ("files.accounts.columns.x: ...")
            if ": " in line and ((" " not in head and "." in head) or head in _SECTIONS):
                problems.append(line)
            else:
                problems.append(f"{path or '(top level)'}: {line}")
    return problems


_SECTIONS = frozenset(Settings.model_fields)


def _toml_path(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif item.startswith("function-") or item in {"str", "float", "bool", "int"}:
            continue
        elif parts:
            parts.append(f".{item}")
        else:
            parts.append(item)
    return "".join(parts)
