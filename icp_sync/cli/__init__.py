"""The ``icp-sync`` command line (Typer).

Every command takes ``--config PATH`` (default ``./icp-sync.toml``, then ``$ICP_SYNC_CONFIG``);
commands that produce results take ``--json`` and then print one JSON document on stdout while
logs go to stderr. Exit codes: 0 ok, 1 failure, 2 bad usage or bad config.
"""

from __future__ import annotations

import gc
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from icp_sync import __version__, console, log
from icp_sync.cli.compliance import register as register_compliance
from icp_sync.cli.options import FLAG, Command, ConfigOption, Group, JsonOption, command
from icp_sync.cli.sandbox import sandbox_app
from icp_sync.errors import ConfigError, IcpSyncError

__all__ = ["app", "main", "run"]

app = typer.Typer(
    cls=Group,
    name="icp-sync",
    help="Derive a shared Ideal Customer Profile from CRM history and keep the CRM aligned.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

app.add_typer(sandbox_app, name="sandbox")
register_compliance(app)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"icp-sync {__version__}")
        raise typer.Exit


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            metavar=FLAG,
            callback=_print_version,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    """Derive a shared Ideal Customer Profile from CRM history and keep the CRM aligned."""
    del version


@app.command(cls=Command)
def check(config: ConfigOption = None, json_output: JsonOption = False) -> None:
    """Validate the config and the connection; say what was found and what to fix."""
    from icp_sync.pipeline import check as run_check

    with command("check", config) as run:
        report = run_check(run.settings, run.path)
        if json_output:
            console.print_json(report.as_dict())
        else:
            console.print_checks(report.items)
        if not report.ok:
            raise typer.Exit(1)


@app.command(cls=Command)
def sync(
    config: ConfigOption = None,
    json_output: JsonOption = False,
    full: Annotated[
        bool, typer.Option("--full", metavar=FLAG, help="Ignore cursors; read everything.")
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", metavar=FLAG, help="Plan the write-back but write nothing to the CRM."
        ),
    ] = False,
    wait_lease: Annotated[
        float | None,
        typer.Option(
            "--wait-lease",
            min=0,
            max=86_400,
            help="Seconds to wait while another sync holds the store (default: "
            "store.lease_wait_s; 0: exit at once).",
            show_default=False,
        ),
    ] = None,
    allow_mass_change: Annotated[
        bool,
        typer.Option(
            "--allow-mass-change",
            metavar=FLAG,
            help="Let through deletions and tier moves above the [guards] shares.",
        ),
    ] = False,
) -> None:
    """One cycle: extract changes, mirror them, score, and write the active ICP to the CRM."""
    from icp_sync.cli.progress import bars, wanted
    from icp_sync.pipeline import sync as run_sync
    from icp_sync.store import Store

    shown = not json_output and wanted(sys.stdout, sys.stderr)
    with (
        command("sync", config) as run,
        Store.open(run.settings.store.url) as store,
        bars(sys.stderr, enabled=shown),
    ):
        result = run_sync(
            run.settings,
            store,
            run_id=run.run_id,
            now=run.now,
            full=full,
            dry_run=dry_run,
            wait_lease=wait_lease,
            allow_mass_change=allow_mass_change,
        )
        log.get_logger().info(
            "sync_summary",
            status=result.status,
            api_calls=result.api_calls,
            records_written=result.records_written,
            **{str(k): v.as_dict() | {"normalization": None} for k, v in result.objects.items()},
        )
        if json_output:
            console.print_json(result.as_dict())
        else:
            console.print_sync(result)


@app.command("setup-fields", cls=Command)
def setup_fields(
    config: ConfigOption = None,
    json_output: JsonOption = False,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", metavar=FLAG, help="Say what would be created; create nothing."),
    ] = False,
) -> None:
    """Create the ICP fields in the CRM (idempotent: existing fields are left alone)."""
    from icp_sync.pipeline import setup_fields as run_setup
    from icp_sync.store import Store

    with command("setup-fields", config) as run, Store.open(run.settings.store.url) as store:
        document = run_setup(run.settings, store, dry_run=dry_run)
        if json_output:
            console.print_json(document)
        else:
            console.print_field_setup(document)
        if document["failed"]:
            raise typer.Exit(1)


AsOfOption = Annotated[
    datetime | None,
    typer.Option(
        "--as-of",
        formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"],
        help="Use only history before this date (a backtest); default: now.",
        show_default=False,
    ),
]


@app.command(cls=Command)
def derive(
    config: ConfigOption = None, json_output: JsonOption = False, as_of: AsOfOption = None
) -> None:
    """Propose an ICP from the CRM history: evidence per segment, tiers, look-alike model."""
    from icp_sync.pipeline import History, derive_report
    from icp_sync.store import Store

    with command("derive", config) as run, Store.open(run.settings.store.url) as store:
        cut = as_of.replace(tzinfo=UTC) if as_of else None
        if cut is not None and cut > run.now:
            raise ConfigError([f"--as-of: {cut:%Y-%m-%d} is in the future"])
        document = derive_report(run.settings, store, History.load(store), now=run.now, as_of=cut)
        if json_output:
            console.print_json(document)
        else:
            console.print_derive(document)


@app.command(cls=Command)
def tal(
    config: ConfigOption = None,
    json_output: JsonOption = False,
    size: Annotated[
        int | None, typer.Option("--size", min=1, help="Accounts on the list (default: tal.size).")
    ] = None,
    version: Annotated[
        str | None, typer.Option("--version", help="ICP version (default: the newest).")
    ] = None,
) -> None:
    """Propose a Target Account List: the best-fit prospects, ranked, with reasons.

    The list goes live when its version is activated (`icp-sync activate VERSION`).
    """
    from icp_sync.pipeline import History
    from icp_sync.pipeline import tal as build
    from icp_sync.store import Store

    with command("tal", config) as run, Store.open(run.settings.store.url) as store:
        result = build(
            run.settings, store, History.load(store), now=run.now, size=size, version=version
        )
        if json_output:
            console.print_json(result.as_dict())
        else:
            console.print_tal(result.as_dict())


@app.command(cls=Command)
def activate(
    target: Annotated[
        str, typer.Argument(help="A stored version (v3; an older one rolls back) or a TOML file.")
    ],
    config: ConfigOption = None,
    json_output: JsonOption = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", metavar=FLAG, help="Show what would change in the CRM; activate nothing."
        ),
    ] = False,
    tal_id: Annotated[
        int | None,
        typer.Option("--tal", help="TAL id to go live with (default: the version's newest)."),
    ] = None,
    by: Annotated[
        str | None, typer.Option("--by", help="Who activates (default: the OS user).")
    ] = None,
) -> None:
    """Make an ICP version live, after showing what the next sync would change in the CRM."""
    from icp_sync.pipeline import History
    from icp_sync.pipeline import activate as run_activate
    from icp_sync.store import Store

    with command("activate", config) as run, Store.open(run.settings.store.url) as store:
        document = run_activate(
            run.settings,
            store,
            History.load(store),
            target,
            now=run.now,
            by=by,
            tal_id=tal_id,
            dry_run=dry_run,
        )
        if json_output:
            console.print_json(document)
        else:
            console.print_activation(document)


@app.command(cls=Command)
def versions(config: ConfigOption = None, json_output: JsonOption = False) -> None:
    """List the ICP versions: proposed, active or retired; who activated them, and when."""
    from icp_sync.pipeline import version_list
    from icp_sync.store import Store

    with command("versions", config) as run, Store.open(run.settings.store.url) as store:
        rows = version_list(store)
        if json_output:
            console.print_json({"versions": rows})
        else:
            console.print_versions(rows)


@app.command(cls=Command)
def review(
    config: ConfigOption = None,
    json_output: JsonOption = False,
    version: Annotated[
        str | None, typer.Option("--version", help="ICP version to review (default: latest).")
    ] = None,
    period: Annotated[
        str | None,
        typer.Option(
            "--period",
            help="Review the commitment of this period (2027, 2027-Q1, 2027-03) instead: were "
            "its predictions right, which segments change tier, a refined definition.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Did an ICP version's predictions come true after its as-of date (or a commitment's,
    over its period)?"""
    from icp_sync.pipeline import History, period_review
    from icp_sync.pipeline import review as run_review
    from icp_sync.store import Store

    if period is not None and version is not None:
        raise ConfigError(["--period and --version: give one (a period reviews its commitment)"])
    with command("review", config) as run, Store.open(run.settings.store.url) as store:
        history = History.load(store)
        if period is not None:
            from icp_sync.report.text import print_period_review

            document = period_review(run.settings, store, history, now=run.now, period=period)
            if json_output:
                console.print_json(document)
            else:
                print_period_review(document)
            return
        document = run_review(run.settings, store, history, now=run.now, version=version)
        if json_output:
            console.print_json(document)
        else:
            console.print_review(document)


PeriodOption = Annotated[
    str | None,
    typer.Option(
        "--period",
        help="Commitment period: 2027, 2027-Q1 or 2027-03 (default: the year the history ends).",
        show_default=False,
    ),
]


@app.command(cls=Command)
def report(
    config: ConfigOption = None,
    json_output: JsonOption = False,
    period: PeriodOption = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="HTML file to write (default: report.output); CSVs beside it."),
    ] = None,
) -> None:
    """Adherence to the ICP commitment: HTML report with charts, CSV tables, revealed ICP."""
    from icp_sync.pipeline import History, build_report, write_report
    from icp_sync.report.text import print_report
    from icp_sync.store import Store

    with command("report", config) as run, Store.open(run.settings.store.url) as store:
        document = build_report(
            run.settings, store, History.load(store), now=run.now, period=period
        )
        target = out if out is not None else run.settings.resolve(run.settings.report.output)
        files = write_report(document, target)
        data = document.as_dict() | {"files": {k: str(v) for k, v in files.items()}}
        if json_output:
            console.print_json(data)
        else:
            print_report(data)


@app.command("run", cls=Command)
def run_daemon(
    config: ConfigOption = None,
    interval: Annotated[
        float | None,
        typer.Option(
            "--interval",
            min=1,
            max=86_400,
            help="Seconds between incremental syncs (default: daemon.interval_s).",
            show_default=False,
        ),
    ] = None,
    listen: Annotated[
        str | None,
        typer.Option(
            "--listen",
            help="HOST:PORT for /healthz, /readyz and /metrics (default: daemon.listen, "
            "127.0.0.1:9464).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run the daemon: scheduled syncs, nightly full sync, /healthz /readyz /metrics."""
    from icp_sync.daemon import product_daemon
    from icp_sync.store import Store

    with command("run", config) as run, Store.open(run.settings.store.url) as store:
        daemon = product_daemon(run.settings, store, interval_s=interval, listen=listen)
        try:
            code = daemon.serve()
        except OSError as exc:
            raise ConfigError([f"--listen: {exc}"]) from None
        if code:
            raise typer.Exit(code)


@app.command(cls=Command)
def demo(
    workdir: Annotated[
        Path | None,
        typer.Option(
            file_okay=False,
            help="Where the demo writes its files (default: a fresh temporary folder).",
        ),
    ] = None,
) -> None:
    """Run the whole product end to end on bundled sample data."""
    from icp_sync.demo import run as run_demo

    log.configure(level="warning")
    log.bind_run("demo")
    run_demo(workdir, invoke=lambda args: app(args, standalone_mode=False))


def run(args: list[str] | None = None) -> int:
    """Run one command line (default: ``sys.argv``) and return its exit code.

    Typer handles usage errors (2); ours are mapped here to one line on stderr: 2 for bad
    config or usage, 1 for failures. Anything else propagates (a bug: :func:`main` catches it).
    """
    try:
        app(args, prog_name="icp-sync")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except ConfigError as exc:
        typer.echo(log.redact(f"icp-sync: {exc}"), err=True)
        return 2
    except IcpSyncError as exc:
        log.get_logger().error("command_failed", error=str(exc), kind=type(exc).__name__)
        typer.echo(log.redact(f"icp-sync: error: {exc}"), err=True)
        return 1
    except OSError as exc:  # a file or folder the command had to write or read
        where = f" {exc.filename}" if exc.filename else ""
        log.get_logger().error("command_failed", error=str(exc), kind=type(exc).__name__)
        typer.echo(log.redact(f"icp-sync: error:{where}: {exc.strerror or exc}"), err=True)
        return 1
    return 0


# A sync holds millions of small long-lived objects (rows, field values, plans). At CPython's
# default young-generation threshold (700 allocations) the cyclic collector walks them over
# and over: about a tenth of a first cycle at 100,000 accounts. The code makes few reference
# cycles, so collecting less often costs little memory.
GC_THRESHOLDS = (50_000, 20, 100)


def main() -> None:
    """Console-script entry point; the one place an unexpected exception becomes one line."""
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        code = run()
    except Exception as exc:  # noqa: BLE001 (the CLI's job boundary: never a raw traceback)
        log.get_logger().error("command_crashed", error=repr(exc))
        typer.echo(
            log.redact(f"icp-sync: internal error ({type(exc).__name__}: {exc}); please report it"),
            err=True,
        )
        code = 1
    sys.exit(code)
