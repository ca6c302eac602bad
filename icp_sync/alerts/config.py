"""The ``[alerts]`` config section: channels, their secrets by reference, retry and digest."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from icp_sync.sections import Secret, Section, existing_file

__all__ = ["AlertsConfig", "CrmTaskConfig", "EmailConfig", "SlackConfig", "WebhookConfig"]


def _http_url(value: str) -> str:
    if not value.startswith(("https://", "http://")):
        raise ValueError("must be an http:// or https:// URL")
    return value


class WebhookConfig(Section):
    """``[alerts.webhook]``: a JSON POST per alert, signed with HMAC-SHA256."""

    url: str
    secret: Secret
    """The signing key, ``env:NAME`` or ``file:PATH``."""
    timeout_s: float = Field(default=10, gt=0, le=120)

    _url = field_validator("url")(_http_url)


class SlackConfig(Section):
    """``[alerts.slack]``: a Slack incoming webhook (Block Kit message with a record link)."""

    url: Secret
    """The incoming-webhook URL (it is the credential): ``env:NAME`` or ``file:PATH``."""
    timeout_s: float = Field(default=10, gt=0, le=120)


class EmailConfig(Section):
    """``[alerts.email]``: a plain-text mail over SMTP (STARTTLS and login by default)."""

    host: str
    port: int = Field(default=587, ge=1, le=65535)
    starttls: bool = True
    """Upgrade the connection with STARTTLS before logging in (refused if the server can't)."""
    username: str | None = None
    password: Secret | None = None
    ca_file: Path | None = None
    """CA bundle to verify the server's certificate with (a private relay); default: system."""
    sender: str
    to: list[str] = Field(min_length=1)
    timeout_s: float = Field(default=30, gt=0, le=300)

    @field_validator("ca_file")
    @classmethod
    def _ca_exists(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return None if value is None else existing_file(value, info)


class CrmTaskConfig(Section):
    """``[alerts.crm_task]``: a task in the CRM for the deal's owner, linked to the deal."""

    enabled: bool = False
    subject_prefix: str = Field(default="ICP review:", max_length=80)
    """The task's subject starts with this, then the deal's name (and the delivery key)."""
    due_in_days: int = Field(default=3, ge=0, le=365)
    """The task is due this many days after the violation was first seen."""
    priority: Literal["High", "Normal", "Low"] = "Normal"


class AlertsConfig(Section):
    """``[alerts]``: where out-of-ICP deal alerts go (only new violations), and how."""

    webhook: WebhookConfig | None = None
    slack: SlackConfig | None = None
    email: EmailConfig | None = None
    crm_task: CrmTaskConfig | None = None
    record_url: str | None = None
    """Link to a deal, ``{id}`` replaced by its id (default for Salesforce:
    ``<instance_url>/lightning/r/Opportunity/{id}/view``)."""
    digest: bool = False
    """Also send one daily digest of the open violations per channel."""
    retry_initial_s: float = Field(default=30, gt=0)
    """Wait before the second try of a failed delivery; doubled each time ..."""
    retry_max_s: float = Field(default=3600, gt=0)
    """... up to this. An alert is retried until it is delivered."""
    batch: int = Field(default=200, ge=1, le=10_000)
    """Most alerts delivered per call of the delivery step."""
