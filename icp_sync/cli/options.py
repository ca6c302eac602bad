"""What every command shares: the ``--config`` and ``--json`` options, and the run context."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from typer.core import TyperCommand, TyperGroup

from icp_sync import log

if TYPE_CHECKING:
    from icp_sync.config import Settings

__all__ = ["FLAG", "Command", "ConfigOption", "Group", "JsonOption", "Run", "command"]

FLAG = ""
"""Metavar of boolean flags: Typer would otherwise show ``<bool>`` as if they took a value."""


class Command(TyperCommand):
    """A command whose ``--help`` is shown as the flag it is (no ``<bool>``)."""

    def get_help_option(self, ctx: typer.Context) -> typer.core.TyperOption | None:  # type: ignore[override]
        option = super().get_help_option(ctx)
        if option is not None:
            option.metavar = FLAG
        return option


class Group(TyperGroup):
    """A command group whose ``--help`` is shown as the flag it is (no ``<bool>``)."""

    def get_help_option(self, ctx: typer.Context) -> typer.core.TyperOption | None:  # type: ignore[override]
        option = super().get_help_option(ctx)
        if option is not None:
            option.metavar = FLAG
        return option


ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="Config file (default ./icp-sync.toml, then $ICP_SYNC_CONFIG).",
        show_default=False,
    ),
]
JsonOption = Annotated[
    bool,
    typer.Option(
        "--json", metavar=FLAG, help="Print one JSON document on stdout; logs go to stderr."
    ),
]


@dataclass(frozen=True, slots=True)
class Run:
    """What every command starts with: settings, a run id and the start time."""

    settings: Settings
    run_id: str
    now: datetime
    path: Path


@contextmanager
def command(name: str, config: Path | None) -> Iterator[Run]:
    """Load the config, set up logging and the run id; log one summary line at the end."""
    from icp_sync.config import config_path, load_settings

    path = config_path(config)
    settings = load_settings(path)
    log.configure(
        level=settings.logging.level, fmt=settings.logging.format, secrets=settings.secrets()
    )
    run_id = log.bind_run(name)
    started = time.perf_counter()
    logger = log.get_logger()
    logger.info("command_started", config=str(path))
    status = "failed"
    try:
        yield Run(settings=settings, run_id=run_id, now=datetime.now(UTC), path=path)
        status = "ok"
    finally:
        logger.info(
            "command_finished", status=status, duration_s=round(time.perf_counter() - started, 3)
        )
