"""The ``[report]`` and ``[dashboard]`` config sections.

```toml
[report]
owners = "owners.csv"         # owner_id, name, team: the leaderboard groups by team
output = "report/adherence.html"

[dashboard]
token = "env:ICP_SYNC_DASHBOARD_TOKEN"   # Authorization: Bearer, or ?token= once (cookie)
trusted_header = "X-Forwarded-User"     # set by an authenticating reverse proxy
url = "https://icp.example.com/dashboard"  # the link in the weekly digest

[digest]
enabled = true                # icp-sync run sends the weekly leadership digest
weekday = "mon"
at = "08:00"                  # UTC
```
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from icp_sync.sections import Secret, Section, existing_file

__all__ = ["DashboardConfig", "DigestConfig", "ReportConfig"]


class ReportConfig(Section):
    """The adherence report."""

    owners: Path | None = None
    """A CSV of the deal owners (``owner_id``, ``name``, ``team``): the leaderboard groups by
    team. Without it, by owner only."""
    output: Path = Path("report/adherence.html")
    """Where ``icp-sync report`` writes the HTML (CSVs beside it); relative to this file."""
    target_green_share: float | None = Field(default=None, ge=0, le=1)
    """The Green target used when no commitment is recorded for the period."""

    @field_validator("owners")
    @classmethod
    def _owners_exist(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return None if value is None else existing_file(value, info)


class DashboardConfig(Section):
    """The read-only dashboard the daemon serves (refused to anyone not authenticated)."""

    token: Secret | None = None
    """A bearer token by reference (``env:NAME`` / ``file:PATH``)."""
    trusted_header: str | None = None
    """A header set by an authenticating reverse proxy (e.g. ``X-Forwarded-User``); a request
    carrying it is let in. Only for a daemon reachable through that proxy alone."""
    url: str | None = None
    """The dashboard's public address, linked from the weekly digest."""

    @field_validator("trusted_header")
    @classmethod
    def _header_name(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9-]+", value):
            raise ValueError("must be an HTTP header name (letters, digits, dashes)")
        return value


class DigestConfig(Section):
    """The weekly leadership digest ``icp-sync run`` sends."""

    enabled: bool = False
    weekday: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"] = "mon"
    at: str = Field(default="08:00", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    """``HH:MM`` UTC."""

    def cron(self) -> dict[str, str | int]:
        """The schedule as cron fields (``day_of_week``, ``hour``, ``minute``)."""
        hour, minute = (int(part) for part in self.at.split(":"))
        return {"day_of_week": self.weekday, "hour": hour, "minute": minute}
