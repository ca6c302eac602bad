"""``icp-sync demo``: the whole product, end to end, on data that ships with it.

Each step prints the command a user would type and runs it for real, in a scratch folder, so
the demo never touches the user's own files.
"""

from __future__ import annotations

import shlex
import shutil
import tempfile
from pathlib import Path

from icp_sync.console import stdout

__all__ = ["run"]

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _icp_sync(*args: str) -> None:
    from icp_sync.cli import app

    stdout.print(f"\n[bold cyan]$ icp-sync {shlex.join(args)}[/]")
    app(list(args), standalone_mode=False)


def _example(name: str, workdir: Path) -> Path:
    target = workdir / name
    shutil.copytree(EXAMPLES / name, target, ignore=shutil.ignore_patterns("*.db*"))
    config = target / "icp-sync.toml"
    config.write_text(config.read_text() + '\n[logging]\nlevel = "warning"\n')
    return config


def run(workdir: Path | None = None) -> None:
    """Run every demo step in ``workdir`` (a fresh temporary folder by default)."""
    workdir = workdir or Path(tempfile.mkdtemp(prefix="icp-sync-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    stdout.rule("[bold]icp-sync demo[/]")
    stdout.print(f"working in {workdir}")

    stdout.rule("1. A real, messy CRM export: Maven Analytics B2B pipeline")
    maven = _example("maven", workdir)
    _icp_sync("check", "--config", str(maven))
    _icp_sync("sync", "--config", str(maven))

    stdout.rule("2. Nothing changed since the last sync: nothing is read")
    _icp_sync("sync", "--config", str(maven))

    stdout.rule("3. A SaaS subscription and churn export: RavenStack")
    _icp_sync("sync", "--config", str(_example("ravenstack", workdir)))

    stdout.rule("[bold green]demo finished[/]")
    stdout.print(f"State stores and configs are in {workdir}; rerun any command above.")
