"""``icp-sync sandbox``: synthetic CRM data and the local Salesforce / HubSpot emulators."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from icp_sync import console, log
from icp_sync.cli.options import FLAG, Command, Group, JsonOption
from icp_sync.errors import ConfigError

__all__ = ["sandbox_app"]

sandbox_app = typer.Typer(
    cls=Group,
    help="The local CRM sandbox: synthetic data and Salesforce / HubSpot API emulators.",
    no_args_is_help=True,
)


@sandbox_app.command("generate", cls=Command)
def sandbox_generate(
    out: Annotated[
        Path, typer.Option("--out", file_okay=False, help="Folder to write the dataset into.")
    ],
    accounts: Annotated[
        int, typer.Option("--accounts", min=100, max=1_000_000, help="How many accounts.")
    ] = 5000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of every random draw.")] = 0,
    no_signal: Annotated[
        bool,
        typer.Option("--no-signal", metavar=FLAG, help="No planted ICP: outcomes are noise only."),
    ] = False,
    as_of: Annotated[
        datetime | None,
        typer.Option("--as-of", formats=["%Y-%m-%d"], help="'Today' in the generated world."),
    ] = None,
    history_end: Annotated[
        datetime | None,
        typer.Option(
            "--history-end",
            formats=["%Y-%m-%d"],
            help="The recorded history stops here (an export that ended long before today).",
        ),
    ] = None,
    won_only_attributes: Annotated[
        int,
        typer.Option(
            "--won-only-attributes",
            min=0,
            max=3,
            help="Attributes recorded only for won accounts, like onboarding fields.",
        ),
    ] = 0,
    tiny_segments: Annotated[
        int,
        typer.Option(
            "--tiny-segments",
            min=0,
            help="Values of an effect-free attribute, most of them a handful of accounts.",
        ),
    ] = 0,
    drift: Annotated[
        int,
        typer.Option(
            "--drift",
            min=0,
            help="Recent won deals planted in a Red segment (Government): sales drifting.",
        ),
    ] = 0,
    json_output: JsonOption = False,
) -> None:
    """Write a synthetic CRM (CSVs), its ground truth and a ready config into a folder."""
    from icp_sync.sandbox.generate import generate, write_dataset  # noqa: TID251

    log.configure(level="warning")
    crm = generate(
        accounts,
        seed=seed,
        signal=not no_signal,
        as_of=as_of.replace(tzinfo=UTC) if as_of else None,
        history_end=history_end.replace(tzinfo=UTC) if history_end else None,
        won_only_attributes=won_only_attributes,
        tiny_segments=tiny_segments,
        drift=drift,
    )
    paths = write_dataset(crm, out)
    document = {
        "out": str(out.resolve()),
        "files": {k: str(v.resolve()) for k, v in paths.items()},
        "accounts": len(crm.accounts),
        "opportunities": len(crm.opportunities),
        "green_segments": crm.truth["green_segments"],
        "red_segments": crm.truth["red_segments"],
        "pathologies": crm.truth["pathologies"],
        "drift": crm.truth.get("drift"),
    }
    if json_output:
        console.print_json(document)
        return
    console.stdout.print(
        f"wrote {document['accounts']:,} accounts and {document['opportunities']:,} "
        f"opportunities to {document['out']}"
    )
    console.stdout.print(f"next: icp-sync sync --config {paths['config']}")


@sandbox_app.command("serve", cls=Command)
def sandbox_serve(
    accounts: Annotated[
        int, typer.Option("--accounts", min=100, max=1_000_000, help="Accounts to generate.")
    ] = 5000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the generated data.")] = 0,
    faults: Annotated[
        str,
        typer.Option("--faults", help="Fault profile: none, flaky, hostile, or key=value,..."),
    ] = "none",
    salesforce_port: Annotated[
        int, typer.Option("--salesforce-port", min=0, max=65535, help="0: any free port.")
    ] = 0,
    hubspot_port: Annotated[
        int, typer.Option("--hubspot-port", min=0, max=65535, help="0: any free port.")
    ] = 0,
    directory: Annotated[
        Path,
        typer.Option(
            "--dir", file_okay=False, help="Folder for the CA, credentials and saved state."
        ),
    ] = Path(".sandbox"),
    persist: Annotated[
        bool,
        typer.Option(
            "--persist", metavar=FLAG, help="Reload saved state at start; save it on stop."
        ),
    ] = False,
    no_signal: Annotated[
        bool, typer.Option("--no-signal", metavar=FLAG, help="No planted ICP.")
    ] = False,
    write_config: Annotated[
        Path | None, typer.Option("--write-config", help="Also write an icp-sync config here.")
    ] = None,
    crm: Annotated[
        str,
        typer.Option(
            "--crm",
            help="CRM of --write-config: salesforce, hubspot, or salesforce+hubspot (both, "
            "serving overlapping companies linked as HubSpot's Salesforce integration does).",
        ),
    ] = "salesforce",
    json_output: JsonOption = False,
) -> None:
    """Serve the Salesforce and HubSpot emulators until interrupted."""
    import signal
    import threading

    from icp_sync.sandbox.faults import parse_profile  # noqa: TID251
    from icp_sync.sandbox.server import PortInUseError, port_available  # noqa: TID251
    from icp_sync.sandbox.service import Sandbox, SandboxSettings  # noqa: TID251

    log.configure(level="warning")
    problems = []
    try:
        profile = parse_profile(faults)
    except ValueError as exc:
        problems.append(f"--faults: {exc}")
    if crm not in ("salesforce", "hubspot", "salesforce+hubspot"):
        problems.append(f"--crm: {crm!r} is not salesforce, hubspot or salesforce+hubspot")
    # a taken port is a flag value to change, like any other bad argument: exit 2
    problems += [
        f"{flag}: port {port} on 127.0.0.1 is already in use; pick another, or 0 for any free one"
        for flag, port in (("--salesforce-port", salesforce_port), ("--hubspot-port", hubspot_port))
        if port and not port_available("127.0.0.1", port)
    ]
    if problems:
        raise ConfigError(problems)
    sandbox = Sandbox(
        SandboxSettings(
            directory=directory.resolve(),
            accounts=accounts,
            seed=seed,
            signal=not no_signal,
            faults=profile,
            salesforce_port=salesforce_port,
            hubspot_port=hubspot_port,
            persist=persist,
            linked=crm == "salesforce+hubspot",
        )
    )
    try:
        sandbox.start()
    except PortInUseError as exc:  # taken between the check above and the bind
        raise ConfigError([f"port {exc.port} on {exc.host} is already in use"]) from None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        if write_config is not None:
            try:
                sandbox.write_config(write_config, crm=crm)
            except OSError as exc:
                raise ConfigError([f"--write-config: cannot write {write_config}: {exc}"]) from None
        info = sandbox.info()
        if json_output:
            console.print_json(info)
        else:
            salesforce = info["salesforce"]
            console.stdout.print(
                f"Salesforce: {salesforce['instance_url']} (CA {salesforce['ca_file']})"
            )
            console.stdout.print(f"HubSpot:    {info['hubspot']['base_url']}")
            if write_config is not None:
                console.stdout.print(f"config:     {write_config}")
            console.stdout.print("serving; Ctrl-C stops")
        stop.wait()
    finally:
        sandbox.stop()
