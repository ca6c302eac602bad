"""The commitment and compliance commands: ``commit`` and ``monitor``, with their output."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import typer

from icp_sync import console
from icp_sync.cli.options import FLAG, Command, ConfigOption, JsonOption, command
from icp_sync.errors import ConfigError

__all__ = ["register"]


def commit(
    config: ConfigOption = None,
    json_output: JsonOption = False,
    period: Annotated[
        str | None,
        typer.Option(
            "--period",
            help="The period committed to: 2027, 2027-Q1, or 2027-02-01..2028-02-01.",
            show_default=False,
        ),
    ] = None,
    definition: Annotated[
        Path | None,
        typer.Option(
            "--definition",
            help="Commit to this ICP definition file (default: the active version).",
            show_default=False,
        ),
    ] = None,
    version: Annotated[
        str | None,
        typer.Option("--version", help="Commit to this stored ICP version (default: active)."),
    ] = None,
    tal_id: Annotated[
        int | None,
        typer.Option("--tal", help="TAL id (default: the TAL live with the version)."),
    ] = None,
    target_green_share: Annotated[
        float | None,
        typer.Option(
            "--target-green-share",
            min=0,
            max=1,
            help="Share of new pipeline (by amount) to come from Green accounts.",
            show_default=False,
        ),
    ] = None,
    target: Annotated[
        list[str] | None,
        typer.Option("--target", help="Another target, NAME=NUMBER (repeatable)."),
    ] = None,
    signatory: Annotated[
        list[str] | None,
        typer.Option("--signatory", help='Who agreed, "Function: Name" (repeatable).'),
    ] = None,
    by: Annotated[
        str | None, typer.Option("--by", help="Who records it (default: the OS user).")
    ] = None,
    show: Annotated[
        bool,
        typer.Option("--show", metavar=FLAG, help="Print the commitment in force; record nothing."),
    ] = False,
    history: Annotated[
        bool,
        typer.Option("--history", metavar=FLAG, help="List every commitment, superseded too."),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", metavar=FLAG, help="Show what would be recorded.")
    ] = False,
) -> None:
    """Freeze an ICP version, its TAL, targets and signatories for a period (immutable)."""
    from icp_sync.pipeline.commitment import commit as record
    from icp_sync.pipeline.commitment import commitments_shown
    from icp_sync.store import Store

    with command("commit", config) as run, Store.open(run.settings.store.url) as store:
        if show or history:
            document = commitments_shown(store, period, now=run.now, history=history)
            if json_output:
                console.print_json(document)
            elif history:
                for item in document["commitments"]:
                    _print_commitment(item, active=item["content_hash"] == document["active"])
            else:
                _print_commitment(document["commitment"], active=True)
            return
        if not period:
            raise ConfigError(["--period: required to record a commitment (e.g. --period 2027)"])
        document = record(
            run.settings,
            store,
            period=period,
            now=run.now,
            definition_file=definition,
            version=version,
            tal_id=tal_id,
            target_green_share=target_green_share,
            targets=_targets(target or []),
            signatories=signatory or [],
            by=by,
            dry_run=dry_run,
        )
        if json_output:
            console.print_json(document)
        else:
            if document["unchanged"]:
                console.stdout.print("Same terms as the commitment in force: nothing recorded.")
            elif document["dry_run"]:
                console.stdout.print("Dry run: this commitment would be recorded.")
            _print_commitment(document["commitment"], active=True)


def _targets(items: list[str]) -> dict[str, float]:
    targets: dict[str, float] = {}
    problems = []
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip()
        try:
            number = float(value)
        except ValueError:
            number = float("nan")
        if not sep or not name.isidentifier() or math.isnan(number):
            problems.append(f"--target {item!r}: expected NAME=NUMBER, e.g. max_red_share=0.05")
            continue
        targets[name] = number
    if problems:
        raise ConfigError(problems)
    return targets


def _print_commitment(item: dict[str, Any] | None, *, active: bool) -> None:
    from rich.table import Table

    if item is None:
        console.stdout.print("No commitment recorded: `icp-sync commit --period 2027 ...`")
        return
    table = Table(title=f"ICP commitment {item['period']}" + ("" if active else " (superseded)"))
    table.add_column("field")
    table.add_column("value")
    share = item["target_green_share"]
    rows = [
        ("ICP version", item["icp_version"]),
        ("period", f"{item['starts_at'][:10]} .. {item['ends_at'][:10]} (end excluded)"),
        ("TAL", f"{item['tal_name']} ({item['tal_size']} accounts)"),
        ("Green share target", console.percent(share) if share is not None else "-"),
        *((f"target {k}", f"{v:g}") for k, v in item["targets"].items()),
        ("signed by", "; ".join(item["signatories"]) or "-"),
        ("recorded", f"{item['created_at'][:19]} by {item['created_by']}"),
        ("content hash", item["content_hash"]),
        ("supersedes", item["supersedes"] or "-"),
        ("intact", "yes" if item["intact"] else "NO: altered after it was recorded"),
    ]
    for name, value in rows:
        table.add_row(name, str(value))
    console.stdout.print(table)


def monitor(
    config: ConfigOption = None,
    json_output: JsonOption = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", metavar=FLAG, help="Judge the open deals; store, write and send nothing."
        ),
    ] = False,
) -> None:
    """Check open pipeline against the ICP and the commitment; flag, write and alert."""
    from icp_sync.pipeline.monitor import monitor_once
    from icp_sync.store import Store

    with command("monitor", config) as run, Store.open(run.settings.store.url) as store:
        result = monitor_once(run.settings, store, now=run.now, run_id=run.run_id, dry_run=dry_run)
        if json_output:
            console.print_json(result.as_dict())
            return
        _print_monitor(result.as_dict(), result.summary())


def _print_monitor(document: dict[str, Any], summary: dict[str, Any], limit: int = 25) -> None:
    from rich.table import Table

    commitment = document["commitment"]
    console.stdout.print(
        f"Commitment: {commitment['period']} (ICP {commitment['icp_version']}, "
        f"{commitment['content_hash'][:12]})"
        if commitment
        else "Commitment: none (the default tier rules apply)"
    )
    counts = summary["compliance"]
    console.stdout.print(
        f"Open deals judged: {summary['checked']:,} "
        + ", ".join(f"{k}: {v:,}" for k, v in counts.items())
        + f"; new violations: {summary['new']}, resolved: {summary['resolved']}, "
        f"waived: {summary['waived']}" + (" (dry run)" if summary["dry_run"] else "")
    )
    violations = document["violations"]
    if not violations:
        console.stdout.print("No violations.")
        return
    # the latest change first: a new violation, or one just waived or resolved
    ranked = sorted(
        violations,
        key=lambda v: max(v["first_seen_at"], v["resolved_at"] or ""),
        reverse=True,
    )
    shown = ranked[:limit]
    title = (
        "Violations"
        if len(shown) == len(violations)
        else (f"Violations: {len(shown)} of {len(violations)} (all with --json)")
    )
    table = Table(title=title)
    for column in ("opportunity", "account", "rule", "tier at creation", "status", "first seen"):
        table.add_column(column)
    for item in shown:
        table.add_row(
            item["opportunity_id"],
            str(item["account_id"] or "-"),
            item["rule"],
            str(item["tier_at_creation"] or "-"),
            item["status"] + (f" ({item['resolution']})" if item["resolution"] else ""),
            item["first_seen_at"][:19],
        )
    console.stdout.print(table)


def register(app: typer.Typer) -> None:
    """Add the commands of this module to ``app``."""
    app.command("commit", cls=Command)(commit)
    app.command("monitor", cls=Command)(monitor)
