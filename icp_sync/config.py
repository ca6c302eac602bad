"""TOML configuration -> validated, frozen settings.

Every problem is reported at once, each with its TOML path (``files.accounts.path: file not
found``), as one :class:`~icp_sync.errors.ConfigError`; the CLI then exits 2. Secrets never
live in the file: secret values are ``env:NAME`` or ``file:PATH`` references, resolved at load
time and held as :class:`pydantic.SecretStr`. Relative paths (files, SQLite databases) are
resolved against the directory of the config file, so a config works from any directory.
Each connector contributes its own section model (``connectors/<crm>/config.py``); this
module composes them with the sections of the core.
"""

from __future__ import annotations

import itertools
import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from connectors.files.config import FilesConfig  # noqa: TID251
from connectors.hubspot.config import HubSpotConfig  # noqa: TID251
from connectors.salesforce.config import SalesforceConfig  # noqa: TID251
from icp_sync.alerts.config import AlertsConfig  # noqa: TID251
from icp_sync.errors import ConfigError
from icp_sync.model import ACCOUNT_COLUMNS
from icp_sync.report.config import DashboardConfig, DigestConfig, ReportConfig
from icp_sync.rules import ComplianceConfig
from icp_sync.sections import (
    Secret,
    SecretRef,
    Section,
    base_dir,
    existing_file,
    resolve_secret,
)

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_CONFIG",
    "FilesConfig",
    "SalesforceConfig",
    "Secret",
    "SecretRef",
    "Settings",
    "load_settings",
    "resolve_secret",
]

DEFAULT_CONFIG = "icp-sync.toml"
CONFIG_ENV = "ICP_SYNC_CONFIG"

_SECRET_PREFIXES = ("env:", "file:")


class StoreConfig(Section):
    """Where icp-sync keeps its state (SQLAlchemy URL)."""

    url: SecretStr = SecretStr("sqlite:///icp-sync.db")
    """``sqlite:///relative/or/absolute.db`` or ``postgresql+psycopg://user@host/db``.
    May be an ``env:``/``file:`` reference when it carries a password. Held as a secret: it
    never shows in ``repr``, dumps or errors; :attr:`display_url` is the printable form."""
    lease_ttl_s: float = Field(default=60.0, ge=3)
    """A sync holds the single-writer lease; a crashed holder's lease expires after this."""
    lease_wait_s: float = Field(default=0.0, ge=0, le=86_400)
    """How long a sync waits for another's lease before giving up (0: exit at once)."""

    @property
    def display_url(self) -> str:
        """The URL with its password hidden, for output and logs."""
        from sqlalchemy.engine import make_url  # noqa: TID251

        url = self.url.get_secret_value() if isinstance(self.url, SecretStr) else str(self.url)
        return make_url(url).render_as_string(hide_password=True)

    @field_validator("url", mode="before")
    @classmethod
    def _resolve_url(cls, value: object, info: ValidationInfo) -> object:
        from sqlalchemy.engine import make_url  # noqa: TID251
        from sqlalchemy.exc import ArgumentError  # noqa: TID251

        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if not isinstance(value, str):
            return value
        if value.startswith(_SECRET_PREFIXES):
            value = resolve_secret(value)
        try:
            url = make_url(value)
        except (ArgumentError, ValueError):
            # the text may hold a password: say what is wrong, never echo it
            raise ValueError(
                "not a SQLAlchemy URL (expected sqlite:///path.db or "
                "postgresql+psycopg://user:password@host/db)"
            ) from None
        if url.get_backend_name() not in ("sqlite", "postgresql"):
            raise ValueError("only sqlite:/// and postgresql+psycopg:// stores are supported")
        database = url.database or ""
        if url.get_backend_name() == "sqlite" and database and database != ":memory:":
            path = Path(database)
            if not path.is_absolute():
                path = base_dir(info) / path
            value = url.set(database=str(path.resolve())).render_as_string(hide_password=False)
        return SecretStr(value)


class LoggingConfig(Section):
    """Log level and format (logs go to stderr)."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"
    """``auto``: pretty on a terminal, JSON lines otherwise."""


class CrmConfig(Section):
    """Which CRM this installation talks to."""

    connector: Literal["files", "salesforce", "hubspot", "salesforce+hubspot"] = "files"
    """``salesforce+hubspot``: Salesforce is mirrored and scored; HubSpot's companies are
    matched onto its Accounts and given the same tier, score and TAL membership."""


class NormalizeConfig(Section):
    """How messy values are repaired, for every connector."""

    aliases: dict[str, dict[str, str]] = Field(default_factory=dict)
    """Per canonical (or ``attr_``) column: variant -> canonical spelling, e.g. typos."""
    max_employees: float = 5_000_000
    """Employee counts above this are impossible and dropped."""
    max_amount: float = 1e10
    """Deal amounts and ARR above this are impossible and dropped."""
    max_annual_revenue: float = 2e12
    """Annual revenues above this (more than the largest company's) are impossible."""


class SegmentsConfig(Section):
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


class LifecycleConfig(Section):
    """Assumptions behind the lifecycle metrics."""

    window_months: int = Field(default=12, ge=1, le=60)
    """Logo retention and NRR are measured over windows of this length."""
    windows: int = Field(default=3, ge=1, le=10)
    """How many consecutive NRR windows (ending at the end of the history) are pooled."""
    gross_margin: float = Field(default=0.8, gt=0, le=1)
    """Share of ARR kept as gross profit, for CLV = ARR x margin / churn."""
    min_churn: float = Field(default=0.02, gt=0, lt=1)
    """Floor of the annual churn rate in CLV, so lifetimes stay finite."""


class IcpConfig(Section):
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
    """An edited ICP definition file. It is not live by being named here: sync warns until it
    is made live with ``icp-sync activate PATH`` (imported as a new version)."""
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
        return None if value is None else existing_file(value, info)


class LookalikeConfig(Section):
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


class TalConfig(Section):
    """The Target Account List."""

    name: str = "Target Account List"
    size: int = Field(default=500, ge=1)


class TiersConfig(Section):
    """How tiers follow from rules and scores."""

    green_min_score: float = Field(default=0, ge=0, le=100)
    """An account in a Green segment whose fit score is below this is Yellow instead."""


class WritebackConfig(Section):
    """Writing tier, score, reasons and TAL membership back to the CRM."""

    enabled: bool = True
    """When false, sync reads and scores but never writes (like a permanent --dry-run)."""
    manual_edits: Literal["keep", "revert"] = "revert"
    """A hand edit of an owned field (e.g. ICP_Tier__c) by anyone but the integration user:
    "revert" writes the ICP value again (logged), "keep" leaves the edit as an override."""


class GuardsConfig(Section):
    """Brakes on a sync that would change much at once (``sync --allow-mass-change`` lifts them)."""

    max_delete_share: float = Field(default=0.2, ge=0, le=1)
    """Stop before marking more than this share of the mirrored records of an object deleted
    (e.g. a header-only or partial export). A first sync into an empty mirror never stops."""
    max_retier_share: float = Field(default=0.2, ge=0, le=1)
    """Stop before moving more than this share of the tiered accounts to another tier under the
    same ICP version (moves from activating another version are reviewed with ``activate``;
    moves that follow a human tier override are not counted)."""


class DaemonConfig(Section):
    """``icp-sync run``: the schedule, health and metrics endpoint, failure handling."""

    interval_s: float = Field(default=900.0, ge=1, le=86_400)
    """Incremental sync every this many seconds (``--interval`` overrides it)."""
    full_sync_at: str = Field(default="02:00", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    """Nightly full reconciliation (every record read again), ``HH:MM`` UTC."""
    misfire_grace_s: float = Field(default=300.0, ge=1)
    """A run that could not start on time still starts within this many seconds."""
    listen: str = Field(default="127.0.0.1:9464", pattern=r"^\[?[^\s]*\]?:[0-9]{1,5}$")
    """``HOST:PORT`` of ``/healthz``, ``/readyz`` and ``/metrics`` (``--listen`` overrides)."""
    alert_after_failures: int = Field(default=3, ge=1)
    """Consecutive failed cycles before RevOps is alerted (once, until a cycle succeeds)."""
    max_backoff_s: float = Field(default=3_600.0, ge=1)
    """Longest pause after failed cycles (doubling from one interval)."""
    describe_refresh_h: float = Field(default=24.0, gt=0)
    """How often the CRM's field lists are described again (cached in between)."""


class Settings(Section):
    """The whole configuration."""

    crm: CrmConfig = CrmConfig()
    store: StoreConfig = StoreConfig()
    logging: LoggingConfig = LoggingConfig()
    files: FilesConfig | None = None
    salesforce: SalesforceConfig | None = None
    hubspot: HubSpotConfig | None = None
    writeback: WritebackConfig = WritebackConfig()
    normalize: NormalizeConfig = NormalizeConfig()
    segments: SegmentsConfig = SegmentsConfig()
    lifecycle: LifecycleConfig = LifecycleConfig()
    icp: IcpConfig = IcpConfig()
    lookalike: LookalikeConfig = LookalikeConfig()
    tal: TalConfig = TalConfig()
    tiers: TiersConfig = TiersConfig()
    guards: GuardsConfig = GuardsConfig()
    daemon: DaemonConfig = DaemonConfig()
    compliance: ComplianceConfig = ComplianceConfig()
    alerts: AlertsConfig = AlertsConfig()
    report: ReportConfig = ReportConfig()
    dashboard: DashboardConfig = DashboardConfig()
    digest: DigestConfig = DigestConfig()
    source: Path | None = Field(default=None, exclude=True)
    """The file these settings came from (set by :func:`load_settings`)."""

    @model_validator(mode="after")
    def _connector_section(self) -> Settings:
        if self.crm.connector == "files" and self.files is None:
            raise ValueError("files: section required when crm.connector = 'files'")
        if self.crm.connector == "salesforce" and self.salesforce is None:
            raise ValueError("salesforce: section required when crm.connector = 'salesforce'")
        if self.crm.connector == "hubspot" and self.hubspot is None:
            raise ValueError("hubspot: section required when crm.connector = 'hubspot'")
        if self.crm.connector == "salesforce+hubspot" and (
            self.salesforce is None or self.hubspot is None
        ):
            raise ValueError(
                "salesforce, hubspot: both sections required when crm.connector = "
                "'salesforce+hubspot'"
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
        from sqlalchemy.engine import make_url  # noqa: TID251

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
        url = make_url(self.store.url.get_secret_value())
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
    missing = f"config file not found (pass --config PATH or set {CONFIG_ENV})"
    text = read_text(path, "config file", missing=missing)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from None
    return parse_settings(raw, base_dir=path.resolve().parent, source=path)


def read_text(path: Path, what: str, *, missing: str | None = None) -> str:
    """The UTF-8 text of a file the user names (``what`` says which kind, for the message).

    Raises:
        ConfigError: Naming the path and what is wrong: missing, a folder, not UTF-8 text
            (with the byte offset), unreadable.
    """
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{path}: {missing or what + ' not found'}"]) from None
    except IsADirectoryError:
        raise ConfigError([f"{path}: is a folder, not a {what}"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            [f"{path}: not a text file (byte {exc.start} is not UTF-8); a {what} is UTF-8 text"]
        ) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot be read: {exc.strerror or exc}"]) from None


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
